"""The HTTP server checks cheaply first (issue 21, item 7): size, then signature, then parsing;
refusals are 413/401/400 with no traceback and one log line a minute per kind."""

from __future__ import annotations

import io
import logging
import time
from typing import Any

import pytest
import requests

from bot.blocks import ACTION_MORE
from bot.http import QuietLog, signed_only
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import Bot
from tests.support.slack_requests import SIGNING_SECRET, slack_signature

LIMIT = 100


def call(app: Any, body: bytes, signed: bool = True, stamp: str = "") -> str:
    stamp = stamp or str(int(time.time()))
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_X_SLACK_REQUEST_TIMESTAMP": stamp,
    }
    if signed:
        environ["HTTP_X_SLACK_SIGNATURE"] = slack_signature(SIGNING_SECRET, stamp, body)
    statuses: list[str] = []
    app(environ, lambda status, headers: statuses.append(status))
    return statuses[0]


def passed_on(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [environ["wsgi.input"].read()]


@pytest.mark.parametrize(
    ("size", "status"), [(LIMIT, "200 OK"), (LIMIT + 1, "413 Content Too Large")]
)
def test_a_body_is_accepted_up_to_the_limit_and_refused_one_byte_past_it(
    size: int, status: str
) -> None:
    assert call(signed_only(passed_on, SIGNING_SECRET, max_body=LIMIT), b"a" * size) == status


def test_an_unsigned_or_wrongly_signed_body_is_refused_before_anything_parses_it() -> None:
    guarded = signed_only(passed_on, SIGNING_SECRET)
    nested = b"[" * 100_000 + b"]" * 100_000

    assert call(guarded, nested[:LIMIT], signed=False) == "401 Unauthorized"
    assert call(guarded, b"x", stamp="1") == "401 Unauthorized"  # signed, but long ago


def test_refusals_are_logged_once_a_minute_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    quiet = QuietLog(clock=lambda: now[0])
    guarded = signed_only(passed_on, SIGNING_SECRET, quiet=quiet)
    for _ in range(50):
        call(guarded, b"garbage", signed=False)
    now[0] = 61.0
    call(guarded, b"garbage", signed=False)

    lines = [r.getMessage() for r in caplog.records if r.name == "bot.http"]
    assert lines == [
        "refused 1 request(s) to /slack/events: unsigned (no X-Slack-Signature or timestamp)",
        "refused 50 request(s) to /slack/events: unsigned (no X-Slack-Signature or timestamp)",
    ]


def test_the_served_bot_answers_unsigned_garbage_401_without_a_traceback(
    bot: Bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    deep = b"{" + b'"a":{' * 50_000 + b"}" * 50_001
    for body in (b"\x00\xff garbage", deep):
        response = requests.post(
            bot.sender.events_url,
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 401
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_a_signed_oversized_body_is_413(bot: Bot) -> None:
    response = bot.sender.post(b"a" * (2 * 1024 * 1024 + 1), "application/x-www-form-urlencoded")
    assert response.status_code == 413


def test_a_button_whose_value_is_not_ours_is_400_without_a_traceback(
    bot: Bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    button = {
        "action_id": ACTION_MORE,
        "text": {"type": "plain_text", "text": "More results"},
        "value": "{not json",
    }

    response = bot.sender.button(button, fake_slack.response_url("bad-value"))

    assert response.status_code == 400
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
