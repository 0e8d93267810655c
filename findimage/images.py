"""Opening pictures safely: size limits, decompression bombs, EXIF orientation, RGB."""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from findimage.documents import GeoPoint
from findimage.errors import ImageError
from findimage.raw import RAW_EXTENSIONS, decode_raw, may_be_raw, raw_support

log = logging.getLogger(__name__)

# HEIC and HEIF, phones' default format, through pillow-heif's Pillow plugin: Image.open
# then reads them like any other format, with the same size and bomb checks.
register_heif_opener()

# AVIF through Pillow's own plugin (Pillow 11.2 and later, where built with libavif); where
# Pillow cannot read it, an .avif file is listed as skipped with UNREADABLE.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
    | RAW_EXTENSIONS
)
NOT_A_FILE = "not a regular file (a FIFO, socket or device): left unopened"
UNREADABLE = "not a picture findimage can read (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC or AVIF)"

# CLIP ViT-B/32 looks at 224 pixels: a JPEG is decoded at the smallest scale that still
# covers them (a 4000x3000 photo at 1/8). Previews decode the file again at their own size.
DECODE_MIN_SIDE = 224

_ORIENTATIONS_THAT_SWAP_SIDES = {5, 6, 7, 8}
_EXIF_IFD = ExifTags.IFD.Exif
# decode_image refuses oversized pictures itself, with a reason; Pillow's warning would only
# add noise on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
_GPS_IFD = ExifTags.IFD.GPSInfo


@dataclass
class DecodedImage:
    """A picture ready for the encoder, with what we learned about the original file."""

    image: Image.Image
    width: int
    height: int
    taken_at: datetime | None
    gps: GeoPoint | None


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ImageError(
            f"the file is {size / 1024 / 1024:.1f} MB, over the "
            f"{max_bytes / 1024 / 1024:.0f} MB limit (FINDIMAGE_MAX_FILE_MB)"
        )


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """A regular file's bytes, refused (ImageError) over `max_bytes`, OSError when it cannot
    be read. Opened without blocking, so a FIFO (a query picture, or a library file that
    became one since it was listed) is refused instead of waited on forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, NOT_A_FILE)
        data = stream.read(max_bytes + 1)
    check_size(len(data), max_bytes)
    return data


def decode_image(data: bytes, max_bytes: int, min_side: int = DECODE_MIN_SIDE) -> DecodedImage:
    """Decode picture bytes into an RGB image whose short side is about `min_side` pixels.

    Raises ImageError with the reason for empty, oversized, truncated, unsupported files
    and decompression bombs.
    """
    if not data:
        raise ImageError("the file is empty")
    check_size(len(data), max_bytes)
    try:
        if may_be_raw(data) and raw_support():
            picture = decode_raw(data, min_side)
            if picture is not None:
                return _decode_opened(picture, min_side)
        with Image.open(io.BytesIO(data)) as opened:
            return _decode_opened(opened, min_side)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(UNREADABLE) from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"refused as a decompression bomb ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"the picture is damaged or truncated ({exc})") from None
    except Exception as exc:
        # Whatever else a decoder raises (LibRaw's own errors, a plugin's bug) is this one
        # file's problem, never the run's; the traceback is for -v.
        log.info("unexpected failure decoding a picture", exc_info=True)
        raise ImageError(
            f"the picture is damaged or truncated ({type(exc).__name__}: {exc})"
        ) from None


def _decode_opened(opened: Image.Image, min_side: int) -> DecodedImage:
    width, height = opened.size
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise ImageError(
            f"refused as a decompression bomb ({width}x{height} pixels, over the limit of {limit})"
        )
    exif = opened.getexif()
    orientation = exif.get(ExifTags.Base.Orientation, 1)
    if orientation in _ORIENTATIONS_THAT_SWAP_SIDES:
        width, height = height, width
    if opened.format == "JPEG":
        opened.draft("RGB", (min_side, min_side))
    opened.seek(0)
    opened.load()
    image = ImageOps.exif_transpose(opened) or opened
    image = _shrink(_to_rgb(image), min_side)
    return DecodedImage(
        image=image,
        width=width,
        height=height,
        taken_at=_taken_at(exif),
        gps=_gps(exif),
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}:
        return _high_depth_to_rgb(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """Stretch 16-bit and float pixels into 8 bits instead of clipping them to white."""
    pixels = np.asarray(image, dtype=np.float64)
    low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels - low) / (high - low) * 255.0 if high > low else np.zeros_like(pixels)
    return Image.fromarray(scaled.astype(np.uint8), mode="L").convert("RGB")


def _shrink(image: Image.Image, min_side: int) -> Image.Image:
    short = min(image.size)
    if short <= min_side:
        return image
    scale = min_side / short
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)


def _taken_at(exif: Image.Exif) -> datetime | None:
    raw = exif.get_ifd(_EXIF_IFD).get(ExifTags.Base.DateTimeOriginal) or exif.get(
        ExifTags.Base.DateTime
    )
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        log.debug("unreadable EXIF date %r", raw)
        return None


def _gps(exif: Image.Exif) -> GeoPoint | None:
    gps = exif.get_ifd(_GPS_IFD)
    try:
        lat = _degrees(gps[ExifTags.GPS.GPSLatitude], gps.get(ExifTags.GPS.GPSLatitudeRef, "N"))
        lon = _degrees(gps[ExifTags.GPS.GPSLongitude], gps.get(ExifTags.GPS.GPSLongitudeRef, "E"))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return GeoPoint(lat=lat, lon=lon)


def _degrees(dms: tuple, ref: str) -> float:
    degrees, minutes, seconds = (float(part) for part in dms)
    value = degrees + minutes / 60 + seconds / 3600
    return -value if ref in {"S", "W"} else value
