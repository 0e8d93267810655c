"""Indexing speed over 4000x3000 JPEGs: the seeds' loop, `findimage index` on each engine, and
each engine's model-only ceiling, side by side in one run.

    python -m bench.bench_indexing --quick          # 24 pictures, a few minutes
    python -m bench.bench_indexing --count 96       # the issue's setting

The image model is CLIP ViT-B/32 with random weights (made once under --work) unless
--image-model names a real one. Exports are made before timing starts: they happen once
per model, and their time is printed on its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import camera_jpegs, common_arguments, image_model, machine, table
from findimage.encoders import OnnxEncoder, load_sentence_transformer
from findimage.images import decode_image
from findimage.inference.export import export_folder
from findimage.inference.runtime import OnnxSession

MAX_BYTES = 100 * 1024 * 1024
ENGINES = (("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8"))


class Rate:
    """Images per wall-clock second, and CPU milliseconds per image (all threads).

    On a shared machine the wall clock measures the neighbours too; CPU time per image
    is what the work itself costs, and it is what decides the speed on a quiet machine.
    """

    def __init__(self, images: int, wall: float, cpu: float):
        self.per_second = images / wall
        self.cpu_ms = cpu * 1000 / images


def measure(run: Callable[[], object], images: int) -> Rate:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return Rate(images, time.perf_counter() - wall, time.process_time() - cpu)


def seeds_loop(model_name: str, files: list[Path]) -> Rate:
    """The seeds' indexer: every file opened whole and encoded alone."""
    model = load_sentence_transformer(model_name, "--image-model", "cpu")
    model.encode(Image.open(files[0]))
    return measure(lambda: [model.encode(Image.open(path)) for path in files], len(files))


def model_only(model_name: str, cache: Path, pictures: list[Image.Image], threads: int) -> dict:
    """Each engine on pictures already decoded to 224 px: the ceiling."""
    import torch

    torch.set_num_threads(threads)
    ceilings: dict[str, Rate] = {}
    torch_model = load_sentence_transformer(model_name, "--image-model", "cpu")
    torch_model.encode(pictures[:2], batch_size=32)
    ceilings["torch fp32"] = measure(
        lambda: torch_model.encode(pictures, batch_size=32), len(pictures)
    )
    for precision in ("fp32", "int8"):
        encoder = OnnxEncoder(model_name, "--image-model", "image", precision, cache, threads)
        prepared = [encoder.prepare_image(picture) for picture in pictures]
        encoder.encode_prepared(prepared[:2])
        ceilings[f"onnx {precision}"] = measure(
            lambda e=encoder, p=prepared: e.encode_prepared(p), len(pictures)
        )
        ceilings[f"onnx {precision}, batches of 32 over {threads} threads"] = _batched(
            export_folder(cache, model_name, "image", encoder.precision), prepared, threads
        )
    ceilings.update(_openvino(model_name, cache, pictures, threads))
    return ceilings


def _batched(folder: Path, prepared: list, threads: int) -> Rate:
    """The other way to use the cores: one session, batches of 32, split over threads."""
    session = OnnxSession(folder / "model.onnx", threads)
    batches = [np.stack(prepared[i : i + 32]) for i in range(0, len(prepared), 32)]
    session.run({"pixel_values": batches[0][:2]})
    return measure(lambda: [session.run({"pixel_values": b}) for b in batches], len(prepared))


def _openvino(model_name: str, cache: Path, pictures: list[Image.Image], threads: int) -> dict:
    """OpenVINO fp32 on the same ONNX file, if it is installed (it is not a dependency)."""
    try:
        import openvino
    except ImportError:
        return {}
    encoder = OnnxEncoder(model_name, "--image-model", "image", "fp32", cache, threads)
    prepared = np.stack([encoder.prepare_image(picture) for picture in pictures])
    path = export_folder(cache, model_name, "image", "fp32") / "model.onnx"
    compiled = openvino.Core().compile_model(
        str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    )
    compiled(prepared[:2])
    rate = measure(
        lambda: [compiled(prepared[i : i + 32]) for i in range(0, len(prepared), 32)],
        len(prepared),
    )
    return {"openvino fp32, batches of 32": rate}


