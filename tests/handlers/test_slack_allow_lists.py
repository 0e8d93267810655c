"""FINDIMAGE_ALLOWED_USERS and FINDIMAGE_ALLOWED_CHANNELS on every Slack surface."""

from __future__ import annotations

import json

import pytest

from bot.access import REFUSAL, AccessPolicy
from findimage.settings import parse_ids
from tests.support.pictures import draw_shape, encode
from tests.support.slack_answers import DM, answer_at, ask, button, home_opened
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import Bot, BotFactory
from tests.support.slack_requests import USER_ID, mention_event, message_event

OTHER_USER = "U0000999"
ALLOWED_CHANNEL = "C0000777"


@pytest.fixture(params=["users", "channels"])
def closed_bot(request: pytest.FixtureRequest, start_bot: BotFactory, fake_slack: FakeSlack) -> Bot:
    """A bot that USER_ID in C0000001 may not use: by the user list, or by the channel list."""
    if request.param == "users":
        return start_bot(allowed_users=f"{OTHER_USER}, UOTHER2")
    return start_bot(allowed_channels=ALLOWED_CHANNEL)


def nothing_from_the_index(fake: FakeSlack) -> None:
    """No download, no upload, no picture anywhere in what the bot sent."""
    assert not fake.calls("files.info") and not fake.calls("download")
    assert not fake.calls("files.getUploadURLExternal")
    for recorded in fake.requests:
        text = json.dumps(recorded.params)
        assert ".png" not in text and "findimage_share" not in text, recorded


def test_a_slash_command_is_refused_in_its_ack(closed_bot: Bot, fake_slack: FakeSlack) -> None:
    response = closed_bot.sender.command("red circle", fake_slack.response_url("refused"))
    assert response.status_code == 200
    assert response.json() == {"response_type": "ephemeral", "text": REFUSAL}
    closed_bot.finish_work()
    assert not fake_slack.calls("response")
    nothing_from_the_index(fake_slack)


def test_a_button_click_is_refused_through_its_response_url(
    closed_bot: Bot, bot: Bot, fake_slack: FakeSlack
) -> None:
    # The answer comes from an open bot on the same library; the closed one gets the click.
    message = ask(bot, fake_slack, "red circle", "open-answer")
    more = button(message, "findimage_more")
    fake_slack.reset()
    response = closed_bot.sender.button(more, fake_slack.response_url("click"))
    assert response.status_code == 200
    refusal = answer_at(fake_slack, "click")
    assert refusal["text"] == REFUSAL
    assert refusal["response_type"] == "ephemeral"
    closed_bot.finish_work()
    assert len(fake_slack.calls("response")) == 1
    nothing_from_the_index(fake_slack)


def test_a_photo_in_a_direct_message_is_refused_in_its_thread_without_downloading(
    closed_bot: Bot, fake_slack: FakeSlack
) -> None:
    photo = fake_slack.add_file("holiday.png", encode(draw_shape("red", "circle")))
    event = message_event(DM, files=[photo])
    assert closed_bot.sender.event(event).status_code == 200
    [posted] = fake_slack.wait_for("chat.postMessage")
    assert posted.params["text"] == REFUSAL
    assert posted.params["thread_ts"] == event["ts"]
    closed_bot.finish_work()
    assert len(fake_slack.calls("chat.postMessage")) == 1
    nothing_from_the_index(fake_slack)


def test_a_mention_is_refused_to_its_author_alone(closed_bot: Bot, fake_slack: FakeSlack) -> None:
    photo = fake_slack.add_file("holiday.png", encode(draw_shape("red", "circle")))
    assert closed_bot.sender.event(mention_event("C0000001", files=[photo])).status_code == 200
    [posted] = fake_slack.wait_for("chat.postEphemeral")
    assert posted.params["text"] == REFUSAL
    assert posted.params["user"] == USER_ID
    closed_bot.finish_work()
    assert not fake_slack.calls("chat.postMessage")
    nothing_from_the_index(fake_slack)


def test_the_home_tab_shows_the_refusal_and_no_index_status(
    closed_bot: Bot, fake_slack: FakeSlack
) -> None:
    assert closed_bot.sender.event(home_opened()).status_code == 200
    [published] = fake_slack.wait_for("views.publish")
    view = json.dumps(published.params["view"])
    assert REFUSAL in view
    assert "Pictures" not in view and "Backend" not in view


def test_an_allowed_user_in_an_allowed_channel_is_answered(
    start_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = start_bot(allowed_users=USER_ID, allowed_channels=f"C0000001,{ALLOWED_CHANNEL}")
    message = ask(bot, fake_slack, "red circle", "allowed")
    assert "findimage_share" in json.dumps(message)


@pytest.mark.parametrize(
    ("users", "channels", "user", "channel", "allowed"),
    [
        ("", "", "U1", "C1", True),
        ("U1,U2", "", "U2", "C9", True),
        ("U1,U2", "", "U3", "C1", False),
        ("", "C1", "U9", "C1", True),
        ("", "C1", "U9", "C2", False),
        ("", "C1", "U9", None, False),  # the Home tab, when only some channels are open
        ("U1", "C1", "U1", "C2", False),
        ("U1", "C1", "U2", "C1", False),
        ("U1", "", None, "C1", False),
    ],
)
def test_the_policy_needs_every_list_that_is_set(
    users: str, channels: str, user: str | None, channel: str | None, allowed: bool
) -> None:
    policy = AccessPolicy(parse_ids(users), parse_ids(channels))
    assert policy.allows(user, channel) is allowed


def test_ids_are_split_on_commas_and_blanks_ignored() -> None:
    assert parse_ids(" U1, U2 ,,U3 ") == {"U1", "U2", "U3"}
    assert parse_ids("") == frozenset()
