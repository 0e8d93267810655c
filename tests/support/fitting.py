"""A real text encoder that counts the texts it is asked to fit to its model's length."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from findimage.encoders import FittedText, TextEncoder, TextFitter


class CountingTextEncoder:
    """The real encoder (its tokenizer does the fitting), with each text it fitted recorded."""

    def __init__(self, inner: TextEncoder):
        assert isinstance(inner, TextFitter), "the encoder must fit texts itself"
        self.model_name = inner.model_name
        self._inner = inner
        self._fitter: TextFitter = inner
        self.fitted: list[str] = []

    def fit_text(self, text: str) -> FittedText:
        self.fitted.append(text)
        return self._fitter.fit_text(text)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._inner.encode_texts(texts)
