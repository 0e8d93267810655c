"""The tiny CLIP from tiny_clip.py, trained in seconds to match colored shapes with their captions.

Random weights prove that pictures and text load and encode; they cannot prove that a search
ranks the right picture first. This model can: after contrastive training on pictures of the
8 colors x 3 shapes in pictures.py, "a red circle" lands nearest to red circles it never saw.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoProcessor, CLIPModel, ProcessorMixin

from tests.support.pictures import COLORS, SHAPES, draw_shape
from tests.support.tiny_clip import IMAGE_SIZE, build_model, build_processor, build_tokenizer

CLASSES: tuple[tuple[str, str], ...] = tuple((color, shape) for color in COLORS for shape in SHAPES)
TEMPLATES = (
    "a {color} {shape}",
    "{color} {shape}",
    "a photo of a {color} {shape}",
    "a picture of a {color} {shape}",
    "an image of a {color} {shape}",
)
PICTURES_PER_CLASS = 128
TRAINING_STEPS = 800
LEARNING_RATE = 2e-3


def caption(color: str, shape: str) -> str:
    return TEMPLATES[0].format(color=color, shape=shape)


def shape_picture(
    rng: random.Random, color: str, shape: str, held_out: bool = False
) -> Image.Image:
    """A `color` `shape` of random size, position and gray-ish background.

    Training pictures have an even width and held-out ones an odd width, so a held-out
    picture is never one the model was trained on.
    """
    width = rng.randrange(40, 96, 2) + (1 if held_out else 0)
    height = max(32, round(width * rng.uniform(0.85, 1.15)))
    margin = min(width, height) // 6
    gray = rng.randint(80, 180)
    background = (
        gray + rng.randint(-20, 20),
        gray + rng.randint(-20, 20),
        gray + rng.randint(-20, 20),
    )
    offset = rng.randint(-margin // 2, margin // 2)
    return draw_shape(color, shape, size=(width, height), background=background, offset=offset)


def train_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """Train the tiny CLIP on shapes and their captions, save it to `folder` and return it.

    The folder has the standard transformers layout that SentenceTransformer(folder) loads.
    About 10 seconds on one CPU core; the same seed gives the same weights.
    """
    tokenizer = build_tokenizer()
    folder.mkdir(parents=True, exist_ok=True)
    build_processor(tokenizer).save_pretrained(folder)
    # The processor as sentence-transformers loads it, so training sees exactly what inference sees.
    processor = AutoProcessor.from_pretrained(folder)
    model = build_model(len(tokenizer), seed)
    threads = torch.get_num_threads()
    # A model this small gains nothing from more threads, and loses a lot to other busy cores.
    torch.set_num_threads(1)
    try:
        _train(model, processor, seed)
    finally:
        torch.set_num_threads(threads)
    model.eval().save_pretrained(folder)
    return folder


def _train(model: CLIPModel, processor: ProcessorMixin, seed: int) -> None:
    rng = random.Random(seed)
    pictures = [
        shape_picture(rng, color, shape)
        for _ in range(PICTURES_PER_CLASS)
        for color, shape in CLASSES
    ]
    pixels = processor(images=pictures, return_tensors="pt")["pixel_values"]
    pixels = pixels.reshape(PICTURES_PER_CLASS, len(CLASSES), 3, IMAGE_SIZE, IMAGE_SIZE)
    texts = [
        template.format(color=color, shape=shape)
        for template in TEMPLATES
        for color, shape in CLASSES
    ]
    tokens = processor(text=texts, return_tensors="pt", padding=True)
    input_ids = tokens["input_ids"].reshape(len(TEMPLATES), len(CLASSES), -1)
    attention_mask = tokens["attention_mask"].reshape(len(TEMPLATES), len(CLASSES), -1)

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=LEARNING_RATE, total_steps=TRAINING_STEPS, pct_start=0.1
    )
    classes = torch.arange(len(CLASSES))
    model.train()
    for _ in range(TRAINING_STEPS):
        # One picture and one caption per class: the CLIP loss treats every other pair in the
        # batch as a negative, so a class must not appear twice.
        picture = torch.randint(PICTURES_PER_CLASS, (len(CLASSES),), generator=generator)
        template = torch.randint(len(TEMPLATES), (len(CLASSES),), generator=generator)
        loss = model(
            input_ids=input_ids[template, classes],
            attention_mask=attention_mask[template, classes],
            pixel_values=pixels[picture, classes],
            return_loss=True,
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
