"""The exported-model cache repairs itself (issue 20, item 15): a damaged export is made again
before use, and an export that fails is attempted once per process, naming a full disk."""

from __future__ import annotations

import errno
import shutil
import threading
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest
import torch.onnx

from findimage.encoders import OnnxEncoder
from findimage.errors import ModelLoadError
from findimage.inference import export
from tests.support.cli import json_in_process, run_in_process
from tests.support.pictures import draw_shape, make_library


def _engine(model: Path, cache: Path) -> OnnxEncoder:
    return OnnxEncoder(str(model), "FINDIMAGE_IMAGE_MODEL", "image", "fp32", cache, threads=1)


def _pictures() -> list:
    return [draw_shape(color, "circle", size=(64, 48)) for color in ("red", "blue")]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble(path: Path) -> None:
    """Same size, other bytes: what a bad sector or a stray write leaves."""
    data = bytearray(path.read_bytes())
    for offset in range(0, len(data), 7):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


DAMAGES = {
    "truncated model": ("model.onnx", _truncate),
    "garbled model": ("model.onnx", _garble),
    "deleted model": ("model.onnx", Path.unlink),
    "garbled spec": ("image_spec.json", _garble),
    "deleted spec": ("image_spec.json", Path.unlink),
    "garbled record": ("export.json", _garble),
}


@pytest.fixture
def exported(tiny_clip: Path, model_cache: Path, tmp_path: Path) -> Path:
    """The tiny model's image export in this test's own cache: a copy of the run's shared one
    (exporting takes seconds; the copy is what a restored backup of the cache would be)."""
    _engine(tiny_clip, model_cache).load()
    folder = export.export_folder(tmp_path, str(tiny_clip), "image", "fp32")
    shutil.copytree(export.export_folder(model_cache, str(tiny_clip), "image", "fp32"), folder)
    return folder


class ExportedAgain(Exception):
    """Raised by the `load` handed to the exporter: it was about to export again."""


def _load_for_export() -> NoReturn:
    raise ExportedAgain


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_export_is_not_used_but_made_again(
    tiny_clip: Path, tmp_path: Path, exported: Path, damage: str
) -> None:
    name, spoil = DAMAGES[damage]
    spoil(exported / name)

    # Exporting starts by loading the model to export: here it stops there, which is enough
    # to know the damaged export was not taken (the next test follows one export through).
    with pytest.raises(ExportedAgain):
        export.ensure_exported(tmp_path, str(tiny_clip), "image", "fp32", _load_for_export, "X")


def test_an_export_made_again_gives_the_vectors_the_first_one_gave(
    tiny_clip: Path, tmp_path: Path, exported: Path
) -> None:
    # Same size, other bytes: the damage a size check alone would miss.
    expected = _engine(tiny_clip, tmp_path).encode_images(_pictures())
    _garble(exported / "model.onnx")

    vectors = _engine(tiny_clip, tmp_path).encode_images(_pictures())

    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert (exported / "model.onnx").is_file() and (exported / "image_spec.json").is_file()
    # Intact again: the next start uses it as it is.
    assert export._read_meta(exported, "image", "fp32") is not None


def test_an_untouched_export_is_used_without_exporting_again(
    tiny_clip: Path, tmp_path: Path, exported: Path
) -> None:
    folder = exported
    # Copied elsewhere and back: times change, bytes do not.
    model = folder / "model.onnx"
    model.write_bytes(model.read_bytes())

    found = export.ensure_exported(tmp_path, str(tiny_clip), "image", "fp32", _load_for_export, "X")
    assert found.folder == folder


def test_two_towers_of_one_model_are_exported_at_the_same_time(
    tiny_clip: Path, tmp_path: Path
) -> None:
    """Each export's `load` waits, inside the export's lock, for the other's: with one lock
    for the whole model the second would wait for the first to finish, and the first would
    wait for it in vain."""
    inside: dict[export.Tower, threading.Event] = {
        "image": threading.Event(),
        "text": threading.Event(),
    }
    met: dict[export.Tower, bool] = {}

    def export_meeting(tower: export.Tower, other: export.Tower) -> None:
        def load() -> NoReturn:
            inside[tower].set()
            met[tower] = inside[other].wait(timeout=60)
            raise ExportedAgain  # both were inside at once: no need to export for real

        with pytest.raises(ExportedAgain):
            export.ensure_exported(tmp_path, str(tiny_clip), tower, "fp32", load, "X")

    threads = [
        threading.Thread(target=export_meeting, args=("image", "text")),
        threading.Thread(target=export_meeting, args=("text", "image")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert met == {"image": True, "text": True}


def _disk_fills_up(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The far edge, the disk: the exporter's write stops half way with ENOSPC."""
    saved: list[Path] = []

    def save(self: object, destination: object, **_: object) -> None:
        path = Path(str(destination))
        saved.append(path)
        path.write_bytes(b"\x08\x01" * 64)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(torch.onnx.ONNXProgram, "save", save)
    return saved


def test_a_failed_export_is_attempted_once_and_names_the_full_disk(
    tiny_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = _disk_fills_up(monkeypatch)
    messages = []
    for _ in range(3):
        with pytest.raises(ModelLoadError) as caught:
            _engine(tiny_clip, tmp_path).encode_images(_pictures())
        messages.append(str(caught.value))

    assert len(saved) == 1
    assert len(set(messages)) == 1
    assert "is full" in messages[0]
    assert "\n" not in messages[0]
    assert not list(tmp_path.rglob("model.onnx"))


def test_an_indexing_run_attempts_a_failing_export_once(
    findimage_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINDIMAGE_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FINDIMAGE_ENGINE", "onnx")
    monkeypatch.setenv("FINDIMAGE_BATCH_SIZE", "2")
    library = tmp_path / "library"
    make_library(library, 8)
    saved = _disk_fills_up(monkeypatch)

    code, _, err = run_in_process(capsys, "index", str(library))

    assert code != 0
    assert len(saved) == 1
    assert "is full" in err
    assert len([line for line in err.splitlines() if line.startswith("findimage:")]) == 1
    # Room again: the next run exports and indexes everything.
    monkeypatch.undo()
    for name, value in {
        **findimage_env,
        "FINDIMAGE_MODEL_CACHE": str(tmp_path / "cache-2"),
        "FINDIMAGE_ENGINE": "onnx",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert json_in_process(capsys, "index", str(library))["indexed"] == 8
