"""The embedded store's scan is exact: recall@10 of 1.0 against a float64 ranking, adversarially.

The representation chosen for 1M x 512 (BENCHMARKS.md) is float32 rows scanned by one BLAS
product, so its ranking must match the exact one wherever float32 can tell two cosines
apart: near-duplicates a hair apart, many rows on one cosine, rows moved by deletions and
patched in by later writes, the scan capped to one BLAS thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from findimage.documents import ImageDocument
from findimage.stores.embedded import EmbeddedStore
from tests.support.documents import make_document

DIMS = 128
K = 10
# float32 sums of 128 products are good to about 1e-6; neighbors here are further apart.
SEPARATION = 2e-5


def _document(index: int) -> ImageDocument:
    return make_document(f"folder{index % 5}/picture{index}.jpg", sha256=f"{index:064x}")


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def _adversarial(rng: np.random.Generator, query: np.ndarray, count: int) -> np.ndarray:
    """Mostly noise, plus a ladder of near-duplicates of the query `SEPARATION` apart in
    cosine, and a plateau of rows sharing one cosine just under the ladder's tenth rung."""
    vectors = _unit(rng.normal(size=(count, DIMS)))
    orthogonal = _unit(rng.normal(size=DIMS) - (rng.normal(size=DIMS) @ query) * query)
    orthogonal = _unit(orthogonal - (orthogonal @ query) * query)
    ladder = 0.95 - SEPARATION * np.arange(40)
    for row, cosine in enumerate(ladder):
        vectors[row * 97] = cosine * query + np.sqrt(1 - cosine**2) * orthogonal
    plateau = 0.95 - SEPARATION * 9.5
    for row in range(40 * 97, 40 * 97 + 30):
        other = _unit(rng.normal(size=DIMS))
        other = _unit(other - (other @ query) * query)
        vectors[row] = plateau * query + np.sqrt(1 - plateau**2) * other
    return vectors


def _exact_top(vectors: np.ndarray, ids: list[str], query: np.ndarray, k: int) -> set[str]:
    cosines = vectors @ query
    return {ids[i] for i in np.argsort(-cosines, kind="stable")[:k]}


@pytest.mark.parametrize("scan_threads", [None, 1])
def test_recall_at_10_is_one_against_a_float64_ranking(
    tmp_path: Path, scan_threads: int | None
) -> None:
    rng = np.random.default_rng(3)
    query = _unit(rng.normal(size=DIMS))
    vectors = _adversarial(rng, query, 20_000)
    documents = [_document(i) for i in range(len(vectors))]
    ids = [doc.id for doc in documents]
    store = EmbeddedStore(tmp_path, scan_threads=scan_threads)
    writer = EmbeddedStore(tmp_path)
    try:
        writer.upsert(list(zip(documents, vectors.astype(np.float32), strict=True)))
        hits = store.search(query.astype(np.float32), K)
        assert {hit.document.id for hit in hits} == _exact_top(vectors, ids, query, K)
        scores = [hit.score for hit in hits]
        assert scores == sorted(scores, reverse=True)

        # Deletions move the last rows into the gaps; later writes are patched in.
        removed = set(rng.choice(len(vectors), 3_000, replace=False).tolist()) - {0, 97}
        writer.delete([ids[i] for i in removed])
        moved = _unit(query + rng.normal(scale=0.05, size=(50, DIMS)))
        replaced = list(range(1, 51))
        writer.upsert(
            [(documents[i], v.astype(np.float32)) for i, v in zip(replaced, moved, strict=True)]
        )
        vectors[replaced] = moved
        kept = [i for i in range(len(vectors)) if i not in removed]
        expected = _exact_top(vectors[kept], [ids[i] for i in kept], query, K)
        assert {hit.document.id for hit in store.search(query.astype(np.float32), K)} == expected

        inside = [i for i in kept if documents[i].folder == "folder2"]
        expected = _exact_top(vectors[inside], [ids[i] for i in inside], query, K)
        found = store.search(query.astype(np.float32), K, folder="folder2")
        assert {hit.document.id for hit in found} == expected
    finally:
        store.close()
        writer.close()
