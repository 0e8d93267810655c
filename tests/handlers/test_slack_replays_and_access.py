"""Issue 21, items 8 and 9: events without a user under allow-lists, replayed slash commands,
and a mention where the bot cannot post."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from bot.delivery import not_in_channel_sentence
from tests.support.block_kit import check_message
from tests.support.pictures import draw_shape, encode
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import Bot, BotFactory
from tests.support.slack_requests import USER_ID, command_form, mention_event

ALLOWED_CHANNEL = "C0000777"
ELSEWHERE = "C0000555"


def test_a_bots_mention_with_a_photo_outside_the_allowed_channels_is_ignored(
    start_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    closed = start_bot(allowed_channels=ALLOWED_CHANNEL)
    photo = fake_slack.add_file("p.png", encode(draw_shape("red", "circle")))
    event = mention_event(ELSEWHERE, files=[photo])
    del event["user"]
    event["bot_id"] = "B0OTHERBOT"

    assert closed.sender.event(event).status_code == 200

    closed.finish_work()
    assert not fake_slack.calls("download")
    assert not fake_slack.calls("chat.postMessage")


def test_an_event_without_a_user_is_refused_by_the_allow_lists(
    start_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    closed = start_bot(allowed_users="U0000999")
    photo = fake_slack.add_file("p.png", encode(draw_shape("red", "circle")))
    event = mention_event(ELSEWHERE, files=[photo])
    del event["user"]

    assert closed.sender.event(event).status_code == 200

    closed.finish_work()
    assert not fake_slack.calls("download")
    assert not fake_slack.calls("chat.postMessage")


def test_a_replayed_slash_command_is_answered_once(bot: Bot, fake_slack: FakeSlack) -> None:
    body = urlencode(command_form("red circle", fake_slack.response_url("replayed"))).encode()
    stamp = int(time.time())
    content_type = "application/x-www-form-urlencoded"

    first = bot.sender.post(body, content_type, timestamp=stamp)
    fake_slack.wait_for("response", where=lambda r: r.path.endswith("/replayed"))
    again = bot.sender.post(body, content_type, timestamp=stamp)

    assert (first.status_code, again.status_code) == (200, 200)
    bot.finish_work()
    assert len(fake_slack.calls("response", where=lambda r: r.path.endswith("/replayed"))) == 1


def test_the_same_command_sent_again_by_slack_later_is_answered_again(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    """Another second, another signature: a person asking twice gets two answers."""
    body = urlencode(command_form("red circle", fake_slack.response_url("twice"))).encode()
    content_type = "application/x-www-form-urlencoded"

    bot.sender.post(body, content_type, timestamp=int(time.time()) - 1)
    bot.sender.post(body, content_type, timestamp=int(time.time()))

    fake_slack.wait_for("response", 2, where=lambda r: r.path.endswith("/twice"))


def test_a_mention_where_the_bot_is_not_a_member_is_answered_in_a_dm_saying_why(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    fake_slack.not_member.add(ELSEWHERE)
    photo = fake_slack.add_file("p.png", encode(draw_shape("red", "circle")))
    event = mention_event(ELSEWHERE, files=[photo])

    assert bot.sender.event(event).status_code == 200

    [opened] = fake_slack.wait_for("conversations.open")
    assert opened.params["users"] == USER_ID
    [dm] = fake_slack.wait_for(
        "chat.postMessage", where=lambda r: str(r.params.get("channel")).startswith("D")
    )
    check_message(dm.params)
    assert dm.params["text"] == not_in_channel_sentence(ELSEWHERE)
    assert "red-circle" in str(dm.params["blocks"])
