"""Every kind of odd file a team throws at the bot: good ones (odd formats, modes, sizes and
names) and bad ones, each with the reason findimage gives for refusing it."""

from __future__ import annotations

import io
import os
from collections.abc import Callable

import numpy as np
from PIL import Image

import findimage.images  # noqa: F401 - registers the HEIF format the phone picture is saved in
from tests.support.pictures import draw_shape, encode, gradient

MAX_FILE_MB = 0.1  # small enough that a 200 kB noise picture is over it


def _noise(size: tuple[int, int]) -> Image.Image:
    pixels = np.random.default_rng(3).integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def _animated(fmt: str) -> bytes:
    frames = [draw_shape(color, "circle") for color in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def _palette_with_transparency() -> bytes:
    image = draw_shape("red", "circle").convert("P")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)
    return buffer.getvalue()


GOOD: dict[str, Callable[[], bytes]] = {
    "png-named.jpg": lambda: encode(draw_shape("red", "square")),
    "phone.heic": lambda: encode(draw_shape("green", "triangle"), "HEIF"),
    "sixteen-bit.png": lambda: encode(
        Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    ),
    "cmyk.jpg": lambda: encode(draw_shape("blue", "circle").convert("CMYK"), "JPEG"),
    "palette-transparent.png": _palette_with_transparency,
    "la.png": lambda: encode(draw_shape("green", "square").convert("LA")),
    "animated.gif": lambda: _animated("GIF"),
    "animated.webp": lambda: _animated("WEBP"),
    "one-pixel.png": lambda: encode(Image.new("RGB", (1, 1), "red")),
    "ten-thousand-by-ten.png": lambda: encode(gradient((10000, 10))),
    "fête 写真 🌅.png": lambda: encode(draw_shape("red", "triangle")),
    "صورة.png": lambda: encode(draw_shape("blue", "triangle")),
    "line\nbreak.png": lambda: encode(draw_shape("green", "circle")),
    # An escape sequence that would retitle the terminal if printed raw.
    "\x1b]0;pwned\x07title.png": lambda: encode(draw_shape("blue", "square")),
}


BAD: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty.jpg": (lambda: b"", "empty"),
    "truncated.jpg": (
        lambda: encode(draw_shape("red", "circle", (200, 200)), "JPEG")[:300],
        "damaged or truncated",
    ),
    "truncated.png": (
        lambda: encode(draw_shape("red", "circle", (200, 200)))[:200],
        "damaged or truncated",
    ),
    "random.png": (lambda: os.urandom(4096), "not a picture"),
    "empty\nwith a newline.jpg": (lambda: b"", "empty"),
    "bomb.png": (lambda: encode(Image.new("1", (12000, 12000))), "decompression bomb"),
    "too-big.png": (lambda: encode(_noise((300, 300))), "FINDIMAGE_MAX_FILE_MB"),
}
