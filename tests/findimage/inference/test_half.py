"""FINDIMAGE_DEVICE=cuda: the image tower at fp16 where its vectors agree with the CPU's fp32,
fp32 on the GPU with one WARNING where they do not, and one sentence where there is no GPU.

No GPU here: the choice takes what it compares as arguments, and the encoder's fp16 path
runs on the CPU (PyTorch computes fp16 there too), so both are tested as they run on a GPU
but for the device."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from findimage.cli import main
from findimage.documents import ModelInfo
from findimage.encoders import ClipEncoder
from findimage.errors import ConfigError, ModelMismatchError
from findimage.factory import build_encoders, device_placement, torch_batch
from findimage.inference.export import MIN_AGREEMENT, probe_pictures
from findimage.inference.half import (
    NO_CUDA,
    Placement,
    keep_half_if_it_agrees,
    lowest_cosine,
    placement,
)
from findimage.settings import Settings, load_settings
from findimage.stores.base import check_models
from tests.support.pictures import draw_shape


def _no_gpu() -> bool:
    return False


def _a_gpu() -> bool:
    return True


def test_cuda_is_fp16_on_the_gpu_and_the_other_settings_are_as_before() -> None:
    assert placement("cuda", _a_gpu) == Placement("cuda", half=True)
    assert placement("cpu", _no_gpu) == Placement("cpu", half=False)
    assert placement("auto", _a_gpu) == Placement(None, half=False)


def test_cuda_without_a_gpu_is_one_sentence() -> None:
    with pytest.raises(ConfigError) as refused:
        placement("cuda", _no_gpu)
    assert str(refused.value) == NO_CUDA
    assert NO_CUDA.count(". ") == 0 and NO_CUDA.endswith(".")


def test_the_command_line_says_it_when_this_machine_has_no_gpu(
    findimage_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    assert not torch.cuda.is_available(), "this test is for a machine without a GPU"
    monkeypatch.setenv("FINDIMAGE_DEVICE", "cuda")
    monkeypatch.setenv("FINDIMAGE_ENGINE", "torch")
    monkeypatch.setenv("FINDIMAGE_PRECISION", "fp32")
    (tmp_path / "pictures").mkdir()
    draw_shape("red", "circle").save(tmp_path / "pictures" / "red.png")
    assert main(["index", str(tmp_path / "pictures")]) == 2
    assert capsys.readouterr().err == f"findimage: {NO_CUDA}\n"


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_the_gpu_gets_its_own_batch_size() -> None:
    assert torch_batch(_settings(device="cuda", batch_size=16)) == 256
    assert torch_batch(_settings(device="cuda", cuda_batch_size=512)) == 512
    assert torch_batch(_settings(device="cpu", batch_size=16, cuda_batch_size=512)) == 16
    assert device_placement(_settings(device="cpu")) == Placement("cpu", half=False)


@pytest.mark.parametrize(
    ("value", "accepted"), [(1, True), (0, False), (4096, True), (4097, False)]
)
def test_the_gpu_batch_size_bounds(value: int, accepted: bool) -> None:
    if accepted:
        assert load_settings(_env_file=None, cuda_batch_size=value).cuda_batch_size == value
    else:
        with pytest.raises(ConfigError, match="FINDIMAGE_CUDA_BATCH_SIZE"):
            load_settings(_env_file=None, cuda_batch_size=value)


def test_lowest_cosine_normalizes_first_and_takes_the_worst_row() -> None:
    reference = np.eye(3, dtype=np.float32)
    candidate = np.float16(2.0) * np.eye(3, dtype=np.float16)  # right, but not unit length
    candidate[2] = np.array([1, 1, 0], dtype=np.float16)
    assert lowest_cosine(reference, candidate) == pytest.approx(0.0)
    assert lowest_cosine(reference, 2 * reference) == pytest.approx(1.0)


@pytest.fixture
def fp32_probes(tiny_clip: Path) -> tuple[ClipEncoder, np.ndarray]:
    encoder = ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    pictures = probe_pictures(encoder.input_side)
    return encoder, encoder.encode_images(pictures)


def test_vectors_that_agree_keep_fp16(
    fp32_probes: tuple[ClipEncoder, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    _, reference = fp32_probes
    fell_back: list[bool] = []
    with caplog.at_level(logging.INFO, logger="findimage.inference.half"):
        precision = keep_half_if_it_agrees(
            reference, lambda: reference.astype(np.float16), lambda: fell_back.append(True), "m"
        )
    assert precision == "fp16" and not fell_back
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_deliberately_perturbed_encoder_falls_back_to_fp32_with_one_warning(
    fp32_probes: tuple[ClipEncoder, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    """A stand-in for a model whose fp16 vectors drift: the CPU's fp32 vectors, each moved
    by noise to a cosine just under the bar."""
    _, reference = fp32_probes
    rng = np.random.default_rng(3)
    noise = rng.normal(size=reference.shape).astype(np.float32)
    noise -= np.sum(noise * reference, axis=1, keepdims=True) * reference  # orthogonal
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    angle = np.arccos(MIN_AGREEMENT) * 1.05
    drifted = np.cos(angle) * reference + np.sin(angle) * noise
    assert lowest_cosine(reference, drifted) < MIN_AGREEMENT
    fell_back: list[bool] = []
    with caplog.at_level(logging.INFO, logger="findimage.inference.half"):
        precision = keep_half_if_it_agrees(
            reference, lambda: drifted, lambda: fell_back.append(True), "clip-ViT-B-32"
        )
    assert precision == "fp32" and fell_back == [True]
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.getMessage() == (
        "clip-ViT-B-32 at fp16 agrees with CPU fp32 only to a cosine of 0.998897, under "
        f"{MIN_AGREEMENT}; running it at fp32 on the GPU instead"
    )


def test_at_the_bar_exactly_fp16_is_kept_and_just_under_it_is_not() -> None:
    reference = np.array([[1.0, 0.0]], dtype=np.float32)
    at = np.array([[MIN_AGREEMENT, np.sqrt(1 - MIN_AGREEMENT**2)]], dtype=np.float64)
    under = np.array([[MIN_AGREEMENT - 1e-6, np.sqrt(1 - (MIN_AGREEMENT - 1e-6) ** 2)]])
    # At fp32 the cosine of `at` rounds to the bar or just over; never under it.
    assert lowest_cosine(reference, at) >= MIN_AGREEMENT
    assert keep_half_if_it_agrees(reference, lambda: at, lambda: None, "m") == "fp16"
    assert keep_half_if_it_agrees(reference, lambda: under, lambda: None, "m") == "fp32"


def test_the_encoders_fp16_path_runs_the_image_tower_at_fp16_and_agrees(
    fp32_probes: tuple[ClipEncoder, np.ndarray], tiny_clip: Path
) -> None:
    """The encoder's own path, device aside: loaded at fp32, checked, kept at fp16."""
    cpu, _ = fp32_probes
    half = ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu", half=True)
    pictures = [draw_shape(c, s) for c in ("red", "blue") for s in ("circle", "square")]
    vectors = half.encode_images(pictures)
    assert half.precision == "fp16"
    model = half._load()
    assert model[0].model.vision_model.embeddings.patch_embedding.weight.dtype == torch.float16
    assert model[0].model.text_model.embeddings.token_embedding.weight.dtype == torch.float32
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert lowest_cosine(cpu.encode_images(pictures), vectors) >= MIN_AGREEMENT
    # The text tower stays fp32: its vectors are the CPU's own.
    assert np.allclose(half.encode_texts(["a red circle"]), cpu.encode_texts(["a red circle"]))


