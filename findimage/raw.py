"""Camera RAW pictures (dng, cr2, nef, arw, raf, rw2) through rawpy (LibRaw), an optional extra.

The embedded JPEG preview is used when it is large enough for the model, as it is the
camera's own rendering and costs nothing to decode; otherwise the sensor data is
demosaiced at half size, which is still far above what the model looks at.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

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

    try:
        raw = rawpy.imread(io.BytesIO(data))
    except (rawpy.LibRawFileUnsupportedError, rawpy.LibRawIOError):
        return None
    with raw:
        preview = _preview(raw, rawpy)
        if preview is not None and min(preview.size) >= min_side:
            return preview
        return Image.fromarray(raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8))


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
