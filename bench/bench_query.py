"""Query latency: text and photo queries through the search service at 10k and 100k vectors,
next to the encoder alone and the store alone, side by side in one run.

    python -m bench.bench_query --quick      # 10k and 100k, fewer repeats, a few minutes

Runs the default engine (ONNX int8) and PyTorch fp32, and the store's scan on the process
budget of threads and on one. The models are the ViT-B/32 and multilingual shapes with
random weights unless --image-model / --text-model name real ones.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import (
    camera_jpegs,
    common_arguments,
    image_model,
    machine,
    percentiles,
    table,
    text_model,
    time_calls,
)
from bench.stores import filled_store
from findimage.documents import ModelInfo
from findimage.encoders import ClipEncoder, ImageEncoder, OnnxEncoder, TextEncoder
from findimage.images import decode_image
from findimage.query import Term
from findimage.search import SearchRequest, SearchService
from findimage.stores.embedded import EmbeddedStore

QUERIES = (
    "snowy mountain at sunrise",
    "the team offsite in Lisbon",
    "Schneebedeckter Berg",
    "un chat noir sur une chaise",
    "red car in front of the office",
)
MAX_BYTES = 100 * 1024 * 1024


def encoders(args: argparse.Namespace, engine: str, threads: int, cache: Path) -> tuple:
    if engine == "torch fp32":
        image = ClipEncoder(image_model(args), "--image-model", "cpu", threads=threads)
        text = ClipEncoder(text_model(args), "--text-model", "cpu", threads=threads)
    else:
        precision = engine.split()[1]
        image = OnnxEncoder(image_model(args), "-", "image", precision, cache, threads)
        text = OnnxEncoder(text_model(args), "-", "text", precision, cache, threads)
    image.warm("image")
    text.warm("text")
    return image, text


def photo_bytes(args: argparse.Namespace) -> bytes:
    """A 12 MP camera JPEG, as a Slack upload hands it to the bot."""
    path = camera_jpegs(args.work / "jpegs-1", 1)[0]
    return path.read_bytes()


def interleaved(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple]:
    """p50 and p95 of each call, the calls taking turns so that all see the same load."""
    for run in calls.values():
        run()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, run in calls.items():
            start = time.perf_counter()
            run()
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: percentiles(values) for name, values in samples.items()}


def one_setting(
    store: EmbeddedStore, image: ImageEncoder, text: TextEncoder, photo: bytes, repeats: int
) -> dict[str, tuple[str, str, str]]:
    """Text and photo queries through the service, each beside its parts, interleaved."""
    service = SearchService(store, image, text, MAX_BYTES)
    photo_query = SearchRequest((Term("picture", "photo.jpg"),), k=5, pictures={"photo.jpg": photo})
    texts = itertools.cycle(QUERIES)
    vector = text.encode_texts([QUERIES[0]])[0]
    side = image.input_side
    decoded = decode_image(photo, MAX_BYTES, side).image
    by_text = interleaved(
        {
            "text encoder alone": lambda: text.encode_texts([next(texts)]),
            "store alone": lambda: store.search(vector, 5),
            "`SearchService.search`, text": lambda: service.search(
                SearchRequest((Term("text", next(texts)),), k=5)
            ),
        },
        repeats,
    )
    by_photo = interleaved(
        {
            "decode the 12 MP JPEG alone": lambda: decode_image(photo, MAX_BYTES, side),
            "image encoder alone": lambda: image.encode_images([decoded]),
            "`SearchService.search`, 12 MP JPEG": lambda: service.search(photo_query),
        },
        max(10, repeats // 4),
    )
    bound = by_text["text encoder alone"][1] + by_text["store alone"][1]
    return {
        name: (*_ms(times), f"{times[1] / bound:.2f}" if name.endswith(", text") else "")
        for name, times in {**by_text, **by_photo}.items()
    }


def fight(store: EmbeddedStore, text: TextEncoder, repeats: int) -> tuple[str, str]:
    """The text encoder's p50 in a loop of its own, and right after each store scan."""
    texts = itertools.cycle(QUERIES)
    vector = text.encode_texts([QUERIES[0]])[0]
    alone = time_calls(lambda: text.encode_texts([next(texts)]), repeats)
    after = []
    for _ in range(repeats):
        store.search(vector, 5)
        start = time.perf_counter()
        text.encode_texts([next(texts)])
        after.append((time.perf_counter() - start) * 1000)
    return f"{alone[0]:.1f}", f"{percentiles(after)[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--sizes", default="10000,100000", help="store sizes, comma-separated")
    parser.add_argument(
        "--repeats", type=int, help="timed calls per measurement (default 200; 40 with --quick)"
    )
    args = parser.parse_args()
    repeats = args.repeats or (40 if args.quick else 200)
    threads = len(os.sched_getaffinity(0))
    print(machine())
    cache = args.work / "model-cache"
    photo = photo_bytes(args)
    rows: list[tuple[str, ...]] = []
    fights: list[tuple[str, ...]] = []
    for engine in ("onnx int8", "torch fp32"):
        image, text = encoders(args, engine, threads, cache)
        for count in (int(size) for size in args.sizes.split(",")):
            # Recorded as the models that search it: the service refuses an index without them.
            models = ModelInfo(image.model_name, text.model_name, image.dims)
            names = hashlib.sha256(f"{models}".encode()).hexdigest()[:8]
            folder = filled_store(args.work / f"store-{count}-{names}", count, image.dims, models)
            for scan_threads in (1, threads):
                store = EmbeddedStore(folder, scan_threads=scan_threads)
                where = f"{engine}, {count // 1000}k vectors, scan on {scan_threads} thread(s)"
                rows += [
                    (f"{where}: {name}", *cells)
                    for name, cells in one_setting(store, image, text, photo, repeats).items()
                ]
                fights.append((where, *fight(store, text, repeats)))
                store.close()
    header = ("what", "p50 ms", "p95 ms", "p95 / (text encoder p95 + store p95)")
    print(table(rows, header))
    header = ("setting", "text encoder p50 ms, own loop", "text encoder p50 ms, right after a scan")
    print(table(fights, header))


def _ms(times: tuple[float, float]) -> tuple[str, str]:
    return f"{times[0]:.1f}", f"{times[1]:.1f}"


if __name__ == "__main__":
    main()
