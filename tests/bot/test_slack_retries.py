"""Slack's redeliveries are answered at once and handed to no listener.

Slack retries an event it thinks was lost (no 2xx within 3 seconds, a connection error),
marking the retry with `X-Slack-Retry-Num` and `X-Slack-Retry-Reason`
(https://api.slack.com/apis/events-api#retries).
"""

from __future__ import annotations

import logging

import pytest
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot.slack_app import ignore_retries


def _handed_on(request: BoltRequest) -> tuple[BoltResponse | None, list[str]]:
    calls: list[str] = []
    response = ignore_retries(request, lambda: calls.append("next"))
    return response, calls


def test_a_retry_is_acknowledged_and_goes_no_further(caplog: pytest.LogCaptureFixture) -> None:
    retry = BoltRequest(
        body="{}", headers={"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"}
    )
    with caplog.at_level(logging.INFO, logger="bot.slack_app"):
        response, calls = _handed_on(retry)
    assert calls == []
    assert response is not None and response.status == 200
    assert "ignoring Slack retry 2 (http_timeout)" in caplog.text


def test_a_first_delivery_goes_on_to_the_listeners() -> None:
    response, calls = _handed_on(BoltRequest(body="{}", headers={}))
    assert calls == ["next"]
    assert response is None
