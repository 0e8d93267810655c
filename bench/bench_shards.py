"""Sharded indexing: N = 1, 2, 4 `findimage index --shard K/N` workers at once into one
Elasticsearch index (the emulator), on this machine.

    python -m bench.bench_shards                  # 96 camera JPEGs, the random ViT-B/32
    python -m bench.bench_shards --quick          # 12 pictures, N = 1 and 2

Each N starts on a fresh emulator; the N workers start together and the clock stops when the
last exits. Each worker gets FINDIMAGE_THREADS = cores / N (at least 1), so N workers share
the machine's cores instead of each spreading over all of them. The emulator's own ingest is
not a figure for a real cluster: it is in-process Python, and the pictures' embedding is the
work measured. The split is checked: every picture written once, by one worker.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.common import camera_jpegs, common_arguments, image_model, machine, table
from findimage.encoders import OnnxEncoder
from tests.support.es_emulator import ElasticsearchEmulator

ALIAS = "bench-shards"
FINDIMAGE = [sys.executable, "-m", "findimage.cli"]


def run_workers(library: Path, model_name: str, cache: Path, workers: int) -> dict:
    """N workers at once on a fresh emulator: wall and CPU seconds, and what each indexed."""
    cores = len(os.sched_getaffinity(0))
    with ElasticsearchEmulator() as emulator:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FINDIMAGE_")},
            "FINDIMAGE_BACKEND": "elasticsearch",
            "FINDIMAGE_ES_URL": emulator.url,
            "FINDIMAGE_ES_INDEX": ALIAS,
            "FINDIMAGE_IMAGE_MODEL": model_name,
            "FINDIMAGE_TEXT_MODEL": model_name,
            "FINDIMAGE_MODEL_CACHE": str(cache),
            "FINDIMAGE_DATA_DIR": str(cache.parent / "bench-shards-data"),
            "FINDIMAGE_THREADS": str(max(1, cores // workers)),
            "FINDIMAGE_DEVICE": "cpu",
            "HF_HUB_OFFLINE": "1",
        }
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        processes = [
            subprocess.Popen(
                [*FINDIMAGE, "index", str(library), "--shard", f"{k}/{workers}", "--json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for k in range(1, workers + 1)
        ]
        outputs = [process.communicate() for process in processes]
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        for process, (_, err) in zip(processes, outputs, strict=True):
            if process.returncode != 0:
                raise SystemExit(f"a worker failed:\n{err}")
        written = _written_ids(emulator)
    indexed = [json.loads(out)["indexed"] for out, _ in outputs]
    if sum(indexed) != len(written) or set(written.values()) != {1}:
        raise SystemExit(f"the split was not exact: {indexed}, {len(written)} documents written")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"wall": wall, "cpu": cpu, "indexed": indexed}


def _written_ids(emulator: ElasticsearchEmulator) -> Counter[str]:
    """Each document id's `index` actions in the emulator's request log."""
    sent: Counter[str] = Counter()
    for request in emulator.calls("PUT", "/_bulk") + emulator.calls("POST", "/_bulk"):
        lines = [json.loads(line) for line in request.body.decode().splitlines() if line]
        for action in lines[::2]:
            if "index" in action:
                sent[action["index"]["_id"]] += 1
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--count", type=int, help="JPEGs to index (default 96, 12 with --quick)")
    args = parser.parse_args()
    count = args.count or (12 if args.quick else 96)
    print(machine())
    model_name = image_model(args)
    cache = args.work / "model-cache"
    # The ONNX export, once per model, before the clock: the workers find it in the cache.
    OnnxEncoder(model_name, "--image-model", "image", "int8", cache, 1).load()
    library = args.work / f"jpegs-{count}"
    camera_jpegs(library, count)
    print(f"{count} JPEGs of 4000x3000 in {library}")
    rows = []
    for workers in (1, 2) if args.quick else (1, 2, 4):
        result = run_workers(library, model_name, cache, workers)
        rows.append(
            (
                str(workers),
                f"{result['wall']:.1f}",
                f"{count / result['wall']:.1f}",
                f"{result['cpu'] * 1000 / count:.0f}",
                " + ".join(str(n) for n in result["indexed"]),
            )
        )
    header = ("workers", "wall s", "images/s", "CPU ms per image", "pictures per worker")
    print(table(rows, header))
    print(f"{len(os.sched_getaffinity(0))} cores; every picture written once, by one worker")


if __name__ == "__main__":
    main()
