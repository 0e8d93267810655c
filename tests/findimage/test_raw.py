"""Camera RAW pictures: the embedded preview when it is large enough, a half-size demosaic
otherwise, plain TIFFs left to Pillow, and RAW files skipped with a reason without the extra.

No installable package writes RAW files, so the preview and demosaic branches run against a
stand-in for rawpy (the far edge: LibRaw itself); set FINDIMAGE_TEST_RAW_SAMPLE to a real
RAW file to decode one through LibRaw as well.
"""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from findimage.images import decode_image
from findimage.raw import RAW_EXTRA
from indexer.walk import LibraryFile, WalkSkip, walk_library
from tests.support.pictures import draw_shape, encode, gradient, save

MAX_BYTES = 50 * 1024 * 1024
TIFF_MAGIC = b"II*\x00"


class _Unsupported(Exception):
    pass


class _NoThumbnail(Exception):
    pass


@dataclass
class _Thumb:
    format: str
    data: object


class _FakeRaw:
    """What rawpy.imread returns, for one file: its preview and its demosaiced pixels."""

    def __init__(self, thumb: _Thumb | None, pixels: np.ndarray):
        self._thumb, self._pixels = thumb, pixels
        self.postprocessed_with: dict | None = None

    def __enter__(self) -> _FakeRaw:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def extract_thumb(self) -> _Thumb:
        if self._thumb is None:
            raise _NoThumbnail
        return self._thumb

    def postprocess(self, **options: object) -> np.ndarray:
        self.postprocessed_with = options
        return self._pixels


def _fake_rawpy(monkeypatch: pytest.MonkeyPatch, opened: _FakeRaw) -> None:
    module = types.SimpleNamespace(
        imread=lambda file: opened,
        LibRawFileUnsupportedError=_Unsupported,
        LibRawIOError=OSError,
        LibRawNoThumbnailError=_NoThumbnail,
        LibRawUnsupportedThumbnailError=_NoThumbnail,
        ThumbFormat=types.SimpleNamespace(JPEG="jpeg", BITMAP="bitmap"),
    )
    monkeypatch.setitem(sys.modules, "rawpy", module)


def test_a_large_embedded_preview_is_the_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    preview = encode(draw_shape("red", "circle", size=(400, 300)), "JPEG")
    raw = _FakeRaw(_Thumb("jpeg", preview), np.zeros((8, 8, 3), np.uint8))
    _fake_rawpy(monkeypatch, raw)

    decoded = decode_image(TIFF_MAGIC + b"raw sensor data", MAX_BYTES)

    assert (decoded.width, decoded.height) == (400, 300)
    assert raw.postprocessed_with is None
    red, green, blue = decoded.image.getpixel((decoded.image.width // 2, decoded.image.height // 2))
    assert red > 200 and green < 60 and blue < 60


def test_a_small_preview_gives_way_to_a_half_size_demosaic(monkeypatch: pytest.MonkeyPatch) -> None:
    small = encode(draw_shape("red", "circle", size=(160, 120)), "JPEG")
    pixels = np.zeros((600, 800, 3), np.uint8)
    pixels[..., 2] = 255  # a blue sensor picture, unlike the red preview
    raw = _FakeRaw(_Thumb("jpeg", small), pixels)
    _fake_rawpy(monkeypatch, raw)

    decoded = decode_image(b"FUJIFILMCCD-RAW 0201", MAX_BYTES)

    assert raw.postprocessed_with is not None and raw.postprocessed_with["half_size"] is True
    assert (decoded.width, decoded.height) == (800, 600)
    assert decoded.image.getpixel((10, 10)) == (0, 0, 255)


def test_a_raw_without_a_preview_is_demosaiced(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _FakeRaw(None, np.full((300, 400, 3), 128, np.uint8))
    _fake_rawpy(monkeypatch, raw)

    decoded = decode_image(TIFF_MAGIC + b"no preview", MAX_BYTES)

    assert (decoded.width, decoded.height) == (400, 300)


def test_a_plain_tiff_is_left_to_pillow_by_the_real_libraw() -> None:
    pytest.importorskip("rawpy", reason="the raw extra is not installed")
    data = encode(gradient((300, 200)), "TIFF")
    assert data.startswith(TIFF_MAGIC)

    decoded = decode_image(data, MAX_BYTES)

    assert (decoded.width, decoded.height) == (300, 200)


def test_raw_files_are_skipped_with_the_extra_named_when_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rawpy", None)  # `import rawpy` now fails
    save(draw_shape("red", "circle"), tmp_path / "ok.png")
    (tmp_path / "camera.NEF").write_bytes(TIFF_MAGIC + b"raw")

    found = list(walk_library(tmp_path))

    assert [f.relative_path for f in found if isinstance(f, LibraryFile)] == ["ok.png"]
    assert [(s.relative_path, s.reason) for s in found if isinstance(s, WalkSkip)] == [
        ("camera.NEF", RAW_EXTRA)
    ]


@pytest.mark.skipif(
    not os.environ.get("FINDIMAGE_TEST_RAW_SAMPLE"),
    reason="no RAW sample: set FINDIMAGE_TEST_RAW_SAMPLE to a .dng/.cr2/.nef/.arw/.raf/.rw2 file",
)
def test_a_real_raw_sample_decodes_through_libraw() -> None:
    pytest.importorskip("rawpy", reason="the raw extra is not installed")
    data = Path(os.environ["FINDIMAGE_TEST_RAW_SAMPLE"]).read_bytes()

    decoded = decode_image(data, MAX_BYTES)

    assert min(decoded.image.size) >= 224


def test_libraws_messages_from_decodes_on_several_threads_are_logged_and_stderr_restored(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The decode pipeline runs RAW decodes side by side: LibRaw's C-level messages leave
    stderr for the DEBUG log, another thread's line written meanwhile still reaches stderr,
    and fd 2 is the same file afterwards (two decodes restoring each other's copy would
    lose it)."""
    pytest.importorskip("rawpy", reason="the raw extra is not installed")
    import threading

    from findimage.errors import ImageError
    from tests.support.raw_files import truncated_dng

    before = os.fstat(2)
    data = truncated_dng()
    start = threading.Barrier(5)
    failures: list[str] = []

    def decode() -> None:
        start.wait()
        try:
            decode_image(data, MAX_BYTES)
        except ImageError as exc:
            failures.append(str(exc))

    def say() -> None:
        start.wait()
        os.write(2, b"another thread's line\n")

    threads = [threading.Thread(target=decode) for _ in range(4)]
    threads.append(threading.Thread(target=say))
    with caplog.at_level("DEBUG", logger="findimage.raw"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    assert len(failures) == 4 and all("damaged or truncated" in f for f in failures)
    assert capfd.readouterr().err == "another thread's line\n"
    logged = [r.getMessage() for r in caplog.records if r.name == "findimage.raw"]
    assert logged == ["LibRaw: unknown file: Unexpected end of file"] * 4
