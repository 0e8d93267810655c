"""What the model's own processor does to a picture or a text, without torch or transformers.

An exported tower takes tensors, not pictures: these turn a PIL image into CLIP's
`pixel_values` and a text into token ids, as the model's processor does (resize the short
side, center-crop, rescale, normalize; tokenize, pad to the longest, truncate). They are
cheap enough to run on the decode workers, and export.py checks their output against the
processor's own before an exported model is used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tokenizers import Tokenizer


@dataclass(frozen=True)
class ImageSpec:
    """CLIP's image preprocessing, read from the model's image processor."""

    shortest_edge: int
    crop_height: int
    crop_width: int
    resample: int
    rescale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def input_side(self) -> int:
        """The fewest pixels the short side of a decoded picture needs for this model."""
        return max(self.shortest_edge, self.crop_height, self.crop_width)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """One RGB picture as float32 CHW `pixel_values`."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        short, long = (width, height) if width <= height else (height, width)
        # transformers' get_resize_output_image_size: the long side is truncated, not rounded.
        new_long = int(self.shortest_edge * long / short)
        size = (self.shortest_edge, new_long) if width <= height else (new_long, self.shortest_edge)
        if size != image.size:
            image = image.resize(size, resample=Image.Resampling(self.resample))
        top = (image.height - self.crop_height) // 2
        left = (image.width - self.crop_width) // 2
        image = image.crop((left, top, left + self.crop_width, top + self.crop_height))
        array: np.ndarray = np.asarray(image, dtype=np.float32) * np.float32(self.rescale)
        array = (array - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(array.transpose(2, 0, 1))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> ImageSpec:
        raw = json.loads(path.read_text())
        return cls(**{**raw, "mean": tuple(raw["mean"]), "std": tuple(raw["std"])})


class TextTokenizer:
    """The model's fast tokenizer from its tokenizer.json: pad to the longest, truncate."""

    def __init__(self, tokenizer: Tokenizer, input_names: Sequence[str], max_length: int):
        self._tokenizer = tokenizer
        self._input_names = tuple(input_names)
        self.max_length = max_length

    @classmethod
    def load(cls, folder: Path) -> TextTokenizer:
        settings = json.loads((folder / "text_inputs.json").read_text())
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_padding(pad_id=settings["pad_id"], pad_token=settings["pad_token"])
        tokenizer.enable_truncation(max_length=settings["max_length"])
        return cls(tokenizer, settings["input_names"], settings["max_length"])

    @staticmethod
    def save_settings(
        folder: Path, pad_id: int, pad_token: str, max_length: int, input_names: Sequence[str]
    ) -> None:
        settings = {
            "pad_id": pad_id,
            "pad_token": pad_token,
            "max_length": max_length,
            "input_names": list(input_names),
        }
        (folder / "text_inputs.json").write_text(json.dumps(settings))

    def fits(self, text: str) -> bool:
        """Whether `text` is read whole: truncation leaves what it cut as overflow."""
        return not self._tokenizer.encode(text).overflowing

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        encodings = self._tokenizer.encode_batch(list(texts))
        columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        return {name: np.asarray(columns[name], dtype=np.int64) for name in self._input_names}
