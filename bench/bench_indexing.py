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
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import camera_jpegs, common_arguments, image_model, machine, table
from bot.encoders import OnnxEncoder, load_sentence_transformer
from bot.images import decode_image

MAX_BYTES = 100 * 1024 * 1024
ENGINES = (("torch", "fp32"), ("onnx", "fp32"), ("onnx", "int8"))


def seeds_loop(model_name: str, files: list[Path]) -> float:
    """The seeds' indexer: every file opened whole and encoded alone."""
    model = load_sentence_transformer(model_name, "--image-model", "cpu")
    model.encode(Image.open(files[0]))
    start = time.perf_counter()
    for path in files:
        model.encode(Image.open(path))
    return len(files) / (time.perf_counter() - start)


def model_only(model_name: str, cache: Path, pictures: list[Image.Image], threads: int) -> dict:
    """Images/s of each engine on pictures already decoded to 224 px: the ceiling."""
    ceilings: dict[str, float] = {}
    torch_model = load_sentence_transformer(model_name, "--image-model", "cpu")
    torch_model.encode(pictures[:2], batch_size=32)
    start = time.perf_counter()
    torch_model.encode(pictures, batch_size=32)
    ceilings["torch fp32"] = len(pictures) / (time.perf_counter() - start)
    del torch_model
    for precision in ("fp32", "int8"):
        encoder = OnnxEncoder(model_name, "--image-model", "image", precision, cache, threads)
        prepared = [encoder.prepare_image(picture) for picture in pictures]
        encoder.encode_prepared(prepared[:2])
        start = time.perf_counter()
        encoder.encode_prepared(prepared)
        ceilings[f"onnx {precision}"] = len(pictures) / (time.perf_counter() - start)
        ceilings[f"onnx {precision}, batches of 32 over {threads} threads"] = _batched(
            encoder, prepared, threads
        )
    ceilings.update(_openvino(model_name, cache, pictures, threads))
    return ceilings


def _batched(encoder: OnnxEncoder, prepared: list, threads: int) -> float:
    """The other way to use the cores: one session, batches of 32, split over threads."""
    from bot.inference.export import export_folder
    from bot.inference.runtime import OnnxSession

    path = export_folder(encoder._cache_dir, encoder.model_name, "image", encoder.precision)
    session = OnnxSession(path / "model.onnx", threads)
    batches = [np.stack(prepared[i : i + 32]) for i in range(0, len(prepared), 32)]
    session.run({"pixel_values": batches[0][:2]})
    start = time.perf_counter()
    for batch in batches:
        session.run({"pixel_values": batch})
    return len(prepared) / (time.perf_counter() - start)


def _openvino(model_name: str, cache: Path, pictures: list[Image.Image], threads: int) -> dict:
    """OpenVINO fp32 on the same ONNX file, if it is installed (it is not a dependency)."""
    try:
        import openvino
    except ImportError:
        return {}
    from bot.inference.export import export_folder

    encoder = OnnxEncoder(model_name, "--image-model", "image", "fp32", cache, threads)
    prepared = np.stack([encoder.prepare_image(picture) for picture in pictures])
    path = export_folder(cache, model_name, "image", "fp32") / "model.onnx"
    compiled = openvino.Core().compile_model(
        str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    )
    compiled(prepared[:2])
    start = time.perf_counter()
    for i in range(0, len(prepared), 32):
        compiled(prepared[i : i + 32])
    return {"openvino fp32, batches of 32": len(prepared) / (time.perf_counter() - start)}


def decode_cost(files: list[Path], side: int) -> float:
    """Milliseconds of one core to read, decode (draft) and preprocess one picture."""
    encoder_side = side
    start = time.perf_counter()
    for path in files:
        decode_image(path.read_bytes(), MAX_BYTES, encoder_side)
    return (time.perf_counter() - start) * 1000 / len(files)


def findimage_index(
    library: Path, model_name: str, cache: Path, engine: str, precision: str, workers: int
) -> tuple[float, int]:
    """Images/s of the whole `findimage index` process on a fresh index."""
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
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "index", str(library), "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"findimage index failed ({engine} {precision}):\n{done.stderr}")
    indexed = json.loads(done.stdout)["indexed"]
    return indexed / elapsed, indexed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--count", type=int, default=96, help="JPEGs to index (default 96)")
    args = parser.parse_args()
    count = 24 if args.quick else args.count
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
    decode_ms = decode_cost(files[:8], side)

    rows = [("the seeds' loop: `model.encode(Image.open(f))` per file", f"{loop:.1f}", "", "1.0")]
    for name, rate in ceilings.items():
        rows.append((f"model only, pre-decoded {side} px: {name}", f"{rate:.1f}", "", ""))
    worker_counts = [1] if args.quick else [1, 2, 4]
    for engine, precision in ENGINES:
        for workers in worker_counts if (engine, precision) == ("onnx", "int8") else [1]:
            rate, _ = findimage_index(library, model_name, cache, engine, precision, workers)
            ceiling = ceilings[f"{engine} {precision}"]
            rows.append(
                (
                    f"`findimage index`, {engine} {precision}, {workers} decode worker(s)",
                    f"{rate:.1f}",
                    f"{rate / ceiling:.2f}",
                    f"{rate / loop:.1f}",
                )
            )
    print(
        table(rows, ("what", "images/s", "x own engine's ceiling", "x the seeds' loop")),
    )
    print(
        f"reading + decoding (draft to {side} px) one 4000x3000 JPEG: {decode_ms:.0f} ms of one "
        f"core; engine threads: {threads}"
    )


if __name__ == "__main__":
    main()
