"""The small library every VectorStore is tested on: five pictures in nested folders, with
vectors whose ranking is known."""

from __future__ import annotations

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
