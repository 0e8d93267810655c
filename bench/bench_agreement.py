"""How closely each engine's vectors agree with PyTorch fp32, on photographs and on text,
and whether they rank a gallery the same, side by side in one run.

    python -m bench.bench_agreement          # a few minutes once the models are exported
    python -m bench.bench_agreement --quick  # 40 photographs instead of 120

The photographs are the two scikit-learn ships (a Chinese temple, a flower), cut into 120
crops, flips and rescales so there are many real pictures to compare. An engine is allowed
when its lowest cosine to PyTorch fp32 is at least 0.999.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

from bench.common import common_arguments, image_model, machine, table, text_model
from findimage.encoders import ClipEncoder, OnnxEncoder

SUBJECTS = (
    "snowy mountain",
    "a temple roof",
    "red flower",
    "a black cat",
    "the team",
    "a dog",
    "Schneebedeckter Berg",
    "un chat noir",
    "montaña nevada",
    "東京の夜景",
)
SETTINGS = ("at sunrise", "in front of the office", "on the beach, 2024")
TEXTS = [f"{subject} {setting}" for subject in SUBJECTS for setting in SETTINGS]
TOP = 10


def photographs(count: int = 120) -> list[Image.Image]:
    """Crops, flips and rescales of scikit-learn's two sample photographs."""
    rng = np.random.default_rng(0)
    photos = [Image.fromarray(array) for array in load_sample_images().images]
    pictures = []
    for index in range(count):
        photo = photos[index % 2]
        width, height = photo.size
        w, h = int(rng.integers(120, width)), int(rng.integers(120, height))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        picture = photo.crop((x, y, x + w, y + h))
        if index % 3 == 0:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if index % 5 == 0:
            picture = picture.resize((max(1, w // 3), max(1, h // 3)))
        pictures.append(picture)
    return pictures


def compare(reference: np.ndarray, vectors: np.ndarray, queries: int = 20) -> tuple[str, ...]:
    cosines = np.sum(reference * vectors, axis=1)
    # Rank the gallery by each of the first `queries` rows, with each engine's own vectors.
    ranked_ref = np.argsort(-(reference @ reference[:queries].T), axis=0)[1 : TOP + 1]
    ranked = np.argsort(-(vectors @ vectors[:queries].T), axis=0)[1 : TOP + 1]
    overlap = np.mean(
        [len(set(a) & set(b)) / TOP for a, b in zip(ranked_ref.T, ranked.T, strict=True)]
    )
    return f"{cosines.min():.5f}", f"{cosines.mean():.6f}", f"{overlap:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    args = parser.parse_args()
    print(machine())
    threads = len(os.sched_getaffinity(0))
    cache = args.work / "model-cache"
    pictures = photographs(40 if args.quick else 120)
    rows = []
    for tower, model, inputs in (
        ("image", image_model(args), pictures),
        ("text", text_model(args), TEXTS),
    ):
        reference_encoder = ClipEncoder(model, "-", "cpu", batch_size=32)
        encode = "encode_images" if tower == "image" else "encode_texts"
        reference = getattr(reference_encoder, encode)(inputs)
        for precision in ("fp32", "int8"):
            engine = OnnxEncoder(model, "-", tower, precision, cache, threads)
            vectors = getattr(engine, encode)(inputs)
            ran = engine.precision
            what = f"{tower} tower, onnx {precision}" + (
                "" if ran == precision else f" (ran {ran})"
            )
            rows.append((what, *compare(reference, vectors)))
    header = (
        "engine",
        "lowest cosine to PyTorch fp32",
        "mean cosine",
        f"top-{TOP} overlap with PyTorch's ranking",
    )
    print(table(rows, header))


if __name__ == "__main__":
    main()
