"""Pictures drawn with Pillow for the tests: colored shapes, modes, EXIF, and broken files."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, TiffImagePlugin

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 180, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 220, 40),
    "black": (15, 15, 15),
    "white": (245, 245, 245),
    "orange": (250, 140, 20),
    "purple": (140, 40, 180),
}
SHAPES = ("circle", "square", "triangle")


def draw_shape(
    color: str,
    shape: str,
    size: tuple[int, int] = (96, 96),
    background: tuple[int, int, int] = (128, 128, 128),
    offset: int = 0,
) -> Image.Image:
    """A `color` `shape` on a plain background; `offset` shifts it to vary similar pictures."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    width, height = size
    margin = min(width, height) // 6
    box = (margin + offset, margin + offset, width - margin + offset, height - margin + offset)
    fill = COLORS[color]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon(
            [(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=fill
        )
    return image


def exif_jpeg(
    orientation: int | None = None,
    when: str | None = None,
    gps: bool = False,
    image: Image.Image | None = None,
    at: tuple[float, float] | None = None,
) -> bytes:
    """A JPEG with the EXIF orientation, capture date ("2024:06:03 10:00:00") and GPS position
    asked for: `gps` puts a fixed point in, `at` a (latitude, longitude) in degrees."""
    image = image or draw_shape("red", "square", size=(80, 40))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if when is not None:
        exif.get_ifd(0x8769)[0x9003] = when
    if gps:
        at = (46.5, -(7 + 15 / 60 + 36 / 3600))
    if at is not None:
        lat, lon = at
        exif.get_ifd(0x8825).update(
            {1: "N" if lat >= 0 else "S", 2: _dms(lat), 3: "E" if lon >= 0 else "W", 4: _dms(lon)}
        )
    return encode(image, "JPEG", exif=exif.tobytes())


def _dms(degrees: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    """Degrees as EXIF writes them: whole degrees, whole minutes, seconds in hundredths."""
    rational = TiffImagePlugin.IFDRational
    value = abs(degrees)
    whole, minutes = int(value), int(value * 60) % 60
    seconds = round((value * 3600 - whole * 3600 - minutes * 60) * 100)
    return (rational(whole, 1), rational(minutes, 1), rational(seconds, 100))


def gradient(size: tuple[int, int] = (120, 80), seed: int = 0) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size)
    image.putdata(
        [
            (
                (x * 255 // width + seed * 37) % 256,
                (y * 255 // height + seed * 91) % 256,
                seed * 53 % 256,
            )
            for y in range(height)
            for x in range(width)
        ]
    )
    return image


def save(image: Image.Image, path: Path, **params: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **params)
    return path


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def make_library(root: Path, count: int) -> list[Path]:
    """`count` distinct pictures spread over a few folders, as JPEG and PNG."""
    paths = []
    for index in range(count):
        color = list(COLORS)[index % len(COLORS)]
        shape = SHAPES[(index // len(COLORS)) % len(SHAPES)]
        folder = ["", "trips", "trips/2024", "marketing"][index % 4]
        picture = draw_shape(
            color, shape, size=(64 + index % 50, 64 + index % 30), offset=index % 7
        )
        picture.paste(gradient((16, 16), seed=index), (0, 0))
        suffix = ".jpg" if index % 2 else ".png"
        paths.append(save(picture, root / folder / f"{color}-{shape}-{index:04d}{suffix}"))
    return paths
