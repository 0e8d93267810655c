"""CLIP encoders: pictures and text into one vector space, on PyTorch or ONNX Runtime.

ClipEncoder runs a sentence-transformers model on PyTorch; OnnxEncoder runs one of its
towers exported to ONNX (findimage/inference/). Every encoder has `warm()`, so a server can load
and exercise its models before the first request.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlparse

import numpy as np

from findimage.errors import ModelLoadError
from findimage.inference.export import (
    META_FILE,
    ExportedTower,
    Precision,
    Tower,
    ensure_exported,
    export_folder,
    probe_pictures,
)
from findimage.inference.half import keep_half_if_it_agrees
from findimage.inference.preprocess import ImageSpec, TextTokenizer
from findimage.inference.runtime import OnnxSession
from findimage.notices import announced_if_slow, notices

if TYPE_CHECKING:
    from PIL import Image
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

# The towers whose int8 fall-back was said in this process: each encoder that opens one (the
# bot's, its watcher's, a command's) would say it again otherwise.
_FALLBACKS_SAID: set[tuple[str, str]] = set()
_FALLBACKS_LOCK = threading.Lock()

HUB_PROBE_TIMEOUT_SECONDS = 5.0
# How long a model that failed to load answers with that failure before it is tried again.
LOAD_RETRY_SECONDS = 30.0
# CLIP ViT-B/32's input: what a picture needs when the model does not say.
DEFAULT_INPUT_SIDE = 224


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
    """Pictures into vectors; the per-picture work (`prepare_image`) can run ahead.

    `prepare_image` may be called on worker threads, many at once; `encode_prepared`
    takes what it returned, on the thread that drives the engine.
    """

    model_name: str

    @property
    def engine(self) -> str: ...

    @property
    def precision(self) -> str: ...

    @property
    def dims(self) -> int: ...

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    @property
    def input_side(self) -> int:
        """The fewest pixels a decoded picture's short side needs."""
        ...

    def prepare_image(self, image: Image.Image) -> object: ...

    def encode_prepared(self, prepared: Sequence[object]) -> np.ndarray: ...


