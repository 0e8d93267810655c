"""What every benchmark shares: the machine's description, timing, memory, test pictures.

Benchmarks run from the repository root as modules (`python -m bench.NAME`), offline.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

DEFAULT_WORK = Path(os.environ.get("FINDIMAGE_BENCH_DIR", "/tmp/findimage-bench"))
INTERESTING_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")


def machine() -> str:
    """CPU model, the flags that decide which kernels run, cores, load, library versions."""
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    import onnxruntime
    import torch

    cores = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    present = " ".join(flag for flag in INTERESTING_FLAGS if flag in flags) or "none of note"
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; CPU: {model}; {cores} cores usable "
        f"({os.cpu_count()} online); flags: {present}; load average {load}; "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}"
    )


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--work",
        type=Path,
        default=DEFAULT_WORK,
        help=f"folder for generated models, pictures and indexes (default {DEFAULT_WORK})",
    )
    parser.add_argument(
        "--image-model",
        help="a real image model (folder or name) instead of the random-weight ViT-B/32",
    )
    parser.add_argument(
        "--text-model",
        help="a real text model (folder or name) instead of the random-weight multilingual one",
    )
    parser.add_argument("--quick", action="store_true", help="fewer pictures and repeats")


def image_model(args: argparse.Namespace) -> str:
    # Imported here: building the random models needs PyTorch, which a measured child
    # process (resident memory) must not have loaded on our account.
    from bench.models import vit_b32_clip

    return args.image_model or str(vit_b32_clip(args.work / "vit-b-32-random"))


def text_model(args: argparse.Namespace) -> str:
    from bench.models import multilingual_text

    return args.text_model or str(multilingual_text(args.work / "multilingual-random"))


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return statistics.median(ordered), p95


def time_calls(run: Callable[[], object], repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Median and p95 in milliseconds of `repeats` calls after `warmup` unmeasured ones."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return percentiles(samples)


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def camera_jpegs(folder: Path, count: int, size: tuple[int, int] = (4000, 3000)) -> list[Path]:
    """`count` distinct photo-sized JPEGs with detail (noise, edges), made once per folder."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("*.jpg"))
    if len(existing) >= count:
        return existing[:count]
    rng = np.random.default_rng(0)
    bases = []
    for _ in range(4):
        small = rng.integers(0, 255, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
        base = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
        grain = rng.normal(0, 12, (size[1], size[0], 1)).astype(np.int16)
        pixels = np.clip(np.asarray(base, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
        bases.append(Image.fromarray(pixels))
    paths = []
    for index in range(count):
        picture = bases[index % len(bases)].copy()
        draw = ImageDraw.Draw(picture)
        x, y = (index * 397) % (size[0] - 800), (index * 211) % (size[1] - 800)
        draw.ellipse((x, y, x + 700, y + 700), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
        path = folder / f"photo-{index:04d}.jpg"
        picture.save(path, quality=90)
        paths.append(path)
    return paths


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A Markdown table, ready to paste into BENCHMARKS.md."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
