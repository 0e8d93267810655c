"""The image tower on a GPU: pictures a second at fp16 and at fp32 by batch size, and how
closely the fp16 vectors agree with CPU fp32 (the bar: cosine 0.999, as for every engine).

    python -m bench.bench_gpu                 # a CUDA GPU: ViT-B/32, batches of 32, 128, 256
    python -m bench.bench_gpu --quick         # a tiny model on the CPU: the script's own check

The model is ViT-B/32-shaped (transformers' CLIPVisionConfig defaults: hidden size 768,
12 layers, 12 heads, 32-pixel patches, 224-pixel input, 512-dim projection) with random
weights, so nothing is downloaded; its speed is the real model's, its agreement is that of
random weights (a trained model's activations are better scaled; `findimage` checks the real
one at every start). Pictures a second count the model alone, on pixel tensors already on
the device: the ceiling the GPU sets, not what a run reading files from disk reaches.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from bench.common import machine, table
from findimage.inference.export import MIN_AGREEMENT
from findimage.inference.half import lowest_cosine

# A tiny model for --quick: the same code path, in seconds on the CPU.
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 64,
    "patch_size": 16,
    "projection_dim": 32,
}
AGREEMENT_PICTURES = 64


def build_model(quick: bool) -> CLIPVisionModelWithProjection:
    torch.manual_seed(0)
    config = CLIPVisionConfig(**TINY) if quick else CLIPVisionConfig()
    return CLIPVisionModelWithProjection(config).eval()


def pixels(count: int, side: int, seed: int) -> torch.Tensor:
    """Pixel tensors as CLIP's processor makes them: roughly zero mean, unit spread."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, 3, side, side, generator=generator)


@torch.inference_mode()
def embed(model: CLIPVisionModelWithProjection, batch: torch.Tensor) -> torch.Tensor:
    dtype = next(model.parameters()).dtype
    return model(pixel_values=batch.to(dtype)).image_embeds


def images_per_second(
    model: CLIPVisionModelWithProjection,
    device: torch.device,
    batch_size: int,
    side: int,
    seconds: float,
) -> float:
    """Batches run back to back for about `seconds` after two warm-up batches."""
    batch = pixels(batch_size, side, seed=1).to(device)
    for _ in range(2):
        embed(model, batch)
    _synchronize(device)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or done == 0:
        embed(model, batch)
        done += batch_size
        _synchronize(device)
    return done / (time.perf_counter() - started)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def agreement(
    model: CLIPVisionModelWithProjection, device: torch.device, dtype: torch.dtype, side: int
) -> float:
    """The lowest cosine, over the pictures, between the model at `dtype` on `device` and
    the same model at fp32 on the CPU."""
    probes = pixels(AGREEMENT_PICTURES, side, seed=2)
    model.to("cpu", torch.float32)
    reference = embed(model, probes).numpy()
    model.to(device, dtype)
    candidate = embed(model, probes.to(device)).float().cpu().numpy()
    return lowest_cosine(reference, candidate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny model on the CPU")
    parser.add_argument("--device", help="cuda (default) or cpu (the default with --quick)")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", help="default: 32 128 256 (4 8 with --quick)"
    )
    parser.add_argument("--seconds", type=float, help="time per measurement (default 10)")
    args = parser.parse_args()
    device = torch.device(args.device or ("cpu" if args.quick else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.exit(2, "bench_gpu: PyTorch finds no CUDA GPU here; --quick runs on the CPU.\n")
    batch_sizes = args.batch_sizes or ([4, 8] if args.quick else [32, 128, 256])
    seconds = args.seconds or (0.5 if args.quick else 10.0)

    model = build_model(args.quick)
    side = model.config.image_size
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{machine()}; device: {where}")
    print(
        f"model: CLIP vision tower, hidden {model.config.hidden_size}, "
        f"{model.config.num_hidden_layers} layers, patch {model.config.patch_size}, "
        f"input {side}, random weights"
    )
    rows = []
    for name, dtype in (("fp16", torch.float16), ("fp32", torch.float32)):
        cosine = agreement(model, device, dtype, side)  # leaves the model on the device
        for batch_size in batch_sizes:
            rate = images_per_second(model, device, batch_size, side, seconds)
            rows.append(
                (
                    name,
                    str(batch_size),
                    f"{rate:.1f}",
                    f"{cosine:.6f}",
                    "met" if cosine >= MIN_AGREEMENT else "not met",
                )
            )
    print(
        table(
            rows,
            ("precision", "batch", "images/s", "lowest cosine to CPU fp32", "bar 0.999"),
        )
    )


if __name__ == "__main__":
    np.set_printoptions(precision=6)
    main()
