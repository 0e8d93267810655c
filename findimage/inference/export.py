"""Exporting a sentence-transformers model's image or text tower to ONNX, once, into a cache.

The tower is the whole sentence-transformers pipeline for one modality (for CLIP the vision
or text model and its projection; for the multilingual text model the transformer, pooling
and dense layer) followed by L2 normalization, so the exported graph returns exactly what
`SentenceTransformer.encode(..., normalize_embeddings=True)` returns. int8 is ONNX Runtime's
dynamic quantization of that graph.

Before a folder enters the cache, its vectors are compared with PyTorch fp32's on probe
pictures and texts, through preprocess.py rather than the model's processor; an export that
agrees less than MIN_AGREEMENT is kept as a record of that (without its model) and not
used, so a wrong export can never write an index.

A cached folder is checked before use against what its export recorded (each file's size,
time and SHA-256): a truncated, garbled or deleted file makes it be exported again, rather
than fail every command that loads it. An export that fails is attempted once per process:
later loads get the same sentence, which names the real cause (a full disk).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, ImageDraw

from findimage.errors import ModelLoadError
from findimage.inference.preprocess import ImageSpec, TextTokenizer

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

Tower = Literal["image", "text"]
Precision = Literal["fp32", "int8"]

# The bar: an engine whose vectors agree less with PyTorch fp32 is not allowed.
MIN_AGREEMENT = 0.999
MODEL_FILE = "model.onnx"
META_FILE = "export.json"
# Bump when the export itself changes, so folders made by an older one are made again.
# 2: export.json records each file's size, time and SHA-256.
EXPORT_FORMAT = 2
# Below this much free space where an export failed, the disk filling up is the cause to
# name, whatever the exporter raised (a half-written model reads back as a corrupt protobuf).
LOW_SPACE_BYTES = 64 * 1024 * 1024
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)

# Exports that failed in this process, by folder: attempted once, then the same sentence.
_failed: dict[Path, str] = {}
_failed_lock = threading.Lock()

PROBE_TEXTS = (
    "a red circle",
    "snow",
    "a photo of a dog on the beach",
    "Schneebedeckter Berg bei Sonnenaufgang",
    "un chat noir sur une chaise",
    "ein blaues Quadrat",
    "montaña nevada al atardecer",
    "東京の夜景",
    "UPPER CASE and digits 12345",
    "the team offsite, 2024",
    "the same words " * 40,  # longer than any model's limit: checks the truncation
)


@dataclass(frozen=True)
class ExportedTower:
    """A cached export: the folder holding model.onnx and what its inputs need."""

    folder: Path
    tower: Tower
    precision: Precision
    agreement: float

    @property
    def model_path(self) -> Path:
        return self.folder / MODEL_FILE

    @property
    def agrees(self) -> bool:
        return self.agreement >= MIN_AGREEMENT

    def refusal(self, model_name: str) -> str:
        """The sentence for a user whose settings ask for an export that does not agree."""
        return (
            f"The ONNX {self.precision} {self.tower} model made from '{model_name}' agrees with "
            f"PyTorch only to a cosine of {_round_down(self.agreement)}, under the {MIN_AGREEMENT} "
            "needed: set FINDIMAGE_ENGINE=torch."
        )


def export_folder(cache_root: Path, model_name: str, tower: Tower, precision: Precision) -> Path:
    """Where this model's tower at this precision is exported to, keyed by the model's files."""
    digest = hashlib.sha256(
        json.dumps([EXPORT_FORMAT, model_name, _model_fingerprint(model_name)]).encode()
    ).hexdigest()[:16]
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name.strip("/~."))[-60:]
    return cache_root / f"{slug}-{digest}" / f"onnx-{precision}-{tower}"


def _round_down(cosine: float) -> str:
    """Six decimals, never rounded up to the bar it missed."""
    return f"{math.floor(cosine * 1e6) / 1e6:.6f}"


def ensure_exported(
    cache_root: Path,
    model_name: str,
    tower: Tower,
    precision: Precision,
    load: Callable[[], SentenceTransformer],
    setting: str,
) -> ExportedTower:
    """The cached export, made now (minutes for a full-size model) if it is not there yet.

    Check `agrees` before using it: an export that does not agree is cached too (its
    agreement without its model), so it is not made again at every start.
    """
    folder = export_folder(cache_root, model_name, tower, precision)
    found = _read_meta(folder, tower, precision)
    if found is not None:
        return found
    with _failed_lock:
        earlier = _failed.get(folder)
    if earlier is not None:
        raise ModelLoadError(earlier)
    try:
        return _export_once(folder, model_name, tower, precision, load, setting)
    except ModelLoadError as error:
        with _failed_lock:
            _failed[folder] = str(error)
        raise


def _export_once(
    folder: Path,
    model_name: str,
    tower: Tower,
    precision: Precision,
    load: Callable[[], SentenceTransformer],
    setting: str,
) -> ExportedTower:
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelLoadError(
            f"Could not make the folder {folder.parent} for the exported model ({exc.strerror}): "
            "check FINDIMAGE_MODEL_CACHE."
        ) from exc
    with _exclusive(folder.parent / f".{folder.name}.lock"):
        # Another process may have finished the same export while this one waited.
        found = _read_meta(folder, tower, precision)
        if found is not None:
            return found
        log.info("exporting the %s tower of %s to ONNX %s", tower, model_name, precision)
        model = load()
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
        try:
            agreement = _export(model, staging, tower, precision)
            if agreement < MIN_AGREEMENT:
                for made in staging.iterdir():
                    made.unlink()
            meta = {
                "format": EXPORT_FORMAT,
                "model": model_name,
                "agreement": agreement,
                "files": _file_records(staging),
            }
            (staging / META_FILE).write_text(json.dumps(meta))
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(staging, folder)
        except ModelLoadError:
            raise
        except Exception as exc:
            # The user gets the sentence below; the details are for -v and the bot's log.
            log.info("exporting %s failed", model_name, exc_info=True)
            raise ModelLoadError(
                f"Could not export the {tower} model '{model_name}' to ONNX: "
                f"{_failure_cause(exc, folder.parent)}. "
                f"Set FINDIMAGE_ENGINE=torch to run it with PyTorch instead ({setting})."
            ) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s %s %s: cosine to PyTorch %.6f", model_name, tower, precision, agreement)
    return ExportedTower(folder, tower, precision, agreement)


def _failure_cause(exc: BaseException, where: Path) -> str:
    """What made an export fail, in words: a full disk when it is one, even when the
    exporter only saw its consequence (a half-written file read back)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    full = any(isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS for e in seen)
    with suppress(OSError):
        full = full or shutil.disk_usage(where).free < LOW_SPACE_BYTES
    if full:
        return (
            f"the disk holding {where} is full; free some space, or point "
            "FINDIMAGE_MODEL_CACHE at a disk with room, then run again"
        )
    return str(exc).strip().rstrip(".")


