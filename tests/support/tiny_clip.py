"""A tiny random-weight CLIP in the standard transformers layout, built in well under a second.

sentence-transformers loads such a folder as a multimodal model that encodes both
pictures and text, exactly as it loads the real clip-ViT-B-32.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import pre_tokenizers
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    CLIPTextConfig,
    CLIPTokenizer,
    CLIPVisionConfig,
)

WORDS = (
    "a",
    "an",
    "the",
    "of",
    "photo",
    "picture",
    "image",
    "red",
    "green",
    "blue",
    "yellow",
    "black",
    "white",
    "orange",
    "purple",
    "circle",
    "square",
    "triangle",
    "stripes",
    "cross",
    "dot",
    "ring",
    "mountain",
    "snow",
    "beach",
    "cat",
    "dog",
)
EMBED_DIMS = 16
IMAGE_SIZE = 32


def build_tokenizer() -> CLIPTokenizer:
    """A byte-level BPE tokenizer that knows every byte and the words above whole."""
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:
            merged = pieces[0] + pieces[1]
            if (pieces[0], pieces[1]) not in merges:
                merges.append((pieces[0], pieces[1]))
            vocab.setdefault(merged, len(vocab))
            pieces = [merged, *pieces[2:]]
    return CLIPTokenizer(vocab=vocab, merges=merges)


def build_model(vocab_size: int, seed: int = 0) -> CLIPModel:
    torch.manual_seed(seed)
    text = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=32,
        projection_dim=EMBED_DIMS,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=8,
        projection_dim=EMBED_DIMS,
    )
    config = CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=EMBED_DIMS
    )
    return CLIPModel(config).eval()


def build_processor(tokenizer: CLIPTokenizer) -> CLIPProcessor:
    images = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    return CLIPProcessor(image_processor=images, tokenizer=tokenizer)


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """Write a random-weight tiny CLIP to `folder` and return it."""
    tokenizer = build_tokenizer()
    model = build_model(len(tokenizer), seed)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    build_processor(tokenizer).save_pretrained(folder)
    return folder


def save_other_clip(folder: Path) -> Path:
    """Another random-weight tiny CLIP (another seed): the other models an index is rebuilt
    with."""
    return save_tiny_clip(folder, seed=7)