def test_precision_read_first_loads_and_says_fp16(tiny_clip: Path) -> None:
    """What the indexer records for the index (`ModelInfo.precision`) is what runs, even when
    it asks before anything was encoded."""
    half = ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu", half=True)
    assert half.precision == "fp16"
    assert ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu").precision == "fp32"


def test_the_factory_builds_the_fp16_encoder_for_cuda(
    tiny_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", _a_gpu)  # the far edge: the driver
    settings = _settings(
        device="cuda",
        engine="torch",
        precision="fp32",
        image_model=str(tiny_clip),
        text_model=str(tiny_clip),
    )
    image, text = build_encoders(settings)
    assert isinstance(image, ClipEncoder) and image is text
    assert image._half and image._batch_size == 256


@pytest.mark.parametrize(
    ("recorded", "configured", "remedy"),
    [
        ("fp16", "fp32", "FINDIMAGE_ENGINE=torch and FINDIMAGE_DEVICE=cuda"),
        (
            "fp32",
            "fp16",
            "FINDIMAGE_DEVICE=cpu, FINDIMAGE_ENGINE=torch and FINDIMAGE_PRECISION=fp32",
        ),
    ],
)
def test_an_index_written_at_fp16_names_settings_that_exist(
    recorded: str, configured: str, remedy: str
) -> None:
    """GPU workers must not mix fp16 and fp32 vectors in one index (as any two engines); the
    sentence names settings that run the recorded engine, never FINDIMAGE_PRECISION=fp16."""
    with pytest.raises(ModelMismatchError) as refused:
        check_models(
            ModelInfo("clip", "clip", 512, engine="torch", precision=recorded),
            ModelInfo("clip", "clip", 512, engine="torch", precision=configured),
        )
    assert str(refused.value) == (
        f"The index was built by the torch {recorded} image engine, but the settings say "
        f"torch {configured}: set {remedy} back, or rebuild the index with the new engine."
    )