def decode_cost(files: list[Path], side: int) -> Rate:
    """Reading, hashing and decoding (with draft) one picture on one thread."""

    def prepare_all() -> None:
        for path in files:
            data = path.read_bytes()
            hashlib.sha256(data).digest()
            decode_image(data, MAX_BYTES, side)

    return measure(prepare_all, len(files))


def findimage_index(
    library: Path, model_name: str, cache: Path, engine: str, precision: str, workers: int
) -> Rate:
    """The whole `findimage index` process on a fresh index, start to exit."""
    with tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "FINDIMAGE_IMAGE_MODEL": model_name,
            "FINDIMAGE_TEXT_MODEL": model_name,
            "FINDIMAGE_DATA_DIR": data,
            "FINDIMAGE_MODEL_CACHE": str(cache),
            "FINDIMAGE_ENGINE": engine,
            "FINDIMAGE_PRECISION": precision,
            "FINDIMAGE_DECODE_WORKERS": str(workers),
            "FINDIMAGE_DEVICE": "cpu",
            "HF_HUB_OFFLINE": "1",
        }
        start = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [sys.executable, "-m", "findimage.cli", "index", str(library), "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"findimage index failed ({engine} {precision}):\n{done.stderr}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Rate(json.loads(done.stdout)["indexed"], elapsed, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--count", type=int, help="JPEGs to index (default 96, 24 with --quick)")
    args = parser.parse_args()
    count = args.count or (24 if args.quick else 96)
    threads = len(os.sched_getaffinity(0))
    print(machine())
    model_name = image_model(args)
    cache = args.work / "model-cache"
    for precision in ("fp32", "int8"):
        start = time.perf_counter()
        OnnxEncoder(model_name, "--image-model", "image", precision, cache, threads).load()
        print(f"export to ONNX {precision} (once per model): {time.perf_counter() - start:.1f} s")
    library = args.work / f"jpegs-{count}"
    files = camera_jpegs(library, count)
    print(f"{count} JPEGs of 4000x3000 in {library}")

    side = OnnxEncoder(model_name, "x", "image", "fp32", cache, threads).input_side
    pictures = [decode_image(p.read_bytes(), MAX_BYTES, side).image for p in files]
    ceilings = model_only(model_name, cache, pictures, threads)
    loop = seeds_loop(model_name, files[: 8 if args.quick else 24])
    decoding = decode_cost(files[:8], side)

    def row(what: str, rate: Rate, ceiling: Rate | None = None) -> tuple[str, ...]:
        return (
            what,
            f"{rate.per_second:.1f}",
            f"{rate.cpu_ms:.0f}",
            f"{rate.per_second / ceiling.per_second:.2f}" if ceiling else "",
            f"{ceiling.cpu_ms / rate.cpu_ms:.2f}" if ceiling else "",
            f"{rate.per_second / loop.per_second:.1f}",
        )

    rows = [row("the seeds' loop: `model.encode(Image.open(f))` per file", loop)]
    rows += [row(f"model only, pre-decoded {side} px: {n}", r) for n, r in ceilings.items()]
    rows.append(row(f"reading, hashing, decoding (draft to {side} px), 1 thread", decoding))
    worker_counts = [threads] if args.quick else [1, threads, 2 * threads]
    for engine, precision in ENGINES:
        for workers in worker_counts if (engine, precision) == ("onnx", "int8") else [threads]:
            rate = findimage_index(library, model_name, cache, engine, precision, workers)
            what = f"`findimage index`, {engine} {precision}, {workers} decode workers"
            rows.append(row(what, rate, ceilings[f"{engine} {precision}"]))
    header = (
        "what",
        "images/s",
        "CPU ms per image",
        "x own engine's ceiling",
        "x ceiling, by CPU time",
        "x the seeds' loop",
    )
    print(table(rows, header))
    print(f"engine threads: {threads}; {count} pictures per `findimage index` run")


if __name__ == "__main__":
    main()
