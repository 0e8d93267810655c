"""One sentence naming the real cause, and nothing else on the terminal (issue 20, item 17):
a folder to search that the library lacks, a picture library's warning about one file,
and Ctrl-C stopping a watcher."""

from __future__ import annotations

import io
import logging
import os
import queue
import signal
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from PIL import Image

from findimage import encoders
from findimage.inference import export
from tests.support.cli import FINDIMAGE, findimage, json_in_process, run_in_process
from tests.support.pictures import draw_shape, encode, make_library

CEILING_SECONDS = 120


@pytest.fixture
def library(tmp_path: Path, findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str]):
    root = tmp_path / "library"
    make_library(root, 6)
    (root / "empty").mkdir()
    json_in_process(capsys, "index", str(root))
    return root


def test_a_folder_the_library_lacks_is_named_as_the_cause(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_in_process(capsys, "search", "picture", "--in", "tirps")
    assert (code, out) == (2, "")
    # (Before it, the test model's loading lines.)
    assert err.splitlines()[-1] + "\n" == (
        f"findimage: The library {library} has no folder tirps: give a folder inside it, "
        "written from its root like marketing/2024.\n"
    )
    # A folder that is there but holds no picture still finds nothing, plainly.
    code, out, err = run_in_process(capsys, "search", "picture", "--in", "empty")
    assert (code, err) == (0, "")
    assert out.startswith("The library has no pictures in a folder “empty”")


def _corrupt_exif_jpeg() -> bytes:
    """A JPEG whose EXIF block says it holds 40 entries and holds none (Pillow then warns
    "Corrupt EXIF data" when it reads the EXIF)."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 40) + b"\x00" * 12
    stream = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(stream, "JPEG", exif=b"Exif\x00\x00" + tiff)
    return stream.getvalue()


def test_a_picture_library_warning_about_one_file_stays_off_the_terminal(
    library: Path, findimage_env: dict[str, str]
) -> None:
    (library / "corrupt-exif.jpg").write_bytes(_corrupt_exif_jpeg())
    done = findimage("index", str(library), env={}, cwd=library.parent)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("Indexed 1, unchanged 6,")
    # With -v it is there, for whoever looks into the run.
    (library / "corrupt-exif.jpg").write_bytes(_corrupt_exif_jpeg() + b"\x00")
    done = findimage("-v", "index", str(library), env={}, cwd=library.parent)
    assert "Corrupt EXIF data" in done.stderr


def test_ctrl_c_stops_a_watcher_with_one_line(library: Path, findimage_env: dict[str, str]) -> None:
    # Not indexed yet: the catch-up run says so, and then the watcher follows changes.
    (library / "before.png").write_bytes(encode(draw_shape("green", "circle", (64, 64))))
    process = subprocess.Popen(
        [*FINDIMAGE, "index", "--watch", str(library)],
        env={**os.environ, **findimage_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    said: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    def wait_for(text: str, seconds: float = CEILING_SECONDS) -> bool:
        while True:
            try:
                said.append(lines.get(timeout=seconds))
            except queue.Empty:
                return False
            if text in said[-1]:
                return True

    threading.Thread(target=pump, daemon=True).start()
    try:
        assert wait_for("findimage: watching"), said
        assert wait_for("Indexed 1, removed 0, skipped 0."), said
        # Pictures added and indexed, each burst reported: the watcher is past its catch-up
        # and waiting for changes, not indexing, when Ctrl-C comes. One added while it is
        # still starting waits for the next burst: add another then.
        written = indexed = 0
        for _ in range(CEILING_SECONDS // 5):
            if not indexed:
                picture = draw_shape("blue", "circle", (64 + written, 64))
                (library / f"added-{written}.png").write_bytes(encode(picture))
                written += 1
            if wait_for("Indexed ", seconds=5):
                indexed += int(said[-1].split("Indexed ")[1].split(",")[0])
            if indexed and indexed >= written:
                break
        else:
            raise AssertionError(f"not every picture added was indexed: {said}")
        process.send_signal(signal.SIGINT)
        assert process.wait(CEILING_SECONDS) == 0, said
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(CEILING_SECONDS)
    while True:
        try:
            said.append(lines.get(timeout=5))
        except queue.Empty:
            break
    last_burst = max(place for place, line in enumerate(said) if "Indexed " in line)
    after = said[last_burst + 1 :]
    assert after == ["findimage: stopped watching.\n"]


@pytest.mark.slow
def test_the_int8_fall_back_is_said_once_per_process(
    library: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Between what int8 reaches with the test model (about 0.9999) and what fp32 reaches.
    monkeypatch.setattr(export, "MIN_AGREEMENT", 0.99999)
    # Whatever an earlier test in this process said.
    monkeypatch.setattr(encoders, "_FALLBACKS_SAID", set(), raising=False)
    monkeypatch.setenv("FINDIMAGE_MODEL_CACHE", str(tmp_path / "fresh-cache"))
    for _ in range(3):
        code, _, err = run_in_process(capsys, "search", "picture", "-k", "1")
        assert code == 0, err
    said = [
        record.getMessage()
        for record in caplog.records
        if "fp32 instead" in record.getMessage() and record.levelno >= logging.WARNING
    ]
    assert len(said) == 1 and "text model" in said[0]
