"""Fixtures for the Elasticsearch tests: the emulator, and settings that point findimage at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from findimage.encoders import ClipEncoder
from findimage.settings import Settings, load_settings
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
