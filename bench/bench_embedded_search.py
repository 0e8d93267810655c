"""Embedded store search latency against a bare numpy scan, side by side in one run.

    python -m bench.bench_embedded_search --count 100000 --dims 512
    python -m bench.bench_embedded_search --quick     # 10k vectors, fewer repeats, seconds

Prints, for the same random unit vectors: the bare `matrix @ query` + top-k that the
embedded store is built on, EmbeddedStore.search (the same plus SQLite lookups of the
k documents), the same with a folder filter, and the reload after another connection
wrote (what the bot pays once after each indexer batch).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import time_calls
from bench.stores import synthetic_documents, unit_vectors
from findimage.stores.embedded import EmbeddedStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, help="vectors (default 100k, 10k with --quick)")
    parser.add_argument("--dims", type=int, default=512)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--repeats", type=int, help="calls timed (default 50, 10 with --quick)")
    parser.add_argument("--quick", action="store_true", help="fewer vectors and repeats")
    args = parser.parse_args()
    args.count = args.count or (10_000 if args.quick else 100_000)
    args.repeats = args.repeats or (10 if args.quick else 50)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder))
        everything = unit_vectors(args.count, args.dims, seed=0)
        batch: list = []
        start = time.perf_counter()
        for item in synthetic_documents(0, everything):
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
        extra = next(synthetic_documents(args.count, unit_vectors(1, args.dims, seed=1)))

        def reload_after_write() -> None:
            writer.upsert([extra])
            other.search(query, args.k)

        rows = [
            ("numpy matrix @ query + top-k", time_calls(bare, args.repeats)),
            ("EmbeddedStore.search", time_calls(lambda: store.search(query, args.k), args.repeats)),
            (
                "EmbeddedStore.search, folder filter",
                time_calls(lambda: store.search(query, args.k, folder="folder7"), args.repeats),
            ),
            ("search after another process wrote", time_calls(reload_after_write, 10)),
        ]
        print(f"{'what':40} {'median ms':>10} {'p95 ms':>10}")
        for name, (median, p95) in rows:
            print(f"{name:40} {median:10.2f} {p95:10.2f}")
        for opened in (store, other, writer):
            opened.close()


if __name__ == "__main__":
    main()
