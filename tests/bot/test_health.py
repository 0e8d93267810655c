"""`GET /healthz` on `findimage serve`'s port: 503 until the models are loaded, 200 after, and
503 for good when they fail to load. It is what the readiness probe of
deploy/kubernetes/bot.yaml polls (a probe passes on 200-399:
https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bot.app import build_wsgi_app, make_http_server, warm_up
from bot.http import HEALTH_PATH, Readiness
from findimage.search import SearchService
from findimage.stores.embedded import EmbeddedStore
from tests.support.slack_bot import bot_settings
from tests.support.waiting import CEILING_SECONDS, wait_until


class GatedModel:
    """An encoder whose `warm` (what `load_models` calls) waits for the test, then loads or
    fails: the far edge, where the real one reads model files."""

    model_name = "gated"

    def __init__(self, fails: bool = False):
        self.gate = threading.Event()
        self.fails = fails

    def warm(self, tower: str | None = None) -> None:
        assert self.gate.wait(CEILING_SECONDS)
        if self.fails:
            raise OSError("model file is truncated")


def _serve(tmp_path: Path, model: GatedModel) -> Iterator[str]:
    settings = bot_settings(tmp_path / "model", tmp_path / "library", tmp_path / "data")
    store = EmbeddedStore(tmp_path / "data")
    service = SearchService(store, model, model, settings.max_file_bytes)  # type: ignore[arg-type]
    readiness = Readiness()
    server = make_http_server(
        build_wsgi_app(settings, service, None, readiness=readiness), "127.0.0.1", 0, settings
    )
    server.start()
    warming = warm_up(service, readiness)
    try:
        yield f"http://127.0.0.1:{server.port}{HEALTH_PATH}"
    finally:
        model.gate.set()
        warming.join(CEILING_SECONDS)
        server.stop()
        store.close()


@pytest.fixture
def loading(tmp_path: Path) -> Iterator[tuple[str, GatedModel]]:
    model = GatedModel()
    for url in _serve(tmp_path, model):
        yield url, model


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[tuple[str, GatedModel]]:
    model = GatedModel(fails=True)
    for url in _serve(tmp_path, model):
        yield url, model


def test_not_ready_while_the_models_load_then_ready(loading: tuple[str, GatedModel]) -> None:
    url, model = loading
    answer = requests.get(url, timeout=30)
    assert (answer.status_code, answer.text) == (503, "loading the models\n")
    assert answer.headers["Cache-Control"] == "no-store"

    model.gate.set()
    wait_until(lambda: requests.get(url, timeout=30).status_code == 200, CEILING_SECONDS, "ready")
    assert requests.get(url, timeout=30).text == "ready\n"
    assert requests.head(url, timeout=30).status_code == 200


def test_models_that_fail_to_load_keep_it_unready_without_saying_why(
    failing: tuple[str, GatedModel],
) -> None:
    url, model = failing
    model.gate.set()
    wait_until(
        lambda: "failed" in requests.get(url, timeout=30).text, CEILING_SECONDS, "the failure"
    )
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 503
    assert answer.text == "the models failed to load (see the log)\n"
    assert "truncated" not in answer.text  # the reason is for the operator's log only


def test_only_get_and_head(loading: tuple[str, GatedModel]) -> None:
    url, _ = loading
    assert requests.post(url, timeout=30).status_code == 405


def test_other_paths_are_still_not_found(loading: tuple[str, GatedModel]) -> None:
    url, _ = loading
    assert requests.get(url.replace(HEALTH_PATH, "/health"), timeout=30).status_code == 404
