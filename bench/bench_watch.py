"""Watch mode: how long after a copy ends a picture is searchable, one at a time and in a burst.

    python -m bench.bench_watch [--quick]

A library of photo-sized JPEGs is indexed by the catch-up run of a watcher with the default
settings (onnx int8, FINDIMAGE_WATCH_DEBOUNCE_MS=1000) and the full-size ViT-B/32 image model
with random weights (bench/models.py). Then, side by side in this one run:

- single copies: a photo is copied in, and the clock runs until the embedded store lists it
  (searches see what the store lists: the watcher's run ends with a refresh);
- a burst: many photos copied at once, until the last is listed, and how many indexer runs
  (bursts as watchfiles delivered them) it took.

The goal (issue 13): searchable within 5 s of the copy on the embedded store.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.common import camera_jpegs, common_arguments, image_model, machine, table
from findimage.documents import IndexReport
from findimage.factory import build_store, build_watcher
from findimage.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    args = parser.parse_args()
    singles, burst = (3, 20) if args.quick else (10, 100)
    print(machine())
    photos = camera_jpegs(args.work / "photos-1600", 40 + singles + burst, size=(1600, 1200))
    work = Path(tempfile.mkdtemp(prefix="watch-", dir=args.work))
    library = work / "library"
    library.mkdir()
    for photo in photos[:40]:
        shutil.copy(photo, library / photo.name)
    os.environ.update(
        FINDIMAGE_IMAGE_MODEL=image_model(args),
        FINDIMAGE_DATA_DIR=str(work / "data"),
        FINDIMAGE_MODEL_CACHE=str(args.work / "model-cache"),
        HF_HUB_OFFLINE="1",
    )
    settings = load_settings()
    store = build_store(settings)
    runs: list[IndexReport] = []
    watcher = build_watcher(settings, store, library, lambda report, _folder: runs.append(report))
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    watcher.ready.wait()

    def listed() -> set[str]:
        return {fp.path for fp in store.fingerprints().values()}

    def until_listed(names: set[str]) -> float:
        start = time.perf_counter()
        while not names <= listed():
            time.sleep(0.02)
        return time.perf_counter() - start

    latencies = []
    for photo in photos[40 : 40 + singles]:
        shutil.copy(photo, library / photo.name)
        latencies.append(until_listed({photo.name}))
    before = len(runs)
    start = time.perf_counter()
    names = set()
    for photo in photos[40 + singles :]:
        shutil.copy(photo, library / photo.name)
        names.add(photo.name)
    until_listed(names)
    burst_seconds = time.perf_counter() - start
    watcher.stop()
    thread.join()
    store.close()
    rows = [
        (
            f"{singles} single copies, 1600x1200 JPEG",
            f"{statistics.median(latencies):.2f}",
            f"{max(latencies):.2f}",
            "-",
        ),
        (
            f"a burst of {burst} copies",
            "-",
            f"{burst_seconds:.2f} (first copy to last listed)",
            str(len(runs) - before),
        ),
    ]
    print(table(rows, ("what", "median s to searchable", "slowest s", "indexer runs")))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
