"""A camera RAW file the real LibRaw reads: a tiny DNG (a TIFF with the DNG tags and a
Bayer pattern), written by Pillow. Cut short, it makes LibRaw raise LibRawIOError while
demosaicing, as a truncated copy from a camera card does."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, TiffImagePlugin


def tiny_dng(side: int = 256) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 65535, (side, side)).astype(np.uint16)
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[50706] = (1, 4, 0, 0)  # DNGVersion
    tags[50707] = (1, 1, 0, 0)  # DNGBackwardVersion
    tags[50708] = "findimage test camera"  # UniqueCameraModel
    tags[33421] = (2, 2)  # CFARepeatPatternDim
    tags[33422] = b"\x00\x01\x01\x02"  # CFAPattern: RGGB
    tags[262] = 32803  # PhotometricInterpretation: CFA
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "TIFF", tiffinfo=tags)
    return buffer.getvalue()


def truncated_dng() -> bytes:
    data = tiny_dng()
    return data[: len(data) // 2]
