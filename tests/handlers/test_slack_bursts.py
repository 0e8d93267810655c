"""Bursts are answered, not refused: `findimage serve` right after its start, with a Web API
that takes 250 ms a call, as a busy Slack does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.workers import BUSY
from tests.support.serve_process import ServeProcess, launch_serve
from tests.support.slack_answers import ACK_DEADLINE_SECONDS
from tests.support.slack_api import BOT_TOKEN, FakeSlack
from tests.support.slack_bot import IndexedLibrary
from tests.support.slack_requests import SIGNING_SECRET

WEB_API_SECONDS = 0.25


@pytest.fixture
def fresh_serve(
    slack_library: IndexedLibrary, fake_slack: FakeSlack, trained_clip: Path, tmp_path: Path
) -> Iterator[ServeProcess]:
    """A `findimage serve` that has just said it listens (models still loading)."""
    fake_slack.delay = WEB_API_SECONDS
    process = launch_serve(
        {
            "FINDIMAGE_STORE": str(slack_library.root),
            "FINDIMAGE_DATA_DIR": str(slack_library.data_dir),
            "FINDIMAGE_IMAGE_MODEL": str(trained_clip),
            "FINDIMAGE_TEXT_MODEL": str(trained_clip),
            "FINDIMAGE_MODEL_CACHE": str(slack_library.settings.model_cache),
            "FINDIMAGE_DEVICE": "cpu",
            "FINDIMAGE_PORT": "0",
            "FINDIMAGE_SLACK_API_URL": fake_slack.api_url,
            "FINDIMAGE_HTTP_BACKLOG": "512",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        },
        tmp_path,
    )
    try:
        yield process
    finally:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait(timeout=30)


def burst(count: int, send: Callable[[int], object]) -> list[tuple[int, float]]:
    """`count` commands at once: each ack's status and how long it took."""
    barrier = threading.Barrier(count)

    def one(n: int) -> tuple[int, float]:
        barrier.wait(timeout=60)
        started = time.monotonic()
        response = send(n)
        return response.status_code, time.monotonic() - started  # type: ignore[attr-defined]

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def answers(fake: FakeSlack, prefix: str, count: int, timeout: float) -> list[dict]:
    found = fake.wait_for(
        "response", count, where=lambda r: f"/{prefix}" in r.path, timeout=timeout
    )
    return [recorded.params for recorded in found]


@pytest.mark.slow
def test_fifty_commands_right_after_start_are_all_answered_with_results(
    fresh_serve: ServeProcess, fake_slack: FakeSlack
) -> None:
    sender = fresh_serve.sender

    acks = burst(
        50, lambda n: sender.command(f"k:3 red circle {n}", fake_slack.response_url(f"b{n}"))
    )

    assert [status for status, _ in acks] == [200] * 50
    posted = answers(fake_slack, "b", 50, timeout=300)
    assert len(posted) == 50
    assert not [p for p in posted if BUSY in p["text"]], "none refused"
    assert all(".png" in p["text"] for p in posted), "every answer has results"


@pytest.mark.slow
def test_two_hundred_commands_at_once_are_all_acked_in_time_and_answered(
    fresh_serve: ServeProcess, fake_slack: FakeSlack
) -> None:
    sender = fresh_serve.sender

    acks = burst(
        200, lambda n: sender.command(f"k:1 red circle {n}", fake_slack.response_url(f"c{n}"))
    )

    assert [status for status, _ in acks] == [200] * 200
    slowest = max(seconds for _, seconds in acks)
    assert slowest < ACK_DEADLINE_SECONDS, f"slowest ack took {slowest:.2f} s"
    posted = answers(fake_slack, "c", 200, timeout=600)
    assert not [p for p in posted if BUSY in p["text"]], "none refused"
