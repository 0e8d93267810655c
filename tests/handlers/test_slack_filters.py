"""`/findimage` with after:, before: and near:, end to end through Bolt. The shared library's
pictures were written at test time and carry no EXIF date or GPS: they are dated by their
files, and no place matches them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.payloads import Page
from findimage.filters import Filters
from tests.support.searches import text_request
from tests.support.slack_answers import ask, button, result_paths
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import Bot


def _sentence(message: dict[str, Any]) -> str:
    [block] = message["blocks"]
    return block["text"]["text"]


def test_a_date_filter_answers_with_file_dates_and_keeps_to_it_on_the_next_page(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    filters = Filters(after=datetime(2000, 1, 1))
    expected = bot.service.search(text_request("red circle", k=5, filters=filters)).hits

    message = ask(bot, fake_slack, "after:2000 red circle", "after")

    assert message["blocks"][0]["text"]["text"] == "Results for “red circle”, after 2000-01-01"
    assert result_paths(message) == [hit.document.path for hit in expected]
    lines = [b["text"]["text"] for b in message["blocks"][1:] if b["type"] == "section"]
    days = [datetime.fromtimestamp(hit.document.mtime, UTC) for hit in expected]
    assert len(lines) == len(days)
    assert all(f"file date {day:%Y-%m-%d}" in line for line, day in zip(lines, days, strict=True))
    assert Page.from_value(button(message, "findimage_more")["value"]).filters == filters


def test_filters_nothing_matches_get_one_sentence(bot: Bot, fake_slack: FakeSlack) -> None:
    before = ask(bot, fake_slack, "before:2000 red circle", "before")
    assert _sentence(before) == (
        "No picture in the library matches before 2000-01-01: widen the dates or the distance."
    )
    near = ask(bot, fake_slack, "near:48.85,2.35,10 red circle", "near")
    assert _sentence(near) == (
        "No picture in the library matches within 10 km of 48.85,2.35: widen the dates or the "
        "distance."
    )


def test_a_bad_filter_is_one_sentence_in_the_ack(bot: Bot, fake_slack: FakeSlack) -> None:
    response = bot.sender.command("near:here red circle", fake_slack.response_url("bad"))
    assert response.status_code == 200
    assert response.json()["text"] == (
        "near: takes a latitude, a longitude and a distance in km, like 48.85,2.35,10."
    )
    bot.finish_work()
    assert not fake_slack.calls("response")
