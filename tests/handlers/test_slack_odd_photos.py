"""The odd and bad files of the reliability trials, posted to the bot as photos in a DM: good
ones answered with results, bad ones with one sentence giving the decoder's reason."""

from __future__ import annotations

import pytest

from tests.support.odd_files import BAD, GOOD, MAX_FILE_MB
from tests.support.slack_answers import DM, posted_in_thread
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import Bot, BotFactory
from tests.support.slack_requests import message_event


@pytest.fixture
def strict_bot(start_bot: BotFactory, fake_slack: FakeSlack) -> Bot:
    return start_bot(max_file_mb=MAX_FILE_MB)


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_photo_is_answered_with_one_sentence_and_its_reason(
    strict_bot: Bot, fake_slack: FakeSlack, name: str
) -> None:
    make, reason = BAD[name]
    event = message_event(DM, files=[fake_slack.add_file(name, make())])

    strict_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    text = answer["text"]
    assert "\n" not in text and "Traceback" not in text
    expected = "MB I accept" if reason == "FINDIMAGE_MAX_FILE_MB" else reason
    assert expected in text, text


@pytest.mark.parametrize(
    "name", ["cmyk.jpg", "animated.webp", "ten-thousand-by-ten.png", "phone.heic"]
)
def test_an_odd_but_good_photo_is_answered_with_results(
    strict_bot: Bot, fake_slack: FakeSlack, name: str
) -> None:
    event = message_event(DM, files=[fake_slack.add_file(name, GOOD[name]())])

    strict_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert "cannot be used" not in answer["text"], answer["text"]
    assert any(block["type"] == "image" for block in answer["blocks"])
