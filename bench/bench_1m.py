"""Exact search over 1M x 512 on the embedded store: latency and resident memory, and the
representations it was chosen over, side by side in one run.

    python -m bench.bench_1m --quick        # 200k vectors, a few minutes
    python -m bench.bench_1m                # 1M vectors (writes a 2.5 GB index once)

The store's search runs in a fresh process, so its resident memory is the store's own:
the process before opening the index, after its first search (which loads the vectors),
and the vectors' raw float32 size for the ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import DEFAULT_WORK, machine, rss_mb, table, time_calls
from bench.stores import filled_store, unit_vectors

DIMS = 512
K = 10


def child(folder: Path, count: int, repeats: int, scan_threads: int) -> None:
    """Run in a fresh process: open, load, search; print JSON figures."""
    from findimage.stores.embedded import EmbeddedStore

    queries = unit_vectors(repeats + 2, DIMS, seed=99)
    before = rss_mb()
    store = EmbeddedStore(folder, scan_threads=scan_threads)
    start = time.perf_counter()
    store.search(queries[0], K)
    load_s = time.perf_counter() - start
    loaded = rss_mb()
    rows = iter(queries[1:])
    p50, p95 = time_calls(lambda: store.search(next(rows), K), repeats, warmup=1)
    raw_mb = count * DIMS * 4 / 2**20
    figures = {"before": before, "loaded": loaded, "raw": raw_mb, "load_s": load_s}
    print(json.dumps({**figures, "p50": p50, "p95": p95, "after_queries": rss_mb()}))


def representations(count: int, repeats: int) -> list[tuple[str, ...]]:
    """The scan over float32 rows against float16 rows (half the memory), in numpy."""
    matrix = unit_vectors(count, DIMS, seed=1)
    query = unit_vectors(1, DIMS, seed=2)[0]
    half = matrix.astype(np.float16)
    chunk = 16_384

    def float16_scan() -> np.ndarray:
        scores = np.empty(count, dtype=np.float32)
        for start in range(0, count, chunk):
            scores[start : start + chunk] = half[start : start + chunk].astype(np.float32) @ query
        return np.argpartition(-scores, K)[: K * 4]

    float32 = time_calls(lambda: np.argpartition(-(matrix @ query), K)[:K], repeats)
    float16 = time_calls(float16_scan, max(3, repeats // 10))
    return [
        ("float32 rows, one BLAS product", f"{float32[0]:.0f}", f"{float32[1]:.0f}", "1.0"),
        (
            "float16 rows, converted in chunks, top candidates then re-ranked in float32",
            f"{float16[0]:.0f}",
            f"{float16[1]:.0f}",
            "0.5",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--count", type=int, help="vectors (default 1M, 200k with --quick)")
    parser.add_argument("--quick", action="store_true", help="200k vectors, fewer repeats")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        folder, count, threads = args.child
        child(Path(folder), int(count), 30, int(threads))
        return
    count = args.count or (200_000 if args.quick else 1_000_000)
    repeats = 10 if args.quick else 30
    print(machine())
    start = time.perf_counter()
    folder = filled_store(args.work / f"store-{count}", count, DIMS)
    print(f"index of {count} x {DIMS} ready in {time.perf_counter() - start:.0f} s: {folder}")
    rows = []
    for threads in (1, 2):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.bench_1m",
                "--child",
                str(folder),
                str(count),
                str(threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        f = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(
            (
                f"`EmbeddedStore.search`, k={K}, scan on {threads} thread(s)",
                f"{f['p50']:.0f}",
                f"{f['p95']:.0f}",
                f"{f['raw']:.0f}",
                f"{f['loaded']:.0f} ({f['before']:.0f} before opening)",
                f"{f['loaded'] / f['raw']:.2f} ({(f['loaded'] - f['before']) / f['raw']:.2f})",
                f"{f['load_s']:.1f}",
            )
        )
    header = (
        "what",
        "p50 ms",
        "p95 ms",
        "raw float32 MiB",
        "resident MiB after loading",
        "resident / raw (growth / raw)",
        "first search s",
    )
    print(table(rows, header))
    print(
        table(
            representations(count, repeats),
            ("representation (numpy, same vectors)", "p50 ms", "p95 ms", "memory x float32"),
        )
    )


if __name__ == "__main__":
    main()
