from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from findimage.errors import ImageError
from findimage.images import DECODE_MIN_SIDE, decode_image
from findimage.library import LocalFolder
from findimage.settings import load_settings
from tests.support.pictures import draw_shape, encode, exif_jpeg

MAX_BYTES = 10 * 1024 * 1024


def test_rgb_jpeg_keeps_its_size_and_mode() -> None:
    decoded = decode_image(encode(draw_shape("blue", "circle", (120, 90)), "JPEG"), MAX_BYTES)
    assert decoded.image.mode == "RGB"
    assert (decoded.width, decoded.height) == (120, 90)
    assert decoded.image.size == (120, 90)
    assert decoded.taken_at is None and decoded.gps is None


def test_exif_orientation_is_applied_and_reported_sides_swap() -> None:
    decoded = decode_image(exif_jpeg(orientation=6), MAX_BYTES)
    assert decoded.image.size == (40, 80)
    assert (decoded.width, decoded.height) == (40, 80)


def test_exif_capture_date_and_gps_are_read() -> None:
    decoded = decode_image(exif_jpeg(when="2024:07:14 09:30:05", gps=True), MAX_BYTES)
    assert decoded.taken_at is not None
    assert decoded.taken_at.isoformat() == "2024-07-14T09:30:05"
    assert decoded.gps is not None
    assert decoded.gps.lat == pytest.approx(46.5)
    assert decoded.gps.lon == pytest.approx(-(7 + 15 / 60 + 36 / 3600))


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("P", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"), ("L", "PNG"), ("CMYK", "JPEG"), ("1", "BMP")],
)
def test_every_mode_becomes_rgb(mode: str, fmt: str) -> None:
    image = draw_shape("green", "triangle", (50, 60)).convert(mode)
    decoded = decode_image(encode(image, fmt), MAX_BYTES)
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (50, 60)


def test_transparent_pixels_become_white_not_black() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    decoded = decode_image(encode(image, "PNG"), MAX_BYTES)
    assert decoded.image.getpixel((5, 5)) == (255, 255, 255)


def test_sixteen_bit_greyscale_is_stretched_not_clipped() -> None:
    image = Image.new("I;16", (4, 1))
    image.putdata([0, 1000, 30000, 65535])
    decoded = decode_image(encode(image, "PNG"), MAX_BYTES)
    values = [decoded.image.getpixel((x, 0))[0] for x in range(4)]
    assert values[0] == 0 and values[-1] == 255
    assert values == sorted(values) and len(set(values)) == 4


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), color) for color in [(255, 0, 0), (0, 0, 255)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    decoded = decode_image(buffer.getvalue(), MAX_BYTES)
    red, _, blue = decoded.image.getpixel((10, 10))
    assert red > 200 and blue < 50


def test_large_jpeg_is_reduced_to_about_the_decode_size() -> None:
    big = draw_shape("orange", "circle", (2400, 1600))
    decoded = decode_image(encode(big, "JPEG", quality=80), MAX_BYTES)
    assert (decoded.width, decoded.height) == (2400, 1600)
    assert min(decoded.image.size) == DECODE_MIN_SIDE
    assert decoded.image.size[0] == pytest.approx(DECODE_MIN_SIDE * 1.5, abs=2)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"this is plain text, not a picture", "not a picture"),
        (encode(draw_shape("red", "circle", (200, 200)), "JPEG")[:300], "damaged or truncated"),
        (encode(draw_shape("red", "circle", (200, 200)), "PNG")[:200], "damaged or truncated"),
    ],
)
def test_broken_files_are_refused_with_their_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        decode_image(data, MAX_BYTES)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # 144 megapixels in 17 kB: over Pillow's default pixel limit, tiny on disk.
    bomb = encode(Image.new("1", (12000, 12000)), "PNG")
    assert len(bomb) < 100_000
    with pytest.raises(ImageError, match="decompression bomb"):
        decode_image(bomb, MAX_BYTES)


def test_file_over_the_size_limit_is_refused_with_the_setting_name() -> None:
    with pytest.raises(ImageError, match="FINDIMAGE_MAX_FILE_MB"):
        decode_image(encode(draw_shape("red", "circle"), "PNG"), max_bytes=100)


def test_a_file_of_exactly_the_size_limit_is_decoded_and_one_byte_more_is_refused() -> None:
    picture = encode(draw_shape("red", "circle"), "PNG")
    assert decode_image(picture, max_bytes=len(picture)).width == 96
    with pytest.raises(ImageError, match="FINDIMAGE_MAX_FILE_MB"):
        decode_image(picture, max_bytes=len(picture) - 1)


def test_a_library_file_of_exactly_the_size_limit_is_read_and_one_byte_more_is_refused(
    tmp_path: Path,
) -> None:
    picture = encode(draw_shape("red", "circle"), "PNG")
    (tmp_path / "exact.png").write_bytes(picture)
    (tmp_path / "over.png").write_bytes(picture + b"\0")
    library = LocalFolder(tmp_path)
    assert library.read("exact.png", max_bytes=len(picture)) == picture
    with pytest.raises(ImageError, match="FINDIMAGE_MAX_FILE_MB"):
        library.read("over.png", max_bytes=len(picture))


def test_the_size_limit_in_megabytes_is_that_many_mebibytes_to_the_byte(
    findimage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINDIMAGE_MAX_FILE_MB", str(12_345 / 1024 / 1024))
    assert load_settings().max_file_bytes == 12_345
    monkeypatch.setenv("FINDIMAGE_MAX_FILE_MB", "50")
    assert load_settings().max_file_bytes == 50 * 1024 * 1024