def _file_records(folder: Path) -> dict[str, list[Any]]:
    """Each file of an export with its size, time (ns) and SHA-256."""
    return {
        path.name: [stat.st_size, stat.st_mtime_ns, _sha256(path)]
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != META_FILE
        for stat in [path.stat()]
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _model_fingerprint(model_name: str) -> list[tuple[str, int, int]]:
    """Names, sizes and times of the model's files, so a changed model is exported again."""
    folder = _local_copy(model_name)
    if folder is None:
        return []
    return sorted(
        (path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith(".")
        for stat in [path.stat()]
    )


def _local_copy(model_name: str) -> Path | None:
    """The model's folder: the path itself, or its snapshot in the Hugging Face cache."""
    local = Path(model_name).expanduser()
    if local.is_dir():
        return local
    from huggingface_hub import snapshot_download

    candidates = [model_name]
    if "/" not in model_name:  # sentence-transformers' short names, e.g. clip-ViT-B-32
        candidates.append(f"sentence-transformers/{model_name}")
    for repo_id in candidates:
        try:
            return Path(snapshot_download(repo_id, local_files_only=True))
        except Exception:
            log.debug("%s is not in the Hugging Face cache", repo_id)
    return None


def _read_meta(folder: Path, tower: Tower, precision: Precision) -> ExportedTower | None:
    """The cached export, or None when there is none or it is damaged (then made again)."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("the exported model in %s is damaged (%s); exporting it again", folder, exc)
        return None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        return None
    problem = _damage(folder, meta)
    if problem is not None:
        log.warning("the exported model in %s is damaged (%s); exporting it again", folder, problem)
        return None
    return ExportedTower(folder, tower, precision, float(meta["agreement"]))


def _damage(folder: Path, meta: dict[str, Any]) -> str | None:
    """What differs from what the export recorded, or None. A file whose size and time are
    as recorded is taken as intact; one whose time moved is hashed."""
    files = meta.get("files")
    agreement = meta.get("agreement")
    if not isinstance(files, dict) or not isinstance(agreement, int | float):
        return f"{META_FILE} is incomplete"
    if agreement >= MIN_AGREEMENT and MODEL_FILE not in files:
        return f"{META_FILE} lists no {MODEL_FILE}"
    for name, record in files.items():
        path = folder / name
        try:
            stat = path.stat()
            size, mtime_ns, sha256 = record
            if stat.st_size != size:
                return f"{name} is {stat.st_size} bytes, not {size}"
            if stat.st_mtime_ns != mtime_ns and _sha256(path) != sha256:
                return f"{name} changed"
        except FileNotFoundError:
            return f"{name} is missing"
        except (OSError, TypeError, ValueError) as exc:
            return f"{name} cannot be checked ({exc})"
    return None


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Only errors from `logger_name` for a while (the exporter lists optional ops it skips)."""
    logger = logging.getLogger(logger_name)
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One exporting process at a time per export (a model's tower at a precision): the bot
    and the indexer may start together. Other towers and precisions of the same model are
    exported meanwhile: an indexer exporting the image tower does not hold up a bot that
    needs the text one."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _export(model: SentenceTransformer, folder: Path, tower: Tower, precision: Precision) -> float:
    """Write model.onnx and its input description into `folder`; return the agreement."""
    import torch

    fp32_path = folder / ("model.fp32.onnx" if precision == "int8" else MODEL_FILE)
    if tower == "image":
        spec = _image_spec(model)
        spec.save(folder / "image_spec.json")
        probes = probe_pictures(spec.input_side)
        example = {"pixel_values": torch.from_numpy(np.stack([spec.pixels(p) for p in probes[:2]]))}
        batch = torch.export.Dim("batch")
        dynamic = {"pixel_values": {0: batch}}
    else:
        _save_tokenizer(model, folder)
        tokenize = TextTokenizer.load(folder)
        example = {k: torch.from_numpy(v) for k, v in tokenize(PROBE_TEXTS[:2]).items()}
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
        dynamic = {name: {0: batch, 1: seq} for name in example}
    module = _normalized_tower(model, tower, list(example)).eval()
    # The exporter warns about its own internals (tracer notes, axis renames): nothing a user
    # of findimage can act on, and the agreement check below is what proves the export.
    with torch.no_grad(), warnings.catch_warnings(), _quiet("torch.onnx"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            (),
            kwargs=example,
            input_names=list(example),
            dynamic_shapes=dynamic,
            dynamo=True,
            verbose=False,
        )
    if program is None:  # only the legacy exporter (dynamo=False) returns nothing
        raise ModelLoadError(f"The ONNX export of {tower} tower returned no program.")
    program.save(str(fp32_path))
    if precision == "int8":
        _quantize(fp32_path, folder / MODEL_FILE)
        fp32_path.unlink()
        for leftover in folder.glob("*.data"):
            leftover.unlink()
    return _agreement(model, folder, tower)


def _normalized_tower(
    model: SentenceTransformer, tower: Tower, input_names: list[str]
) -> torch.nn.Module:
    """The sentence-transformers pipeline for one modality, as a plain torch module.

    torch.export wants named arguments, not **kwargs: the tower takes the input names the
    model's own preprocessing produces (pixel_values; input_ids, attention_mask and for
    some text models token_type_ids).
    """
    import torch

    class NormalizedTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def embed(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
            features: dict[str, Any] = {**inputs, "modality": tower}
            embedding = self.model.forward(features)["sentence_embedding"]
            return torch.nn.functional.normalize(embedding, p=2.0, dim=-1)

    class ImageTower(NormalizedTower):
        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.embed({"pixel_values": pixel_values})

    class TextTower(NormalizedTower):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.embed({"input_ids": input_ids, "attention_mask": attention_mask})

    class TypedTextTower(NormalizedTower):
        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            return self.embed(
                {
                    "input_ids": input_ids,
                    "attention_mask": attention_mask,
                    "token_type_ids": token_type_ids,
                }
            )

    if tower == "image":
        return ImageTower()
    if input_names == ["input_ids", "attention_mask"]:
        return TextTower()
    if input_names == ["input_ids", "attention_mask", "token_type_ids"]:
        return TypedTextTower()
    raise ValueError(f"the text model takes inputs {input_names}, which the export does not know")


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs every tensor it skips on the root logger; none of it is news here.
    root = logging.getLogger()
    quiet = _DropQuantizerChatter()
    root.addFilter(quiet)
    try:
        # Unsigned 8-bit weights: the variant the issue measured at 0.9998 cosine on ViT-B/32.
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QUInt8)
    finally:
        root.removeFilter(quiet)


class _DropQuantizerChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname or record.levelno >= logging.ERROR


def _image_spec(model: SentenceTransformer) -> ImageSpec:
    processor = getattr(model[0], "processor", None)
    images = getattr(processor, "image_processor", processor)
    if images is None or not hasattr(images, "image_mean"):
        raise ValueError("the model has no image processor, so it cannot encode pictures")
    size = images.size
    shortest = size.get("shortest_edge") or min(size.get("height", 0), size.get("width", 0))
    crop = images.crop_size if getattr(images, "do_center_crop", True) else size
    return ImageSpec(
        shortest_edge=int(shortest),
        crop_height=int(crop.get("height", shortest)),
        crop_width=int(crop.get("width", shortest)),
        resample=int(images.resample),
        rescale=float(images.rescale_factor),
        mean=_rgb(images.image_mean),
        std=_rgb(images.image_std),
    )


def _save_tokenizer(model: SentenceTransformer, folder: Path) -> None:
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(
        getattr(tokenizer, "tokenizer", None), "backend_tokenizer", None
    )
    if backend is None:
        raise ValueError("the model has no fast tokenizer to export")
    inner = getattr(tokenizer, "tokenizer", tokenizer)
    backend.save(str(folder / "tokenizer.json"))
    features = model.preprocess(["probe"])
    input_names = [name for name, value in features.items() if hasattr(value, "shape")]
    TextTokenizer.save_settings(
        folder,
        pad_id=int(inner.pad_token_id),
        pad_token=str(inner.pad_token),
        max_length=_max_length(model, inner),
        input_names=input_names,
    )


def _max_length(model: SentenceTransformer, tokenizer: object) -> int:
    """The longest input the text model takes: its declared limit, else its position table."""
    limits = [model.max_seq_length, getattr(tokenizer, "model_max_length", None)]
    config = getattr(model[0], "config", None)
    config = getattr(config, "text_config", config)
    limits.append(getattr(config, "max_position_embeddings", None))
    usable = [int(limit) for limit in limits if limit and limit < 1_000_000]
    if not usable:
        raise ValueError("the text model declares no maximum length")
    return min(usable)


def _agreement(model: SentenceTransformer, folder: Path, tower: Tower) -> float:
    """The lowest cosine between the export's vectors and PyTorch fp32's over the probes."""
    from findimage.inference.runtime import OnnxSession

    session = OnnxSession(folder / MODEL_FILE, threads=None)
    if tower == "image":
        spec = ImageSpec.load(folder / "image_spec.json")
        probes = probe_pictures(spec.input_side)
        exported = session.run({"pixel_values": np.stack([spec.pixels(p) for p in probes])})
        reference = model.encode(probes, normalize_embeddings=True, convert_to_numpy=True)
    else:
        tokenize = TextTokenizer.load(folder)
        exported = session.run(tokenize(list(PROBE_TEXTS)))
        # The export truncates to what the model takes; so must the reference, which some
        # models (those declaring no limit) would otherwise refuse.
        before, model.max_seq_length = model.max_seq_length, tokenize.max_length
        try:
            reference = model.encode(
                list(PROBE_TEXTS), normalize_embeddings=True, convert_to_numpy=True
            )
        finally:
            model.max_seq_length = before
    return float(np.min(np.sum(exported * np.asarray(reference, np.float32), axis=1)))


def probe_pictures(side: int) -> list[Image.Image]:
    """Pictures with edges, gradients, flat areas and noise, in both orientations."""
    rng = np.random.default_rng(7)
    pictures = []
    for index in range(6):
        width, height = (side * 3 // 2, side) if index % 2 else (side, side * 4 // 3)
        ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        base = np.broadcast_to(ramp, (height, width, 3)).copy()
        base[..., index % 3] = rng.uniform(0, 255)
        base += rng.normal(scale=8 * index, size=base.shape)
        picture = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(picture)
        box = (width // 5, height // 4, width * 3 // 5 + index * 3, height * 3 // 4)
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        (draw.ellipse if index % 3 else draw.rectangle)(box, fill=color)
        pictures.append(picture)
    return pictures


def _rgb(values: Sequence[float]) -> tuple[float, float, float]:
    red, green, blue = (float(x) for x in values)
    return red, green, blue
