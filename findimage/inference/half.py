"""The image model on a CUDA GPU in fp16, where its vectors agree with the CPU's fp32.

fp16 halves what the weights and activations take on the GPU and runs on its tensor cores.
Whether a model's vectors survive it is checked, not assumed, as for the int8 ONNX export
(export.py): at the first load, probe pictures (and texts, when the model serves text) are
encoded at fp32 on the CPU, then at fp16 on the GPU; under MIN_AGREEMENT (cosine 0.999, the
same bar) the model runs fp32 on the GPU instead, said in one WARNING line.

Only the choice is here, and it takes what it compares as arguments, so it runs on a machine
without a GPU (tests/findimage/inference/test_half.py); the encoder does the moving.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from findimage.errors import ConfigError
from findimage.inference.export import MIN_AGREEMENT

log = logging.getLogger(__name__)

NO_CUDA = (
    "FINDIMAGE_DEVICE=cuda, but PyTorch finds no CUDA GPU here: install PyTorch's CUDA build "
    "and the NVIDIA driver, or set FINDIMAGE_DEVICE=cpu."
)


@dataclass(frozen=True)
class Placement:
    """Where a PyTorch model runs: `device` for sentence-transformers (None: it picks), and
    whether it is tried in fp16 first."""

    device: str | None
    half: bool


def placement(device: str, cuda_available: Callable[[], bool]) -> Placement:
    """FINDIMAGE_DEVICE's placement: `cuda` is fp16 on the GPU (when it agrees) and refused in
    one sentence where PyTorch sees no GPU; `auto` leaves the choice to sentence-transformers,
    at fp32, as before."""
    if device != "cuda":
        return Placement(None if device == "auto" else device, half=False)
    if not cuda_available():
        raise ConfigError(NO_CUDA)
    return Placement("cuda", half=True)


def lowest_cosine(reference: np.ndarray, candidate: np.ndarray) -> float:
    """The lowest cosine between matching rows, each normalized at fp32 first (fp16 vectors
    come back normalized only to fp16's precision)."""
    a = _unit_rows(reference)
    b = _unit_rows(candidate)
    if a.shape != b.shape:
        raise ValueError(f"{a.shape} vectors against {b.shape}")
    return float(np.min(np.sum(a * b, axis=1)))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    rows = np.asarray(vectors, dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def keep_half_if_it_agrees(
    reference: np.ndarray,
    encode_half: Callable[[], np.ndarray],
    to_fp32: Callable[[], None],
    model_name: str,
) -> str:
    """'fp16' when the vectors `encode_half` gives agree with `reference` (the same probes at
    fp32 on the CPU); else calls `to_fp32`, says so once, and returns 'fp32'."""
    agreement = lowest_cosine(reference, encode_half())
    if agreement >= MIN_AGREEMENT:
        log.info("%s runs at fp16 on the GPU (cosine to CPU fp32: %.6f)", model_name, agreement)
        return "fp16"
    to_fp32()
    log.warning(
        "%s at fp16 agrees with CPU fp32 only to a cosine of %s, under %s; running it at fp32 "
        "on the GPU instead",
        model_name,
        f"{math.floor(agreement * 1e6) / 1e6:.6f}",
        MIN_AGREEMENT,
    )
    return "fp32"
