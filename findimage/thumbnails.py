"""Small JPEGs of library pictures, made the first time one is asked for and kept.

A grid of fifty results asks for fifty pictures at once: decoding fifty originals (a 24 MP
JPEG, a HEIC, a RAW) for each page would take seconds, so each size of each picture is
rendered once and kept in the data dir. The file name carries the picture's content hash,
so a picture changed in the library gets a new thumbnail and never shows its old one.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from findimage.documents import ImageDocument
from findimage.images import decode_image
from findimage.library import Library

THUMBNAIL_JPEG_QUALITY = 82


def render_thumbnail(library: Library, relative_path: str, max_bytes: int, side: int) -> bytes:
    """A JPEG of one picture of the library, at most `side` pixels on its long side; never
    reads a file outside the library."""
    data = library.read(relative_path, max_bytes)
    image = decode_image(data, max_bytes, min_side=side).image
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=THUMBNAIL_JPEG_QUALITY)
    return buffer.getvalue()


class ThumbnailCache:
    """Thumbnails of one library, kept in `folder` by picture content and size."""

    def __init__(self, folder: Path, library: Library, max_bytes: int):
        self._folder = folder
        self._library = library
        self._max_bytes = max_bytes

    def get(self, document: ImageDocument, side: int) -> bytes:
        """The thumbnail, from the cache or rendered now and kept. Raises what reading or
        decoding the picture raises (a picture gone from the library, a damaged file)."""
        path = self._folder / f"{document.sha256[:32]}-{side}.jpg"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        data = render_thumbnail(self._library, document.path, self._max_bytes, side)
        self._keep(path, data)
        return data

    def _keep(self, path: Path, data: bytes) -> None:
        """Written whole or not at all: a reader never sees half a JPEG, and two requests
        rendering the same thumbnail at once both end with a good file. A cache that cannot
        be written (a read-only or full disk) only costs the next request a render."""
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            handle, part = tempfile.mkstemp(dir=self._folder, suffix=".part")
        except OSError:
            return
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(part, path)
        except OSError:
            Path(part).unlink(missing_ok=True)
