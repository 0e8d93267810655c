"""The small library every VectorStore is tested on: five pictures in nested folders, with
vectors whose ranking is known."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np

from findimage.documents import ImageDocument, ModelInfo
from tests.support.documents import make_document

DIMS = 8


MODELS = ModelInfo(image_model="clip-image", text_model="clip-text", dims=DIMS)


START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def unit_vector(values: list[float]) -> np.ndarray:
    vector = np.asarray(values + [0.0] * (DIMS - len(values)), dtype=np.float32)
    return vector / np.linalg.norm(vector)


def library_document(path: str, minutes: int = 0, **extra: object) -> ImageDocument:
    return make_document(
        path,
        size=1000 + len(path),
        mtime=1_700_000_000.25 + minutes,
        sha256=f"sha-{path}",
        width=64,
        height=48,
        indexed_at=START + timedelta(minutes=minutes),
        **extra,
    )


LIBRARY = [
    (library_document("top.jpg", 0), unit_vector([1.0, 0.0])),
    (library_document("a/b/near.jpg", 1), unit_vector([1.0, 0.2])),
    (library_document("a/b/c/deeper.jpg", 2), unit_vector([1.0, 0.6])),
    (library_document("a/bc/sibling.jpg", 3), unit_vector([1.0, 0.1])),
    (library_document("x/far.jpg", 4), unit_vector([-1.0, 0.3])),
]


# Dates on the bounds of `--after`/`--before`: after is inclusive, before exclusive, for the
# EXIF date and the file date alike (Elasticsearch's `gte` and `lt`; findimage/filters.py).
AFTER = datetime(2024, 6, 1)
BEFORE = datetime(2024, 7, 1)
SECOND = timedelta(seconds=1)


def bound_library() -> list[tuple[ImageDocument, np.ndarray]]:
    """A picture on each bound, and one a second either side of it, by EXIF date ("exif/")
    and by file date alone ("file/"); ranked in that order for the query [1, 0]."""
    moments = {
        "second-before-after": AFTER - SECOND,
        "on-after": AFTER,
        "second-before-before": BEFORE - SECOND,
        "on-before": BEFORE,
    }
    documents = []
    for rank, (name, moment) in enumerate(moments.items()):
        exif = library_document(f"exif/{name}.jpg", rank, taken_at=moment)
        by_file = replace(
            library_document(f"file/{name}.jpg", rank + 4),
            mtime=moment.replace(tzinfo=UTC).timestamp(),
        )
        documents += [
            (exif, unit_vector([1.0, 0.1 * rank])),
            (by_file, unit_vector([1.0, 0.1 * rank + 0.05])),
        ]
    return documents
