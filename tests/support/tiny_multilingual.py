"""A tiny random-weight text model shaped like clip-ViT-B-32-multilingual-v1.

That model is a DistilBERT transformer, mean pooling and a dense layer down to CLIP's
dimensions, saved in sentence-transformers' layout; this one is the same three modules,
small, with a WordPiece tokenizer built here.
"""

from __future__ import annotations

from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Dense, Transformer
from sentence_transformers.sentence_transformer.modules import Pooling
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import DistilBertConfig, DistilBertModel, PreTrainedTokenizerFast

from tests.support.tiny_clip import EMBED_DIMS, WORDS

HIDDEN = 32
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Lower-cased WordPiece over the test words, their pieces and every ASCII letter."""
    pieces = set(WORDS) | {f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"}
    pieces |= set("abcdefghijklmnopqrstuvwxyz0123456789")
    return wordpiece_tokenizer([*SPECIAL, *sorted(pieces)], max_length=24, strip_accents=True)


def wordpiece_tokenizer(
    tokens: list[str], max_length: int, strip_accents: bool | None = None
) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer over `tokens`, which start with SPECIAL."""
    vocab = {token: index for index, token in enumerate(tokens)}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=strip_accents)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )


def save_tiny_multilingual(folder: Path, seed: int = 0) -> Path:
    """Write the model to `folder` in sentence-transformers' layout and return it."""
    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    config = DistilBertConfig(
        vocab_size=len(tokenizer),
        dim=HIDDEN,
        hidden_dim=64,
        n_layers=2,
        n_heads=2,
        max_position_embeddings=24,
    )
    transformer_folder = folder / "transformer-source"
    DistilBertModel(config).eval().save_pretrained(transformer_folder)
    tokenizer.save_pretrained(transformer_folder)
    transformer = Transformer(str(transformer_folder), max_seq_length=24)
    pooling = Pooling(HIDDEN, pooling_mode="mean")
    dense = Dense(HIDDEN, EMBED_DIMS, bias=True, activation_function=torch.nn.Identity())
    model = SentenceTransformer(modules=[transformer, pooling, dense], device="cpu")
    model.save(str(folder / "model"))
    return folder / "model"
