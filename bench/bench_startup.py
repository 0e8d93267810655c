"""How long `findimage` takes to answer when there is nothing to do, against bare Python.

    python -m bench.bench_startup --pictures 1000 --rounds 10
    python -m bench.bench_startup --quick     # 100 pictures, 2 rounds

Runs each command as a user would (the installed `findimage` script, a fresh process each
time), round after round so that every command sees the same machine load, and prints the
median and slowest wall-clock time of each beside the floor, `python -c pass`:

- `findimage --help` and `findimage status`: the targets are within 1.5 s of the floor;
- `findimage index LIBRARY` over a library whose pictures are all indexed already (a no-op):
  within 3 s;
- `findimage search` on a data dir with no index: answers before any model loads.

The index is filled straight through the embedded store, with the fingerprints of the real
files and random vectors recorded under the default model names, so no model is needed, and
none can load: the hub is set offline, so a load would fail the run rather than slow it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from findimage.documents import ImageDocument, ModelInfo, document_id
from findimage.settings import DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL
from findimage.stores.embedded import EmbeddedStore
from indexer.walk import LibraryFile, walk_library

DIMS = 512
BATCH = 500


def _pictures(root: Path, count: int) -> None:
    rng = random.Random(0)
    for index in range(count):
        folder = root / f"album{index % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        Image.new("RGB", (64, 48), color).save(folder / f"picture{index:05d}.jpg", quality=80)


def _indexed(root: Path, data_dir: Path) -> int:
    """An index that matches the files exactly, as a finished `findimage index` leaves it."""
    store = EmbeddedStore(data_dir)
    store.record_models(ModelInfo(DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL, DIMS))
    store.record_library_root(str(root.resolve()))
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    files = [entry for entry in walk_library(root) if isinstance(entry, LibraryFile)]
    for start in range(0, len(files), BATCH):
        chunk = files[start : start + BATCH]
        vectors = rng.normal(size=(len(chunk), DIMS)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.upsert(
            [(_document(file, now), vector) for file, vector in zip(chunk, vectors, strict=True)]
        )
    count = store.count()
    store.close()
    return count


def _document(file: LibraryFile, now: datetime) -> ImageDocument:
    folder, _, name = file.relative_path.rpartition("/")
    return ImageDocument(
        id=document_id(file.relative_path),
        path=file.relative_path,
        name=name,
        folder=folder,
        size=file.size,
        mtime=file.mtime,
        sha256=hashlib.sha256(file.absolute_path.read_bytes()).hexdigest(),
        width=64,
        height=48,
        indexed_at=now,
    )


def _findimage() -> list[str]:
    script = shutil.which("findimage")
    return [script] if script else [sys.executable, "-m", "findimage.cli"]


def _seconds(command: list[str], env: dict[str, str], expect: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, help="library size (default 1000, 100 quick)")
    parser.add_argument("--rounds", type=int, help="rounds (default 10, 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a smaller library, fewer rounds")
    args = parser.parse_args()
    args.pictures = args.pictures or (100 if args.quick else 1000)
    args.rounds = args.rounds or (2 if args.quick else 10)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        library, data_dir, empty_dir = base / "library", base / "data", base / "empty"
        _pictures(library, args.pictures)
        count = _indexed(library, data_dir)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("FINDIMAGE_", "SLACK_"))
        }
        env.update(FINDIMAGE_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
        no_index = {**env, "FINDIMAGE_DATA_DIR": str(empty_dir)}
        findimage = _findimage()
        commands = [
            ("python -c pass (the floor)", [sys.executable, "-c", "pass"], env, 0),
            ("findimage --help", [*findimage, "--help"], env, 0),
            (f"findimage status ({count} pictures)", [*findimage, "status"], env, 0),
            (
                f"findimage index, nothing changed ({count} pictures)",
                [*findimage, "index", str(library)],
                env,
                0,
            ),
            ("findimage search, no index yet", [*findimage, "search", "a cat"], no_index, 1),
        ]
        samples: dict[str, list[float]] = {name: [] for name, *_ in commands}
        for _, command, command_env, expect in commands:
            _seconds(command, command_env, expect)  # warm the file cache; not counted
        for _ in range(args.rounds):
            for name, command, command_env, expect in commands:
                samples[name].append(_seconds(command, command_env, expect))
        if empty_dir.exists():
            raise SystemExit("a search on a missing index created one")

    floor = statistics.median(samples[commands[0][0]])
    print(f"{args.rounds} rounds, {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores")
    print("| what | median s | slowest s | median above the floor s |")
    print("| --- | ---: | ---: | ---: |")
    for name, times in samples.items():
        median = statistics.median(times)
        print(f"| {name} | {median:.2f} | {max(times):.2f} | {median - floor:+.2f} |")


if __name__ == "__main__":
    main()
