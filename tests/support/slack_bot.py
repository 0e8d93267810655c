"""A bot served in-process over HTTP on a real indexed library, for the Slack tests.

The fixtures that hand these out are in tests/handlers/conftest.py.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from slack_sdk import WebClient

from bot.app import (
    EVENTS_PATH,
    build_workers,
    build_wsgi_app,
    create_app,
    make_http_server,
    web_client_retry_handlers,
)
from bot.http import SlackHttpServer
from bot.workers import AnswerWorkers
from findimage.encoders import ImageEncoder, TextEncoder
from findimage.factory import build_encoders, build_indexer
from findimage.search import SearchService
from findimage.settings import Settings
from findimage.stores.base import VectorStore
from findimage.stores.embedded import EmbeddedStore
from tests.support.pictures import make_library
from tests.support.slack_api import BOT_TOKEN, FakeSlack
from tests.support.slack_requests import SIGNING_SECRET, SlackSender
from tests.support.waiting import CEILING_SECONDS

LIBRARY_SIZE = 24
PREVIEW_SECRET = "preview-secret-for-tests"


def bot_settings(
    trained_clip: Path, library_root: Path, data_dir: Path, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "library": library_root,
        "data_dir": data_dir,
        "image_model": str(trained_clip),
        "text_model": str(trained_clip),
        "device": "cpu",
        "batch_size": 8,
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "preview_secret": PREVIEW_SECRET,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@dataclass
class IndexedLibrary:
    """A folder of pictures, indexed by the real Indexer into a real EmbeddedStore."""

    root: Path
    data_dir: Path
    settings: Settings
    store: EmbeddedStore
    image_encoder: ImageEncoder
    text_encoder: TextEncoder

    def service(
        self, text_encoder: TextEncoder | None = None, store: VectorStore | None = None
    ) -> SearchService:
        return SearchService(
            store=store or self.store,
            image_encoder=self.image_encoder,
            text_encoder=text_encoder or self.text_encoder,
            max_file_bytes=self.settings.max_file_bytes,
        )


@contextmanager
def indexed_library(trained_clip: Path, model_cache: Path, base: Path) -> Iterator[IndexedLibrary]:
    root, data_dir = base / "library", base / "data"
    make_library(root, LIBRARY_SIZE)
    settings = bot_settings(trained_clip, root, data_dir, model_cache=model_cache)
    store = EmbeddedStore(data_dir)
    report = build_indexer(settings, store).run(root, progress=False)
    assert report.indexed == LIBRARY_SIZE
    image_encoder, text_encoder = build_encoders(settings)
    try:
        yield IndexedLibrary(root, data_dir, settings, store, image_encoder, text_encoder)
    finally:
        store.close()


@dataclass
class Bot:
    url: str
    settings: Settings
    service: SearchService
    sender: SlackSender
    workers: AnswerWorkers

    def finish_work(self) -> None:
        """Wait until every answer the bot accepted so far has been sent."""
        assert self.workers.wait_idle(timeout=CEILING_SECONDS), "the bot's answers did not finish"


BotFactory = Callable[..., Bot]


@contextmanager
def bot_servers(
    library: IndexedLibrary, slack_api: FakeSlack, trained_clip: Path
) -> Iterator[BotFactory]:
    """Serve Bolt apps in HTTP mode on 127.0.0.1, as `findimage serve` does.

    `previews="url"` signs preview links to the bot's own /images/<id>; "upload" uploads
    them into the conversation. Bots with the same arguments are shared.
    """
    servers: list[SlackHttpServer] = []
    cache: dict[tuple, Bot] = {}

    def start(previews: str = "url", service: SearchService | None = None, **overrides: Any) -> Bot:
        key = (previews, id(service), tuple(sorted(overrides.items())))
        # Under mutmut (it sets MUTANT_UNDER_TEST) each test builds its own bot: mutmut links
        # a test to the functions it calls, so a bot built once for the session would tie
        # create_app and the middlewares to the first test alone, and their mutants would
        # never meet the tests that kill them (the redelivery test, for one).
        if key in cache and "MUTANT_UNDER_TEST" not in os.environ:
            return cache[key]
        routes: dict[str, Callable] = {"app": _not_ready}
        overrides.setdefault("model_cache", library.settings.model_cache)
        settings = bot_settings(trained_clip, library.root, library.data_dir, **overrides)
        server = make_http_server(
            lambda environ, start_response: routes["app"](environ, start_response),
            "127.0.0.1",
            0,
            settings,
        )
        url = f"http://127.0.0.1:{server.port}"
        if previews == "url":
            overrides.setdefault("public_base_url", url)
        settings = bot_settings(trained_clip, library.root, library.data_dir, **overrides)
        service = service or library.service()
        client = WebClient(
            token=BOT_TOKEN,
            base_url=slack_api.api_url,
            retry_handlers=web_client_retry_handlers(),
        )
        workers = build_workers(settings)
        app = create_app(settings, service, client=client, workers=workers)
        routes["app"] = build_wsgi_app(settings, service, app)
        server.start()
        servers.append(server)
        bot = Bot(url, settings, service, SlackSender(url + EVENTS_PATH), workers)
        cache[key] = bot
        return bot

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def _not_ready(environ: dict[str, Any], start_response: Callable) -> Sequence[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting\n"]


class GatedTextEncoder:
    """The real text encoder, held until the test opens the gate: a search as slow as we like."""

    def __init__(self, inner: TextEncoder):
        self.model_name = inner.model_name
        self._inner = inner
        self.gate = threading.Event()
        self.entered = threading.Event()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.entered.set()
        if not self.gate.wait(timeout=60):
            raise TimeoutError("the test never opened the gate")
        return self._inner.encode_texts(texts)
