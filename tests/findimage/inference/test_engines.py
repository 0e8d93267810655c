"""Each exported engine gives the vectors PyTorch fp32 gives, for pictures and for text."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_images

from findimage.encoders import ClipEncoder, OnnxEncoder
from findimage.errors import ModelLoadError
from findimage.images import decode_image
from findimage.inference import export
from tests.support.pictures import draw_shape, gradient
from tests.support.tiny_multilingual import save_tiny_multilingual

AGREEMENT = 0.999
TEXTS = [
    "a red circle",
    "un cercle rouge sur fond gris",
    "ein blaues Quadrat",
    "SNOW on the Mountain",
    "the photo of a cat and a dog " * 20,
]


def real_pictures() -> list[Image.Image]:
    """The two photographs scikit-learn ships, whole, cropped, turned and shrunk through JPEG."""
    pictures = []
    for array in load_sample_images().images:
        photo = Image.fromarray(array)
        pictures += [
            photo,
            photo.crop((100, 50, 400, 350)),
            photo.transpose(Image.Transpose.ROTATE_90),
            photo.resize((64, 48)),
        ]
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", quality=60)
        pictures.append(decode_image(buffer.getvalue(), 10**8, 224).image)
    return pictures


def drawn_pictures() -> list[Image.Image]:
    return [draw_shape("red", "circle"), draw_shape("blue", "triangle", (120, 60)), gradient()]


@pytest.fixture(scope="module")
def torch_encoder(tiny_clip: Path) -> ClipEncoder:
    return ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def multilingual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_multilingual(tmp_path_factory.mktemp("multilingual"))


def onnx(model: Path, tower: str, precision: str, cache: Path) -> OnnxEncoder:
    return OnnxEncoder(str(model), "FINDIMAGE_IMAGE_MODEL", tower, precision, cache, threads=1)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.min(np.sum(a * b, axis=1)))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_image_vectors_agree_with_pytorch_on_real_and_drawn_pictures(
    tiny_clip: Path, model_cache: Path, torch_encoder: ClipEncoder, precision: str
) -> None:
    pictures = real_pictures() + drawn_pictures()
    engine = onnx(tiny_clip, "image", precision, model_cache)
    vectors = engine.encode_images(pictures)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert agreement(vectors, torch_encoder.encode_images(pictures)) >= AGREEMENT


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_clip_text_vectors_agree_with_pytorch(
    tiny_clip: Path, model_cache: Path, torch_encoder: ClipEncoder, precision: str
) -> None:
    engine = onnx(tiny_clip, "text", precision, model_cache)
    short = [text for text in TEXTS if len(text) < 100]  # the tiny CLIP refuses long ones
    # Whatever runs (int8 falls back to fp32 where it does not agree) agrees.
    assert agreement(engine.encode_texts(short), torch_encoder.encode_texts(short)) >= AGREEMENT
    # Longer than the model takes: cut to its limit rather than refused.
    assert engine.encode_texts(TEXTS).shape == (len(TEXTS), engine.dims)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_multilingual_text_vectors_agree_with_pytorch(
    multilingual: Path, model_cache: Path, precision: str
) -> None:
    """The transformer + mean pooling + dense shape of clip-ViT-B-32-multilingual-v1."""
    reference = ClipEncoder(str(multilingual), "FINDIMAGE_TEXT_MODEL", device="cpu")
    engine = onnx(multilingual, "text", precision, model_cache)
    assert agreement(engine.encode_texts(TEXTS), reference.encode_texts(TEXTS)) >= AGREEMENT


def test_prepared_pictures_encode_as_the_pictures_do(tiny_clip: Path, model_cache: Path) -> None:
    engine = onnx(tiny_clip, "image", "fp32", model_cache)
    pictures = drawn_pictures()
    prepared = [engine.prepare_image(picture) for picture in pictures]
    np.testing.assert_allclose(
        engine.encode_prepared(prepared), engine.encode_images(pictures), atol=1e-6
    )


def test_the_export_is_made_once_and_reused(tiny_clip: Path, tmp_path: Path) -> None:
    loads = []

    def load():  # the far edge: the sentence-transformers model that is exported
        from sentence_transformers import SentenceTransformer

        loads.append(1)
        return SentenceTransformer(str(tiny_clip), device="cpu")

    first = export.ensure_exported(tmp_path, str(tiny_clip), "image", "fp32", load, "X")
    again = export.ensure_exported(tmp_path, str(tiny_clip), "image", "fp32", load, "X")
    assert loads == [1]
    assert again == first
    assert first.agreement >= AGREEMENT
    assert first.model_path.is_file()
    # Another precision is another export, beside the first.
    other = export.ensure_exported(tmp_path, str(tiny_clip), "image", "int8", load, "X")
    assert other.folder.parent == first.folder.parent != other.folder
    assert loads == [1, 1]


def test_a_changed_model_is_exported_again(tmp_path: Path) -> None:
    from tests.support.tiny_clip import save_tiny_clip

    model = save_tiny_clip(tmp_path / "model")
    before = export.export_folder(tmp_path / "cache", str(model), "image", "fp32")
    save_tiny_clip(model, seed=1)  # new weights in the same folder
    assert export.export_folder(tmp_path / "cache", str(model), "image", "fp32") != before


def test_an_int8_export_that_disagrees_falls_back_to_fp32(
    tiny_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between what int8 reaches (about 0.9999 here) and what fp32 reaches (1e-7 from 1).
    monkeypatch.setattr(export, "MIN_AGREEMENT", 0.99999)
    engine = onnx(tiny_clip, "image", "int8", tmp_path)
    assert engine.precision == "fp32"
    reference = ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    pictures = drawn_pictures()
    assert agreement(engine.encode_images(pictures), reference.encode_images(pictures)) > 0.99999
    # The int8 verdict is kept, without its model, so the next start does not export again.
    int8 = export.export_folder(tmp_path, str(tiny_clip), "image", "int8")
    assert (int8 / "export.json").is_file() and not (int8 / "model.onnx").exists()


def test_an_export_that_disagrees_is_refused_with_a_plain_sentence(
    tiny_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A deliberately wrong export: the graph written returns each vector turned around, so
    # it agrees with PyTorch to a cosine of -1 on every machine, however exact the exporter.
    real_tower = export._normalized_tower

    def turned_around(model: Any, tower: export.Tower, names: list[str]) -> Any:
        module = real_tower(model, tower, names)
        embed = module.embed
        module.embed = lambda inputs: -embed(inputs)
        return module

    monkeypatch.setattr(export, "_normalized_tower", turned_around)
    engine = onnx(tiny_clip, "image", "fp32", tmp_path)
    with pytest.raises(ModelLoadError) as caught:
        engine.encode_images(drawn_pictures())
    message = str(caught.value)
    # About -1 (float rounding may land either side of it), under the bar, said plainly.
    said = (
        r"agrees with PyTorch only to a cosine of -(1\.0000|0\.9999)\d\d, under the 0\.999 needed"
    )
    assert re.search(said, message), message
    assert "FINDIMAGE_ENGINE=torch" in message
    assert "\n" not in message
    assert not list(tmp_path.rglob("model.onnx"))


def test_warm_loads_and_runs_each_tower(tiny_clip: Path, model_cache: Path) -> None:
    image = onnx(tiny_clip, "image", "int8", model_cache)
    text = onnx(tiny_clip, "text", "int8", model_cache)
    both = ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    assert image._session is None and text._session is None and both._model is None
    image.warm()
    text.warm()
    both.warm()
    assert image._session is not None and text._session is not None and both._model is not None
