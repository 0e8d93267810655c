"""Embedded store search latency against a bare numpy scan, side by side in one run.

    python bench/bench_embedded_search.py --count 100000 --dims 512

Prints, for the same random unit vectors: the bare `matrix @ query` + top-k that the
embedded store is built on, EmbeddedStore.search (the same plus SQLite lookups of the
k documents), the same with a folder filter, and the reload after another connection
wrote (what the bot pays once after each indexer batch).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bot.documents import ImageDocument, document_id
from bot.stores.embedded import EmbeddedStore


def _unit_vectors(count: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.normal(size=(count, dims)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _documents(vectors: np.ndarray) -> Iterator[tuple[ImageDocument, np.ndarray]]:
    now = datetime.now(UTC)
    for i, vector in enumerate(vectors):
        path = f"folder{i % 50}/sub{i % 7}/picture{i}.jpg"
        doc = ImageDocument(
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
        )
        yield doc, vector


def _time(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=512)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder))
        everything = _unit_vectors(args.count, args.dims, rng)
        batch: list = []
        start = time.perf_counter()
        for item in _documents(everything):
            batch.append(item)
            if len(batch) == 1000:
                store.upsert(batch)
                batch = []
        store.upsert(batch)
        print(f"wrote {args.count} x {args.dims} in {time.perf_counter() - start:.1f} s")

        query = everything[123] + rng.normal(scale=0.1, size=args.dims).astype(np.float32)
        query /= np.linalg.norm(query)

        def bare() -> None:
            scores = everything @ query
            top = np.argpartition(-scores, args.k)[: args.k]
            top[np.argsort(-scores[top])]

        other = EmbeddedStore(Path(folder))
        writer = EmbeddedStore(Path(folder))
        extra = next(_documents(_unit_vectors(1, args.dims, rng)))

        def reload_after_write() -> None:
            writer.upsert([extra])
            other.search(query, args.k)

        rows = [
            ("numpy matrix @ query + top-k", _time(bare, args.repeats)),
            ("EmbeddedStore.search", _time(lambda: store.search(query, args.k), args.repeats)),
            (
                "EmbeddedStore.search, folder filter",
                _time(lambda: store.search(query, args.k, folder="folder7"), args.repeats),
            ),
            ("search after another process wrote", _time(reload_after_write, 10)),
        ]
        print(f"{'what':40} {'median ms':>10} {'p95 ms':>10}")
        for name, (median, p95) in rows:
            print(f"{name:40} {median:10.2f} {p95:10.2f}")
        for opened in (store, other, writer):
            opened.close()


if __name__ == "__main__":
    main()
