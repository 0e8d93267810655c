"""Fixtures for the Elasticsearch tests: the emulator, and settings that point findimage at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from findimage.encoders import ClipEncoder
from findimage.settings import Settings, load_settings
from findimage.stores.elasticsearch.versions import VersionedElasticsearch
from tests.support.es_emulator import ES_8, ES_9, ElasticsearchEmulator


@pytest.fixture(scope="session")
def tiny_encoder(tiny_clip: Path) -> ClipEncoder:
    """The tiny CLIP, loaded once, to back the emulator's deployed text model."""
    return ClipEncoder(str(tiny_clip), "FINDIMAGE_TEXT_MODEL", "cpu")


@pytest.fixture(params=[ES_8, ES_9], ids=["es8", "es9"])
def emulator(request: pytest.FixtureRequest) -> Iterator[ElasticsearchEmulator]:
    """The emulator as an 8.x cluster and as a 9.x one: every test that uses it runs on both."""
    with ElasticsearchEmulator(version=request.param) as running:
        yield running


@pytest.fixture
def es_env(
    findimage_env: dict[str, str], emulator: ElasticsearchEmulator, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """findimage_env plus FINDIMAGE_BACKEND=elasticsearch on the emulator."""
    values = {"FINDIMAGE_BACKEND": "elasticsearch", "FINDIMAGE_ES_URL": emulator.url}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return {**findimage_env, **values}


@pytest.fixture
def es_settings(es_env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture
def es(emulator: ElasticsearchEmulator) -> Iterator[Elasticsearch]:
    """findimage's client, which speaks the emulated version (the plain 9.x one cannot talk
    to 8.x: see test_es_emulator.py's test_the_plain_9x_client_is_refused_by_an_8x_cluster...)."""
    client = VersionedElasticsearch(emulator.url)
    client.ensure_version(emulator.url, (8, 0))
    yield client
    client.close()
