"""Slack misbehaving while `findimage serve` (a child process) answers: every request it acked
is answered once Slack can take the answer.

The Web API stand-in plays the failures (tests/support/slack_api.py): the whole of Slack
unreachable for a while, 429s with Retry-After on each answering method, the Web API down
while response URLs still work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.blocks import ACTION_MORE, Page
from bot.previews import UPLOAD_FAILED
from tests.support.block_kit import check_message
from tests.support.pictures import draw_shape, encode
from tests.support.serve_process import ServeProcess, launch_serve
from tests.support.slack_answers import DM, home_opened
from tests.support.slack_api import BOT_TOKEN, FakeSlack, SlackApiServer
from tests.support.slack_bot import IndexedLibrary
from tests.support.slack_requests import SIGNING_SECRET, mention_event, message_event

# Every test here talks to one real `findimage serve` process, about 20 s to start alone.
pytestmark = pytest.mark.slow

# How long Slack stays unreachable in the outage test: the scenario's length (issue 21's
# trial), not a wait for anything.
OUTAGE_SECONDS = 10
# A ceiling for a broken run: back-off after a 10 s outage retries within about 20 s.
ANSWERED_WITHIN = 90


@pytest.fixture(scope="module")
def slack_server() -> Iterator[SlackApiServer]:
    server = SlackApiServer()
    with server:
        yield server


@pytest.fixture(scope="module")
def bot_process(
    slack_server: SlackApiServer,
    slack_library: IndexedLibrary,
    trained_clip: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServeProcess]:
    process = launch_serve(
        {
            "FINDIMAGE_STORE": str(slack_library.root),
            "FINDIMAGE_DATA_DIR": str(slack_library.data_dir),
            "FINDIMAGE_IMAGE_MODEL": str(trained_clip),
            "FINDIMAGE_TEXT_MODEL": str(trained_clip),
            "FINDIMAGE_MODEL_CACHE": str(slack_library.settings.model_cache),
            "FINDIMAGE_DEVICE": "cpu",
            "FINDIMAGE_PORT": "0",
            "FINDIMAGE_SLACK_API_URL": slack_server.fake.api_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        },
        tmp_path_factory.mktemp("serve"),
    )
    try:
        # Answered once the models are loaded: from then on, answers wait for Slack alone.
        process.sender.command("k:1 warm up", slack_server.fake.response_url("warm-up"))
        slack_server.fake.wait_for(
            "response", where=lambda r: r.path.endswith("/warm-up"), timeout=300
        )
        yield process
    finally:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait(timeout=30)


@pytest.fixture
def slack(slack_server: SlackApiServer, bot_process: ServeProcess) -> FakeSlack:
    slack_server.fake.reset()
    return slack_server.fake


def red_circle_photo(slack: FakeSlack) -> dict:
    return slack.add_file("circle.png", encode(draw_shape("red", "circle", (73, 71))))


def response_to(slack: FakeSlack, name: str) -> list[dict]:
    found = slack.wait_for(
        "response", where=lambda r: r.path.endswith("/" + name), timeout=ANSWERED_WITHIN
    )
    for recorded in found:
        check_message(recorded.params)
    return [recorded.params for recorded in found]


def thread_answer(slack: FakeSlack, thread_ts: str) -> list[dict]:
    found = slack.wait_for(
        "chat.postMessage",
        where=lambda r: r.params.get("thread_ts") == thread_ts and "blocks" in r.params,
        timeout=ANSWERED_WITHIN,
    )
    return [recorded.params for recorded in found]


def test_requests_acked_while_slack_is_unreachable_are_answered_once_it_is_back(
    slack_server: SlackApiServer, slack: FakeSlack, bot_process: ServeProcess
) -> None:
    sender = bot_process.sender
    photo = red_circle_photo(slack)
    dm_photo = message_event(DM, files=[photo])
    more = {
        "action_id": ACTION_MORE,
        "text": {"type": "plain_text", "text": "More results"},
        "value": Page(k=3, text="red circle", offset=3).to_value(),
    }

    slack_server.stop()
    try:
        acks = [
            sender.command(f"k:3 red circle {n}", slack.response_url(f"outage{n}"))
            for n in range(3)
        ]
        acks.append(sender.button(more, slack.response_url("outage-more")))
        acks.append(sender.event(dm_photo))
        time.sleep(OUTAGE_SECONDS)  # Slack stays down this long: the scenario itself
    finally:
        slack_server.restart()

    assert [ack.status_code for ack in acks] == [200] * 5
    for name in ("outage0", "outage1", "outage2", "outage-more"):
        [answer] = response_to(slack, name)
        assert ".png" in answer["text"], answer["text"]
    [posted] = thread_answer(slack, dm_photo["ts"])
    assert "red-circle" in posted["text"]


def test_three_429s_in_a_row_on_each_answering_method_still_end_in_an_answer(
    slack: FakeSlack, bot_process: ServeProcess
) -> None:
    for kind in ("response", "chat.postMessage", "chat.postEphemeral", "views.publish"):
        slack.rate_limit[kind] = 3
    slack.retry_after = 1
    sender = bot_process.sender
    dm_photo = message_event(DM, files=[red_circle_photo(slack)])

    assert sender.command("k:3 red circle", slack.response_url("limited")).status_code == 200
    assert sender.event(dm_photo).status_code == 200
    assert sender.event(home_opened()).status_code == 200
    assert sender.event(mention_event("C0000001")).status_code == 200

    [answer] = response_to(slack, "limited")
    assert ".png" in answer["text"]
    [posted] = thread_answer(slack, dm_photo["ts"])
    assert "red-circle" in posted["text"]
    slack.wait_for("views.publish", timeout=ANSWERED_WITHIN)
    slack.wait_for("chat.postEphemeral", timeout=ANSWERED_WITHIN)
    for kind in ("response", "chat.postMessage", "chat.postEphemeral", "views.publish"):
        assert len(slack.calls(f"{kind}-429")) == 3, kind


def test_web_api_down_with_response_urls_up_still_answers_with_the_paths(
    slack: FakeSlack, bot_process: ServeProcess
) -> None:
    slack.down.add("api")

    response = bot_process.sender.command("k:3 red circle", slack.response_url("no-api"))

    assert response.status_code == 200
    [answer] = response_to(slack, "no-api")
    assert UPLOAD_FAILED in json.dumps(answer["blocks"], ensure_ascii=False)
    assert "red-circle" in answer["text"]
    assert slack.calls("api-down"), "the bot did try the Web API"