class ClipEncoder:
    """One sentence-transformers model on PyTorch, loaded once on first use, thread-safe.

    Returns L2-normalized float32 rows. `setting` names the environment variable that
    points at this model, for the message shown when it cannot be loaded. `threads`, when
    given, is PyTorch's intra-op thread count (process-wide: PyTorch has one pool).

    With `half` (FINDIMAGE_DEVICE=cuda, findimage/inference/half.py), the image tower runs at
    fp16 on `device` when its vectors agree with the CPU's fp32, checked at load; `precision`
    then says which ran.
    """

    engine = "torch"

    def __init__(
        self,
        model_name: str,
        setting: str,
        device: str = "auto",
        batch_size: int = 32,
        threads: int | None = None,
        half: bool = False,
    ):
        self.model_name = model_name
        self._precision = "fp32"
        self._setting = setting
        self._device = None if device == "auto" else device
        self._half = half
        self._batch_size = batch_size
        self._threads = threads
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def dims(self) -> int:
        dims = self._load().get_embedding_dimension()
        if dims is None:
            dims = self.encode_texts(["dimension probe"]).shape[1]
        return int(dims)

    @property
    def precision(self) -> str:
        """fp32, or with `half` the precision the check at load chose (loads)."""
        if self._half:
            self._load()
        return self._precision

    @property
    def input_side(self) -> int:
        return image_input_side(self._load())

    def load(self) -> None:
        """Load the model now rather than on the first request."""
        self._load()

    def warm(self, tower: Tower | None = None) -> None:
        """Load the model and run one input through `tower` (default: both), so the first
        request pays for neither."""
        if tower in (None, "image"):
            self.encode_images([warm_up_picture(self.input_side)])
        if tower in (None, "text"):
            self.encode_texts(["warm up"])

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(list(texts))

    def fit_text(self, text: str) -> FittedText:
        """The longest start of `text` the model reads in full (see `fit_to_tokens`); CLIP's
        text model refuses longer input rather than cutting it."""
        model = self._load()
        limit = _max_text_tokens(model)
        if limit is None:
            return FittedText(text, cut=False)
        tokenizer = model.tokenizer
        return fit_to_tokens(text, limit, lambda part: len(tokenizer(part)["input_ids"]) <= limit)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self._encode(list(images))

    def prepare_image(self, image: Image.Image) -> object:
        # sentence-transformers preprocesses inside encode(); nothing to do ahead of it.
        return image

    def encode_prepared(self, prepared: Sequence[object]) -> np.ndarray:
        return self.encode_images(prepared)  # type: ignore[arg-type]  # the pictures themselves

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
        rows = np.asarray(vectors, dtype=np.float32)
        if self._precision == "fp16":
            # Normalized at fp16 inside the model: again at fp32, as every other engine's.
            rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        return rows

    def _load(self) -> SentenceTransformer:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                # Offline and not cached fails here in seconds, before PyTorch is imported.
                files_cached = require_model_files(self.model_name, self._setting)
                if self._threads:
                    import torch

                    torch.set_num_threads(self._threads)
                kind = "text" if self._setting == "FINDIMAGE_TEXT_MODEL" else "image"
                with announced_if_slow(f"Loading the {kind} model ({self.model_name}) ..."):
                    if not self._half:
                        self._model = load_sentence_transformer(
                            self.model_name, self._setting, self._device, files_cached
                        )
                    else:
                        model = load_sentence_transformer(
                            self.model_name, self._setting, "cpu", files_cached
                        )
                        self._precision = self._settle_half(model)
                        self._model = model
        return self._model

    def _settle_half(self, model: SentenceTransformer) -> str:
        """Move the model, loaded at fp32 on the CPU, to the GPU with its image tower at fp16
        if the probe pictures' vectors agree with the CPU's; the precision that runs."""
        tower = _image_tower(model)
        if not tower:
            log.info("%s has no CLIP image tower to run at fp16; fp32 it is", self.model_name)
            model.to(self._device)
            return "fp32"
        pictures = probe_pictures(image_input_side(model))

        def encode() -> np.ndarray:
            return np.asarray(
                model.encode(pictures, normalize_embeddings=True, convert_to_numpy=True),
                dtype=np.float32,
            )

        reference = encode()
        model.to(self._device)
        for module in tower:
            module.half()

        def to_fp32() -> None:
            for module in tower:
                module.float()

        return keep_half_if_it_agrees(reference, encode, to_fp32, self.model_name)


def _image_tower(model: SentenceTransformer) -> list:
    """The modules of a CLIP model's image tower (transformers' CLIPModel: the vision
    transformer and its projection), or [] for another layout."""
    inner = getattr(model[0], "model", None)
    parts = [getattr(inner, name, None) for name in ("vision_model", "visual_projection")]
    return parts if all(part is not None for part in parts) else []


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


def fit_to_tokens(text: str, limit: int, fits: Callable[[str], bool]) -> FittedText:
    """`text` if it `fits` in `limit` tokens, else its longest start that does: whole words
    where it has spaces, characters otherwise (for scripts written without them)."""
    if fits(text):
        return FittedText(text, cut=False, max_tokens=limit)
    words = [match.end() for match in re.finditer(r"\S+", text)]
    ends = words if len(words) > 1 and fits(text[: words[0]]) else range(1, len(text))
    fitted = text[: _longest(ends, lambda end: fits(text[:end]))].rstrip()
    return FittedText(fitted, cut=True, max_tokens=limit)


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


