"""The search page in a headless browser: from pressing Enter to the first result painted and
to all 50 thumbnails decoded, on an index of 10,000 pictures whose thumbnails are kept.

    python -m bench.bench_web            # 10,000 pictures, 20 queries
    python -m bench.bench_web --quick    # 300 pictures, 5 queries (the suite runs this)

The index holds random vectors (bench/stores.py) for real JPEG files, and each query is
`like:<id>` of another picture, so no model runs: what is measured is the page, the search
over 10,000 vectors, the server and the browser. Each query's 50 thumbnails are fetched once
before it is timed, as a page that is in use has them kept. The window is tall enough to
show all 50 at once, so none waits for a scroll (the next page, which the page then asks
for, is not counted). Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from bench.common import common_arguments, machine, percentiles, table
from bench.stores import unit_vectors
from findimage.documents import ImageDocument, ModelInfo, document_id
from findimage.settings import DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL
from findimage.stores.embedded import EmbeddedStore

DIMS = 512
PAGE = 50
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Submits the form the way Enter does, then watches every frame until the first result and
# then all of them are decoded pictures: the times are the browser's own clock.
MEASURE = """
const done = arguments[arguments.length - 1];
const wanted = arguments[1];
const form = document.getElementById("search");
document.getElementById("q").value = arguments[0];
const start = performance.now();
let first = null;
function images() { return [...document.querySelectorAll("#grid button.open img")]; }
function ready(image) { return image.complete && image.naturalWidth > 0; }
function frame() {
  const shown = images();
  if (first === null && shown.length && ready(shown[0])) first = performance.now() - start;
  if (shown.length >= wanted && shown.slice(0, wanted).every(ready)) {
    done([first, performance.now() - start]);
  } else {
    requestAnimationFrame(frame);
  }
}
form.requestSubmit();
requestAnimationFrame(frame);
"""


def make_library(folder: Path, count: int) -> list[ImageDocument]:
    """`count` small distinct JPEGs and their documents, made once per size."""
    documents = []
    now = datetime.now(UTC)
    rng = np.random.default_rng(0)
    for i in range(count):
        path = f"folder{i % 50}/picture{i:05d}.jpg"
        file = folder / path
        if not file.exists():
            file.parent.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).resize((640, 480)).save(file, quality=80)
        stat = file.stat()
        documents.append(
            ImageDocument(
                id=document_id(path),
                path=path,
                name=file.name,
                folder=f"folder{i % 50}",
                size=stat.st_size,
                mtime=stat.st_mtime,
                sha256=f"{i:064x}",
                width=640,
                height=480,
                indexed_at=now,
            )
        )
    return documents


def fill_index(data_dir: Path, library: Path, documents: list[ImageDocument]) -> None:
    store = EmbeddedStore(data_dir)
    store.record_models(ModelInfo(DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL, DIMS))
    store.record_library_root(str(library))
    vectors = unit_vectors(len(documents), DIMS, seed=1)
    store.upsert(list(zip(documents, vectors, strict=True)))
    store.close()


def start_page(data_dir: Path, library: Path) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDIMAGE_")}
    env.update(FINDIMAGE_DATA_DIR=str(data_dir), FINDIMAGE_LIBRARY=str(library))
    process = subprocess.Popen(
        [sys.executable, "-m", "findimage.cli", "web", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("findimage web: "):
        process.kill()
        raise SystemExit(f"findimage web did not start: {line}")
    return process, line.split()[2].rstrip("/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    args = parser.parse_args()
    count, queries = (300, 5) if args.quick else (10_000, 20)
    work = args.work / f"web-{count}"
    library, data_dir = work / "library", work / "data"
    documents = make_library(library, count)
    if not (data_dir / "complete").exists():
        fill_index(data_dir, library, documents)
        (data_dir / "complete").write_text(str(count))

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_AVOID_STATS"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,4000")
    process, url = start_page(data_dir, library)
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    browser.set_script_timeout(120)
    firsts, alls = [], []
    try:
        for n in range(queries + 1):
            query = f"like:{documents[n * 7 % count].id[:12]}"
            # The thumbnails kept before the timed run, as a page in use has them.
            page = requests.get(url + "/results", params={"q": query}, timeout=120).text
            for doc_id in {part.split('"')[0] for part in page.split('data-id="')[1:]}:
                requests.get(f"{url}/thumbnails/{doc_id}/320.jpg", timeout=120)
            browser.get(url + "/")
            first, whole = browser.execute_async_script(MEASURE, query, PAGE)
            if n:  # the first query warms the browser and the server
                firsts.append(first)
                alls.append(whole)
    finally:
        browser.quit()
        process.terminate()
        process.wait(timeout=60)
    print(machine())
    first_p50, first_p95 = percentiles(firsts)
    all_p50, all_p95 = percentiles(alls)
    print(
        table(
            [
                ("first result painted", f"{first_p50:.0f}", f"{first_p95:.0f}", "300"),
                (f"all {PAGE} thumbnails decoded", f"{all_p50:.0f}", f"{all_p95:.0f}", "1000"),
            ],
            (f"{count:,} pictures, {queries} queries", "median ms", "p95 ms", "goal ms"),
        )
    )


if __name__ == "__main__":
    main()
