"""Odd `/findimage` text: each gets an ack in time and either a sentence or an answer, with
options bounded."""

from __future__ import annotations

import time

import pytest

from bot.blocks import MAX_RESULTS_PER_MESSAGE
from findimage.search import OUTSIDE_FOLDER
from tests.support.slack_answers import ACK_DEADLINE_SECONDS, answer_at, result_paths
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import Bot

K_PROBLEM = f"k: takes a number from 1 to {MAX_RESULTS_PER_MESSAGE}, like k:10."


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("k:abc red circle", K_PROBLEM),
        ("k:100000 red circle", K_PROBLEM),
        ("k:0 red circle", K_PROBLEM),
        ("in:../../etc red circle", OUTSIDE_FOLDER),
        ('in:"a/../../etc" red circle', OUTSIDE_FOLDER),
    ],
)
def test_option_errors_are_one_sentence_in_the_ack(
    bot: Bot, fake_slack: FakeSlack, text: str, refusal: str
) -> None:
    response = bot.sender.command(text, fake_slack.response_url("refused"))
    assert response.status_code == 200
    assert response.json()["text"] == refusal
    bot.finish_work()
    assert not fake_slack.calls("response", where=lambda r: r.path.endswith("/refused"))


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_text_gets_the_usage(bot: Bot, fake_slack: FakeSlack, text: str) -> None:
    response = bot.sender.command(text, fake_slack.response_url("x"))
    assert response.status_code == 200
    assert "/findimage snowy mountain" in response.text


@pytest.mark.parametrize(
    "text",
    [
        "red circle " * 455,  # 5,005 characters
        "🔴 ⭕ 🌅🏔️",
        "دائرة حمراء",  # right to left
        "<@U123> red circle",
        "<#C123|general> red circle",
        "<https://example.com/a?b=c|a link> red circle",
        "<!here> red circle",
        "k:15 in:/trips/ red circle",
    ],
)
def test_odd_text_is_acked_in_time_and_answered(bot: Bot, fake_slack: FakeSlack, text: str) -> None:
    started = time.monotonic()
    response = bot.sender.command(text, fake_slack.response_url("odd"))
    assert time.monotonic() - started < ACK_DEADLINE_SECONDS
    assert response.status_code == 200
    message = answer_at(fake_slack, "odd")
    assert message["response_type"] == "ephemeral"
    assert len(result_paths(message)) <= MAX_RESULTS_PER_MESSAGE


def test_in_with_no_folder_is_a_sentence(bot: Bot, fake_slack: FakeSlack) -> None:
    response = bot.sender.command("in:/ red circle", fake_slack.response_url("root"))
    assert response.json()["text"].startswith("in: takes a folder")