class OnnxEncoder:
    """One tower of a model on ONNX Runtime: exported from sentence-transformers once, cached.

    The export (and its check against PyTorch) happens on first use when the cache has none;
    after that, neither PyTorch nor the sentence-transformers model is loaded. An int8 export
    whose vectors do not agree with PyTorch's falls back to fp32, and `precision` says so
    once loaded. Thread-safe.

    Each input runs on its own, one thread per run, up to `threads` runs at once. Measured
    (BENCHMARKS.md), that is faster on CPU than batches split over threads, and it keeps an
    input's vector independent of what else is in its batch: int8 quantizes each run's
    activations with one scale, so a batched picture would get another vector than the
    same picture alone (cosine 0.9999, not 1).
    """

    engine = "onnx"

    def __init__(
        self,
        model_name: str,
        setting: str,
        tower: Tower,
        precision: Precision,
        cache_dir: Path,
        threads: int | None,
    ):
        self.model_name = model_name
        self._precision = precision
        self._setting = setting
        self._tower = tower
        self._cache_dir = cache_dir
        self._threads = max(1, threads or 1)
        self._session: OnnxSession | None = None
        self._runs: ThreadPoolExecutor | None = None
        self._image_spec: ImageSpec | None = None
        self._tokenize: TextTokenizer | None = None
        self._dims: int | None = None
        self._lock = threading.Lock()
        # A load that failed is not tried again for LOAD_RETRY_SECONDS: whoever asks meanwhile
        # gets its error (the indexer's decode threads all ask, one file after another; each
        # would repeat the same wait and the same lines). A server tries again after that.
        self._failure: Exception | None = None
        self._failed_at = 0.0
        self._files_cached: bool | None = None

    @property
    def dims(self) -> int:
        self._load()
        assert self._dims is not None
        return self._dims

    @property
    def precision(self) -> str:
        """The precision that runs: the one asked for, unless int8 did not agree (loads)."""
        self._load()
        return self._precision

    @property
    def input_side(self) -> int:
        return self._spec().input_side

    def load(self) -> None:
        """Export if needed and open the session now rather than on the first request."""
        self._load()

    def warm(self, tower: Tower | None = None) -> None:
        """Load the session and run one input through this encoder's own tower, so the
        first request pays for neither (`tower` is accepted for a caller that warms any
        encoder the same way)."""
        if self._tower == "image":
            self.encode_images([warm_up_picture(self.input_side)])
        else:
            self.encode_texts(["warm up"])

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self._load()
        tokenize = self._tokenize
        if tokenize is None:
            raise ModelLoadError(f"The {self._tower} model cannot encode text.")
        return self._run_each([tokenize([text]) for text in texts])

    def fit_text(self, text: str) -> FittedText:
        """The longest start of `text` the exported tokenizer keeps whole: it would silently
        cut the rest, and the user is told when a query was cut (`fit_to_tokens`)."""
        self._load()
        tokenize = self._tokenize
        if tokenize is None:
            return FittedText(text, cut=False)
        return fit_to_tokens(text, tokenize.max_length, tokenize.fits)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.encode_prepared([self.prepare_image(image) for image in images])

    def prepare_image(self, image: Image.Image) -> np.ndarray:
        return self._spec().pixels(image)

    def encode_prepared(self, prepared: Sequence[object]) -> np.ndarray:
        return self._run_each(
            [{"pixel_values": np.asarray(p, dtype=np.float32)[None]} for p in prepared]
        )

    def _run_each(self, inputs: list[dict[str, np.ndarray]]) -> np.ndarray:
        session = self._load()
        if not inputs:
            return np.zeros((0, self.dims), dtype=np.float32)
        if len(inputs) == 1 or self._runs is None:
            rows = [session.run(one) for one in inputs]
        else:
            rows = list(self._runs.map(session.run, inputs))
        return np.concatenate(rows).astype(np.float32, copy=False)

    def _spec(self) -> ImageSpec:
        self._load()
        if self._image_spec is None:
            raise ModelLoadError(f"The {self._tower} model cannot encode pictures.")
        return self._image_spec

    def _load(self) -> OnnxSession:
        if self._session is not None:
            return self._session
        with self._lock:
            if self._session is None:
                failure = self._failure
                if failure and time.monotonic() - self._failed_at < LOAD_RETRY_SECONDS:
                    raise failure.with_traceback(None)
                try:
                    self._session = self._first_load()
                except Exception as exc:
                    self._failure, self._failed_at = exc, time.monotonic()
                    raise
        return self._session

    def _first_load(self) -> OnnxSession:
        if self._exported_already():
            with announced_if_slow(f"Loading the {self._tower} model ({self.model_name}) ..."):
                return self._open_session(exporting=False)
        # Offline and not cached fails here in seconds, before PyTorch is imported.
        self._files_cached = require_model_files(self.model_name, self._setting)
        # Said at once: the wait is long, and only the first run of this user has it.
        notices.info(
            f"Preparing the {self._tower} model ({self.model_name}) for this machine, once "
            "for every later run: about a minute ..."
        )
        return self._open_session(exporting=True)

    def _exported_already(self) -> bool:
        """Whether the cache holds this tower's export (cheap: no model is loaded)."""
        folder = export_folder(self._cache_dir, self.model_name, self._tower, self._precision)
        return (folder / META_FILE).is_file()

    def _open_session(self, exporting: bool) -> OnnxSession:
        """Export the tower if the cache has none, then open it (under the load lock)."""
        exported = self._export(self._precision)
        if not exported.agrees and self._precision == "int8":
            with _FALLBACKS_LOCK:
                first = (self.model_name, self._tower) not in _FALLBACKS_SAID
                _FALLBACKS_SAID.add((self.model_name, self._tower))
            # A warning when the export is made, once a process; a later start runs fp32 as
            # the export recorded, which is worth an info line at most.
            level = logging.WARNING if exporting else logging.INFO
            log.log(
                level if first else logging.DEBUG,
                "%s; running the %s model at fp32 instead",
                exported.refusal(self.model_name).split(":")[0],
                self._tower,
            )
            self._precision = "fp32"
            exported = self._export("fp32")
        if not exported.agrees:
            raise ModelLoadError(exported.refusal(self.model_name))
        if self._tower == "image":
            self._image_spec = ImageSpec.load(exported.folder / "image_spec.json")
        else:
            self._tokenize = TextTokenizer.load(exported.folder)
        session = OnnxSession(exported.model_path, threads=1)
        if self._threads > 1:
            self._runs = ThreadPoolExecutor(self._threads, thread_name_prefix="engine")
        self._dims = session.output_dims
        return session

    def _export(self, precision: Precision) -> ExportedTower:
        return ensure_exported(
            self._cache_dir,
            self.model_name,
            self._tower,
            precision,
            load=lambda: load_sentence_transformer(
                self.model_name, self._setting, "cpu", self._files_cached
            ),
            setting=self._setting,
        )


