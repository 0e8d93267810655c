"""Camera RAW pictures (dng, cr2, nef, arw, raf, rw2) through rawpy (LibRaw), an optional extra.

The embedded JPEG preview is used when it is large enough for the model, as it is the
camera's own rendering and costs nothing to decode; otherwise the sensor data is
demosaiced at half size, which is still far above what the model looks at.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

from PIL import Image

log = logging.getLogger(__name__)

RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".nef", ".arw", ".raf", ".rw2"})
RAW_EXTRA = "a camera RAW picture: install the raw extra (pip install 'findimage[raw]') to read it"

# DNG, CR2, NEF and ARW are TIFF containers; RAF and RW2 have magic numbers of their own.
_RAW_MAGIC = (b"II*\x00", b"MM\x00*", b"FUJIFILMCCD-RAW", b"IIU\x00")


def raw_support() -> bool:
    """Whether the raw extra (rawpy) is installed."""
    try:
        import rawpy  # noqa: F401
    except ImportError:
        return False
    return True


def may_be_raw(data: bytes) -> bool:
    """True for what LibRaw may read; plain TIFFs share the magic and are told apart by it."""
    return data.startswith(_RAW_MAGIC)


def decode_raw(data: bytes, min_side: int) -> Image.Image | None:
    """The picture in RAW bytes, or None when LibRaw does not take them for a RAW file."""
    import rawpy

    with _libraw_messages_captured():
        try:
            raw = rawpy.imread(io.BytesIO(data))
        except (rawpy.LibRawFileUnsupportedError, rawpy.LibRawIOError):
            return None
        with raw:
            preview = _preview(raw, rawpy)
            if preview is not None and min(preview.size) >= min_side:
                return preview
            pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
    return Image.fromarray(pixels)


def _preview(raw: Any, rawpy: Any) -> Image.Image | None:
    """The camera's embedded preview, when it has one Pillow can show."""
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        return Image.open(io.BytesIO(thumb.data))
    if thumb.format == rawpy.ThumbFormat.BITMAP:
        return Image.fromarray(thumb.data)
    return None


# What LibRaw's default data-error handler prints for a damaged file ("unknown file" when,
# as here, it reads from memory): libraw_datastream.cpp, default_data_callback.
_LIBRAW_MESSAGE = re.compile(rb"^.*: (?:Unexpected end of file|data corrupted at \d+)\r?\n?$")


class _StderrCapture:
    """File descriptor 2 pointed at a temporary file while any RAW decode runs.

    LibRaw prints a damaged file's messages with fprintf(stderr), below Python, and rawpy
    offers no way to set LibRaw's data-error handler; the file is skipped with its reason
    anyway, so the message is only a detail (logged at DEBUG). fd 2 belongs to the whole
    process, and the decode pipeline runs several threads: saving and restoring it per
    decode would let two decodes restore each other's copy and lose stderr for good. So the
    threads share one capture, counted under a lock: the first decode in points fd 2 at the
    file, the last one out points it back. RAW decodes keep running side by side. Anything
    else written to stderr meanwhile (another thread's log line) lands in the file too and
    is written to the real stderr when the capture ends, late but not lost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved_fd: int | None = None
        self._file: IO[bytes] | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._start()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._end()

    def _start(self) -> None:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no stderr to speak of (closed): nothing to capture
            return
        try:
            # Kept open past this call, until the last decode out closes it in _end.
            capture = tempfile.TemporaryFile()  # noqa: SIM115
        except OSError:  # no room for a temporary file: LibRaw's lines stay on stderr
            os.close(saved)
            return
        os.dup2(capture.fileno(), 2)
        self._saved_fd, self._file = saved, capture

    def _end(self) -> None:
        if self._saved_fd is None or self._file is None:
            return
        with suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        self._saved_fd = None
        with self._file as capture:
            capture.seek(0)
            captured = capture.read()
        self._file = None
        others = []
        for line in captured.splitlines(keepends=True):
            if _LIBRAW_MESSAGE.match(line):
                log.debug("LibRaw: %s", line.decode("utf-8", "replace").strip())
            else:
                others.append(line)
        if others:
            with suppress(OSError):
                os.write(2, b"".join(others))


_libraw_messages_captured = _StderrCapture()
