"""CLIP encoders on sentence-transformers: pictures and text into one vector space."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlparse

import numpy as np

from bot.errors import ModelLoadError
from bot.notices import announced_if_slow

if TYPE_CHECKING:
    from PIL import Image
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

HUB_PROBE_TIMEOUT_SECONDS = 5.0


class TextEncoder(Protocol):
    model_name: str

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class TextFitter(Protocol):
    """A text model that can say how much of a text it reads (local models; a remote one
    truncates on its own side)."""

    def fit_text(self, text: str) -> FittedText: ...


@dataclass(frozen=True)
class FittedText:
    """A query as the text model reads it: `text` is whole words from the start of the
    original, and `cut` says whether words were left out to fit `max_tokens`."""

    text: str
    cut: bool
    max_tokens: int | None = None


@runtime_checkable
class RemoteTextEncoder(TextEncoder, Protocol):
    """A text model served elsewhere (by Elasticsearch), which may be missing or stopped."""

    def problem(self) -> str | None:
        """One plain sentence when the model cannot embed text now, else None."""
        ...


class ImageEncoder(Protocol):
    model_name: str

    @property
    def dims(self) -> int: ...

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...


class ClipEncoder:
    """One sentence-transformers model, loaded once on first use, thread-safe.

    Returns L2-normalized float32 rows. `setting` names the environment variable that
    points at this model, for the message shown when it cannot be loaded.
    """

    def __init__(self, model_name: str, setting: str, device: str = "auto", batch_size: int = 32):
        self.model_name = model_name
        self._setting = setting
        self._device = None if device == "auto" else device
        self._batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def dims(self) -> int:
        dims = self._load().get_embedding_dimension()
        if dims is None:
            dims = self.encode_texts(["dimension probe"]).shape[1]
        return int(dims)

    def load(self) -> None:
        """Load the model now rather than on the first request."""
        self._load()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(list(texts))

    def fit_text(self, text: str) -> FittedText:
        """The longest start of `text`, in whole words where it has spaces, that the model
        reads in full; CLIP's text model refuses longer input rather than cutting it."""
        model = self._load()
        limit = _max_text_tokens(model)
        if limit is None:
            return FittedText(text, cut=False)
        tokenizer = model.tokenizer

        def fits(candidate: str) -> bool:
            return len(tokenizer(candidate)["input_ids"]) <= limit

        if fits(text):
            return FittedText(text, cut=False, max_tokens=limit)
        words = [match.end() for match in re.finditer(r"\S+", text)]
        ends = words if len(words) > 1 and fits(text[: words[0]]) else range(1, len(text))
        fitted = text[: _longest(ends, lambda end: fits(text[:end]))].rstrip()
        return FittedText(fitted, cut=True, max_tokens=limit)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self._encode(list(images))

    def _encode(self, inputs: list) -> np.ndarray:
        model = self._load()
        with self._lock:
            vectors = model.encode(
                inputs,
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def _load(self) -> SentenceTransformer:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                kind = "text" if self._setting == "FINDIMAGE_TEXT_MODEL" else "image"
                with announced_if_slow(f"Loading the {kind} model ({self.model_name}) ..."):
                    self._model = _load_model(self.model_name, self._setting, self._device)
        return self._model


def _max_text_tokens(model: SentenceTransformer) -> int | None:
    """The most tokens the text side reads: CLIP's position table, or the sequence limit the
    sentence-transformers model declares (e.g. 128 for the multilingual text model)."""
    limits = [model.max_seq_length] if model.max_seq_length and model.max_seq_length < 10**6 else []
    inner = getattr(model[0], "auto_model", None)
    config = getattr(inner, "config", None)
    text_config = getattr(config, "text_config", config)
    positions = getattr(text_config, "max_position_embeddings", None)
    if isinstance(positions, int):
        limits.append(positions)
    return min(limits) if limits else None


def _longest(ends: Sequence[int], fits: Callable[[int], bool]) -> int:
    """The largest of the sorted `ends` that fits (binary search), or 0 when none does."""
    low, high, best = 0, len(ends) - 1, 0
    while low <= high:
        middle = (low + high) // 2
        if fits(ends[middle]):
            best, low = ends[middle], middle + 1
        else:
            high = middle - 1
    return best


def _load_model(name: str, setting: str, device: str | None) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    local = Path(name).expanduser()
    if _looks_like_a_path(name) and not local.is_dir():
        raise ModelLoadError(
            f"Could not load the model '{name}': there is no such folder. "
            f"Set {setting} to a folder holding a local copy of it, or to a model name."
        )
    try:
        if local.is_dir():
            return SentenceTransformer(str(local), device=device)
        try:
            return SentenceTransformer(name, device=device, local_files_only=True)
        except OSError:
            log.info("model %s is not cached; downloading it", name)
        _require_hub(name, setting)
        return SentenceTransformer(name, device=device)
    except ModelLoadError:
        raise
    except Exception as exc:
        log.exception("loading model %s failed", name)
        raise ModelLoadError(
            f"Could not load the model '{name}': {_first_line(exc)}. "
            f"Set {setting} to a folder holding a local copy of it."
        ) from exc


def _looks_like_a_path(name: str) -> bool:
    """Hub names are 'name' or 'owner/name'; anything else is meant as a folder."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def _require_hub(name: str, setting: str) -> None:
    """Fail in seconds, not minutes of retries, when the model hub cannot be reached."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        raise ModelLoadError(
            f"Could not load the model '{name}': it is not cached and HF_HUB_OFFLINE is set. "
            f"Set {setting} to a folder holding a local copy of it."
        )
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_SECONDS).close()
    except OSError as exc:
        raise ModelLoadError(
            f"Could not load the model '{name}': it is not cached and {host} cannot be reached "
            f"({exc.strerror or exc}). Set {setting} to a folder holding a local copy of it."
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__
