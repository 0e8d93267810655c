from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.encoders import ClipEncoder
from bot.errors import ModelLoadError
from tests.support.pictures import draw_shape
from tests.support.tiny_clip import EMBED_DIMS


@pytest.fixture(scope="module")
def encoder(tiny_clip: Path) -> ClipEncoder:
    return ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu", batch_size=4)


def test_model_is_not_loaded_until_first_use(tiny_clip: Path) -> None:
    fresh = ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    assert fresh._model is None
    fresh.encode_texts(["a red circle"])
    assert fresh._model is not None


def test_dims_come_from_the_model(encoder: ClipEncoder) -> None:
    assert encoder.dims == EMBED_DIMS


def test_text_vectors_are_normalized_float32(encoder: ClipEncoder) -> None:
    vectors = encoder.encode_texts(["a red circle", "un cercle rouge", "ein blaues Quadrat"])
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, EMBED_DIMS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_image_vectors_are_normalized_and_in_the_text_space(encoder: ClipEncoder) -> None:
    pictures = [
        draw_shape(color, "circle") for color in ("red", "blue", "green", "yellow", "black")
    ]
    vectors = encoder.encode_images(pictures)
    assert vectors.dtype == np.float32
    assert vectors.shape == (5, EMBED_DIMS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_same_input_gives_the_same_vector(encoder: ClipEncoder) -> None:
    picture = draw_shape("purple", "triangle")
    first = encoder.encode_images([picture])
    again = encoder.encode_images([picture.copy(), draw_shape("red", "square")])[:1]
    np.testing.assert_allclose(first, again, atol=1e-5)
    np.testing.assert_array_equal(encoder.encode_texts(["snow"]), encoder.encode_texts(["snow"]))


def test_different_pictures_give_different_vectors(encoder: ClipEncoder) -> None:
    vectors = encoder.encode_images([draw_shape("red", "circle"), draw_shape("blue", "square")])
    assert float(vectors[0] @ vectors[1]) < 0.999


def test_missing_local_folder_names_model_and_setting(tmp_path: Path) -> None:
    broken = tmp_path / "half-downloaded"
    broken.mkdir()
    encoder = ClipEncoder(str(broken), "FINDIMAGE_TEXT_MODEL", device="cpu")
    with pytest.raises(ModelLoadError) as caught:
        encoder.encode_texts(["x"])
    message = str(caught.value)
    assert str(broken) in message
    assert "FINDIMAGE_TEXT_MODEL" in message
    assert "\n" not in message


def test_uncached_hub_model_offline_fails_fast_with_plain_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    encoder = ClipEncoder("clip-ViT-B-32", "FINDIMAGE_IMAGE_MODEL", device="cpu")
    with pytest.raises(ModelLoadError, match=r"'clip-ViT-B-32'.*FINDIMAGE_IMAGE_MODEL"):
        encoder.load()


def test_unreachable_hub_is_reported_without_retrying_for_minutes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Port 9 on loopback has no listener: the connection is refused at once, as offline.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    encoder = ClipEncoder("clip-ViT-B-32", "FINDIMAGE_IMAGE_MODEL", device="cpu")
    with pytest.raises(ModelLoadError, match=r"127\.0\.0\.1 cannot be reached"):
        encoder.load()
