"""Fixtures for the Slack tests: an indexed library, the local Slack Web API and served bots.

What they are built from is in tests/support/slack_bot.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import WEB_API_SCOPES
from tests.support.slack_api import FakeSlack, SlackApiServer
from tests.support.slack_bot import Bot, BotFactory, IndexedLibrary, bot_servers, indexed_library


@pytest.fixture(scope="session")
def slack_library(
    trained_clip: Path, model_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IndexedLibrary]:
    """A picture library indexed by the real Indexer into a real EmbeddedStore, once. Its
    settings use the run's shared model cache: with the per-worker default, every worker
    exported the trained CLIP again (about 15 s of each worker's first Slack test)."""
    base = tmp_path_factory.mktemp("slack-library")
    with indexed_library(trained_clip, model_cache, base) as library:
        yield library


@pytest.fixture(scope="session")
def slack_api() -> Iterator[FakeSlack]:
    with SlackApiServer() as fake:
        yield fake
    # Every Web API method the bot called must be in the table manifest.yml is checked against.
    assert fake.all_methods <= WEB_API_SCOPES.keys(), fake.all_methods - WEB_API_SCOPES.keys()


@pytest.fixture
def fake_slack(slack_api: FakeSlack) -> FakeSlack:
    slack_api.reset()
    return slack_api


@pytest.fixture(scope="session")
def start_bot(
    slack_library: IndexedLibrary, slack_api: FakeSlack, trained_clip: Path
) -> Iterator[BotFactory]:
    with bot_servers(slack_library, slack_api, trained_clip) as start:
        yield start


@pytest.fixture
def bot(start_bot: BotFactory, fake_slack: FakeSlack) -> Iterator[Bot]:
    started = start_bot()
    yield started
    # The bot is shared: an answer still under way must not reach the next test's Slack.
    started.finish_work()
