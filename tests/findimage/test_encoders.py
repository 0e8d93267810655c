from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from findimage.encoders import ClipEncoder
from findimage.errors import ModelLoadError
from tests.support.pictures import draw_shape
from tests.support.tiny_clip import EMBED_DIMS
from tests.support.trained_clip import CLASSES, caption, shape_picture


@pytest.fixture(scope="module")
def encoder(tiny_clip: Path) -> ClipEncoder:
    return ClipEncoder(str(tiny_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu", batch_size=4)


def test_model_is_not_loaded_until_first_use_and_then_only_once(
    tiny_clip: Path, tmp_path: Path
) -> None:
    # The folder does not exist yet when the encoder is made: only a lazy load can succeed.
    folder = tmp_path / "arrives-later"
    fresh = ClipEncoder(str(folder), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    shutil.copytree(tiny_clip, folder)
    first = fresh.encode_texts(["a red circle"])
    # Gone from disk after the first use: a second load would fail, the loaded model does not.
    shutil.rmtree(folder)
    np.testing.assert_array_equal(fresh.encode_texts(["a red circle"]), first)


def test_dims_come_from_the_model(encoder: ClipEncoder) -> None:
    assert encoder.dims == EMBED_DIMS


def test_text_vectors_are_normalized_float32(encoder: ClipEncoder) -> None:
    vectors = encoder.encode_texts(["a red circle", "un cercle rouge", "ein blaues Quadrat"])
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, EMBED_DIMS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_image_vectors_are_normalized_float32(encoder: ClipEncoder) -> None:
    pictures = [
        draw_shape(color, "circle") for color in ("red", "blue", "green", "yellow", "black")
    ]
    vectors = encoder.encode_images(pictures)
    assert vectors.dtype == np.float32
    assert vectors.shape == (5, EMBED_DIMS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_caption_lands_nearest_its_own_picture_in_the_image_space(trained_clip: Path) -> None:
    # Two encoders over one trained model, as the bot loads them: text and images separately.
    texts = ClipEncoder(str(trained_clip), "FINDIMAGE_TEXT_MODEL", device="cpu")
    images = ClipEncoder(str(trained_clip), "FINDIMAGE_IMAGE_MODEL", device="cpu")
    rng = random.Random(11)
    pictures = images.encode_images(
        [shape_picture(rng, color, shape, held_out=True) for color, shape in CLASSES]
    )
    captions = texts.encode_texts([caption(color, shape) for color, shape in CLASSES])
    assert captions.shape == pictures.shape
    nearest = (captions @ pictures.T).argmax(axis=1)
    assert nearest.tolist() == list(range(len(CLASSES)))


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


# The hub client tries a file 1 + 5 times, waiting 1+2+4+8+8 s in between
# (max_retries=5 in huggingface_hub.utils._http.http_backoff), and a model needs several files.
HUB_TRIES_PER_FILE = 6
REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_from_hub(endpoint: str, tmp_path: Path) -> dict[str, Any]:
    """Load an uncached hub model in a fresh process whose hub client uses `endpoint`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "FINDIMAGE_"))}
    env |= {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "empty-cache")}
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.model_loading", "clip-ViT-B-32"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_unreachable_hub_is_reported_without_retrying(tmp_path: Path) -> None:
    # Port 9 on loopback has no listener: the connection is refused at once, as offline.
    # Left to itself the hub client would go through its retry schedule for each file
    # (73 s here), so fewer attempts than one file's schedule means nothing was retried.
    loaded = _load_from_hub("http://127.0.0.1:9", tmp_path)
    assert re.search(r"127\.0\.0\.1 cannot be reached \(Connection refused\)", loaded["error"])
    assert "FINDIMAGE_IMAGE_MODEL" in loaded["error"]
    assert 1 <= len(loaded["connections"]) < HUB_TRIES_PER_FILE, loaded["connections"]
    assert {tuple(address) for address in loaded["connections"]} == {("127.0.0.1", 9)}


@pytest.fixture
def blackholed_port() -> Iterator[int]:
    """A loopback port where a connection attempt hangs, as at a firewall that drops packets.

    A listener with a backlog of 0 that never accepts holds one finished connection in its
    queue; Linux drops the SYN of any further one while that queue is full (tcp_conn_request
    in net/ipv4/tcp_input.c), so the client waits for its own timeout.
    """
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            yield port


@pytest.mark.slow
def test_a_hub_that_never_answers_is_reported_in_seconds_not_minutes(
    tmp_path: Path, blackholed_port: int
) -> None:
    # With every connection hanging, each of the hub client's tries waits out its own
    # timeout (10 s) before the waits between tries, and a bare connect gives up only after
    # about 2 minutes (tcp_syn_retries=6): minutes in all. Our probe gives up after one
    # attempt and its own 5 s timeout, so a minute is a wide margin.
    loaded = _load_from_hub(f"http://127.0.0.1:{blackholed_port}", tmp_path)
    assert re.search(r"127\.0\.0\.1 cannot be reached \(timed out\)", loaded["error"])
    assert 1 <= len(loaded["connections"]) < HUB_TRIES_PER_FILE, loaded["connections"]
    assert loaded["seconds"] < 60