def image_input_side(model: SentenceTransformer) -> int:
    """The short side the model's image processor resizes to, or CLIP's 224 if it says none."""
    processor = getattr(model[0], "processor", None)
    images = getattr(processor, "image_processor", processor)
    size = getattr(images, "size", None) or {}
    crop = getattr(images, "crop_size", None) or {}
    sides = [size.get("shortest_edge"), crop.get("height"), crop.get("width")]
    return max((int(side) for side in sides if side), default=DEFAULT_INPUT_SIDE)


def warm_up_picture(side: int) -> Image.Image:
    from PIL import Image

    return Image.new("RGB", (side, side), (128, 128, 128))


def require_model_files(name: str, setting: str) -> bool:
    """Whether the model's files are here (a folder, or the Hugging Face cache); when they
    are not, that the hub can be reached to download them. In seconds, without importing
    PyTorch, so a machine offline is told at once."""
    local = Path(name).expanduser()
    if _looks_like_a_path(name) and not local.is_dir():
        raise ModelLoadError(
            f"Could not load the model '{name}': there is no such folder. "
            f"Set {setting} to a folder holding a local copy of it, or to a model name."
        )
    if local.is_dir() or _in_hub_cache(name):
        return True
    log.info("model %s is not cached; downloading it", name)
    _require_hub(name, setting)
    return False


def _in_hub_cache(name: str) -> bool:
    """Whether the Hugging Face cache holds a snapshot of the model (no network)."""
    from huggingface_hub import snapshot_download

    # sentence-transformers reads a short name (clip-ViT-B-32) as sentence-transformers/NAME.
    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo_id in candidates:
        try:
            snapshot_download(repo_id, local_files_only=True)
            return True
        except Exception:  # not there, whatever the hub client calls it
            log.debug("%s is not in the Hugging Face cache", repo_id)
    return False


def load_sentence_transformer(
    name: str, setting: str, device: str | None, files_cached: bool | None = None
) -> SentenceTransformer:
    """The model, from its folder or the cache, else downloaded; `files_cached` is what
    `require_model_files` said, when the caller asked it already."""
    if files_cached is None:
        files_cached = require_model_files(name, setting)
    from sentence_transformers import SentenceTransformer

    local = Path(name).expanduser()
    try:
        if local.is_dir():
            return SentenceTransformer(str(local), device=device)
        if files_cached:
            try:
                return SentenceTransformer(name, device=device, local_files_only=True)
            except OSError:
                log.info("model %s is not fully cached; downloading it", name)
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
