"""Embedded stores filled with random unit vectors, made once per size under the work folder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from findimage.documents import ImageDocument, ModelInfo, document_id
from findimage.stores.embedded import DATABASE_NAME, EmbeddedStore

WRITE_BATCH = 5_000


def unit_vectors(count: int, dims: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dims), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_documents(
    start: int, vectors: np.ndarray
) -> Iterator[tuple[ImageDocument, np.ndarray]]:
    now = datetime.now(UTC)
    for offset, vector in enumerate(vectors):
        i = start + offset
        path = f"folder{i % 50}/sub{i % 7}/picture{i}.jpg"
        yield (
            ImageDocument(
                id=document_id(path),
                path=path,
                name=f"picture{i}.jpg",
                folder=f"folder{i % 50}/sub{i % 7}",
                size=1000,
                mtime=1.0,
                sha256=f"{i:064x}",
                width=640,
                height=480,
                indexed_at=now,
            ),
            vector,
        )


def filled_store(folder: Path, count: int, dims: int, models: ModelInfo | None = None) -> Path:
    """A data dir whose index holds `count` random vectors; reused when it already does.

    A search service answers only an index that records its models (an index without them
    is empty to it): pass `models` for a store that the service will search.
    """
    marker = folder / "complete"
    if marker.exists():
        if models is not None:
            store = EmbeddedStore(folder)
            store.record_models(models)  # refused if the folder holds other models
            store.close()
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DATABASE_NAME).unlink(missing_ok=True)
    store = EmbeddedStore(folder)
    if models is not None:
        store.record_models(models)
    for start in range(0, count, WRITE_BATCH):
        size = min(WRITE_BATCH, count - start)
        store.upsert(list(synthetic_documents(start, unit_vectors(size, dims, seed=start))))
    store.close()
    marker.write_text(str(count))
    return folder
