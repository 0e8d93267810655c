"""Full-size model shapes with random weights, so the benchmarks run offline.

`vit_b32_clip` is CLIP ViT-B/32 (transformers' CLIPConfig defaults) in the layout
sentence-transformers loads as clip-ViT-B-32; `multilingual_text` is the shape of
clip-ViT-B-32-multilingual-v1: a DistilBERT with the multilingual vocabulary size, mean
pooling and a dense layer down to 512. Random weights run at the speed of trained ones;
their vectors mean nothing, which the benchmarks do not need.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Dense, Transformer
from sentence_transformers.sentence_transformer.modules import Pooling
from transformers import (
    CLIPConfig,
    CLIPModel,
    DistilBertConfig,
    DistilBertModel,
    PreTrainedTokenizerFast,
)

from tests.support.tiny_clip import build_processor, build_tokenizer
from tests.support.tiny_multilingual import SPECIAL, wordpiece_tokenizer

MULTILINGUAL_VOCAB = 119_547


def vit_b32_clip(folder: Path) -> Path:
    """CLIP ViT-B/32 with random weights (about 600 MB on disk), made once per folder."""
    if (folder / "config.json").exists():
        return folder
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig()).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor = build_processor(build_tokenizer())
    processor.image_processor.size = {"shortest_edge": 224}
    processor.image_processor.crop_size = {"height": 224, "width": 224}
    processor.save_pretrained(folder)
    return folder


def multilingual_text(folder: Path) -> Path:
    """The multilingual text model's shape with random weights, made once per folder."""
    target = folder / "model"
    if (target / "modules.json").exists():
        return target
    torch.manual_seed(0)
    tokenizer = _wordpiece(MULTILINGUAL_VOCAB)
    source = folder / "transformer"
    config = DistilBertConfig(vocab_size=MULTILINGUAL_VOCAB, max_position_embeddings=512)
    DistilBertModel(config).eval().save_pretrained(source)
    tokenizer.save_pretrained(source)
    transformer = Transformer(str(source), max_seq_length=128)
    pooling = Pooling(768, pooling_mode="mean")
    dense = Dense(768, 512, bias=False, activation_function=torch.nn.Tanh())
    SentenceTransformer(modules=[transformer, pooling, dense], device="cpu").save(str(target))
    return target


def _wordpiece(size: int) -> PreTrainedTokenizerFast:
    """A WordPiece tokenizer of `size` entries: characters, then made-up word pieces."""
    rng = np.random.default_rng(0)
    characters = string.ascii_lowercase + string.digits + "àáâäçèéêëíîïñóôöúûüß"
    tokens = [*SPECIAL, *characters, *(f"##{c}" for c in characters)]
    seen = set(tokens)
    while len(tokens) < size:
        piece = "".join(rng.choice(list(string.ascii_lowercase), rng.integers(2, 9)))
        for candidate in (piece, f"##{piece}"):
            if candidate not in seen and len(tokens) < size:
                seen.add(candidate)
                tokens.append(candidate)
    return wordpiece_tokenizer(tokens, max_length=128)
