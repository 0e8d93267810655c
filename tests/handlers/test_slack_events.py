"""Photos posted to the bot, as message.im and app_mention events, answered in their thread."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.images import UNREADABLE
from bot.search import SearchQuery
from tests.handlers.conftest import Bot, BotFactory, Library
from tests.support.block_kit import buttons, check_message
from tests.support.pictures import draw_shape, encode, gradient
from tests.support.slack_api import BOT_ID, BOT_TOKEN, BOT_USER_ID, FakeSlack, Recorded
from tests.support.slack_requests import USER_ID, mention_event, message_event

DM = "D0000001"
CHANNEL = "C0000002"
# The tiny random CLIP finds every picture alike, so only a copy counts as a duplicate here.
DUPLICATE_SCORE = 0.99999


@pytest.fixture
def photo_bot(start_bot: BotFactory, fake_slack: FakeSlack) -> Bot:
    return start_bot(duplicate_score=DUPLICATE_SCORE)


def posted_in_thread(fake: FakeSlack, thread_ts: str, count: int = 1) -> list[dict[str, Any]]:
    found = fake.wait_for(
        "chat.postMessage", count, where=lambda r: r.params.get("thread_ts") == thread_ts
    )
    for recorded in found:
        check_message(recorded.params)
    return [recorded.params for recorded in found]


def path_shown(message: dict[str, Any]) -> list[str]:
    """Paths in the order the answer lists them, from the image titles."""
    return [b["title"]["text"] for b in message["blocks"] if b["type"] == "image"]


def send_marker(bot: Bot, fake: FakeSlack) -> None:
    """A DM without a photo, answered with usage: once it is answered, earlier work is done."""
    event = message_event("D0000999", text="hello")
    bot.sender.event(event)
    fake.wait_for("chat.postMessage", where=lambda r: r.params.get("channel") == "D0000999")


def test_a_photo_in_a_dm_is_answered_in_its_thread_with_similar_pictures(
    photo_bot: Bot, fake_slack: FakeSlack
) -> None:
    photo = encode(gradient((90, 70), seed=11))
    expected = photo_bot.service.by_image(photo, SearchQuery(k=5))
    event = message_event(DM, files=[fake_slack.add_file("holiday.png", photo)])

    assert photo_bot.sender.event(event).status_code == 200

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert answer["channel"] == DM
    assert path_shown(answer) == [hit.document.path for hit in expected]
    assert "already in the library" not in answer["text"]
    assert all(b["action_id"].startswith("findimage_like:") for b in buttons(answer))
    [download] = fake_slack.calls("download")
    assert download.headers["Authorization"] == f"Bearer {BOT_TOKEN}"


def test_a_picture_already_in_the_library_is_called_out(
    photo_bot: Bot, library: Library, fake_slack: FakeSlack
) -> None:
    original = sorted(library.root.rglob("*.png"))[3]
    relative = original.relative_to(library.root).as_posix()
    event = message_event(DM, files=[fake_slack.add_file("copy.png", original.read_bytes())])

    photo_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert f"This picture is already in the library at *{relative}*." in json.dumps(
        answer["blocks"], ensure_ascii=False
    )
    assert path_shown(answer)[0] == relative


def test_each_photo_of_a_message_gets_its_own_answer(photo_bot: Bot, fake_slack: FakeSlack) -> None:
    files = [
        fake_slack.add_file("one.png", encode(draw_shape("red", "circle"))),
        fake_slack.add_file("two.jpg", encode(draw_shape("blue", "square"), "JPEG"), "image/jpeg"),
    ]
    event = message_event(DM, files=files)

    photo_bot.sender.event(event)

    answers = posted_in_thread(fake_slack, event["ts"], count=2)
    headings = {answer["blocks"][0]["text"]["text"] for answer in answers}
    assert headings == {"*Pictures like one.png*", "*Pictures like two.jpg*"}
    assert sorted(r.params["file"] for r in fake_slack.calls("download")) == sorted(
        f["id"] for f in files
    )
    send_marker(photo_bot, fake_slack)
    assert len(fake_slack.calls("chat.postMessage", where=_in_thread(event["ts"]))) == 2


def test_a_file_that_is_not_a_picture_gets_a_polite_line_and_is_not_downloaded(
    photo_bot: Bot, fake_slack: FakeSlack
) -> None:
    notes = fake_slack.add_file(
        "notes.txt", b"hello", "text/plain", filetype="text", pretty_type="Plain Text"
    )
    event = message_event(DM, files=[notes])

    photo_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert answer["text"] == (
        "I can only search with pictures, and notes.txt is a Plain Text: "
        "try a JPEG, PNG, GIF or WebP."
    )
    assert not fake_slack.calls("download")


def test_a_photo_over_the_size_limit_is_refused_before_downloading(
    start_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    small_limit = start_bot(max_file_mb=0.001)
    content = encode(gradient((300, 300), seed=2), "JPEG", quality=95)
    assert len(content) > small_limit.settings.max_file_bytes
    big = fake_slack.add_file("big.jpg", content, "image/jpeg")
    event = message_event(DM, files=[big])

    small_limit.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert answer["text"] == "big.jpg is larger than the 0.001 MB I accept."
    assert not fake_slack.calls("download")


def test_an_unreadable_picture_is_one_plain_sentence(photo_bot: Bot, fake_slack: FakeSlack) -> None:
    event = message_event(DM, files=[fake_slack.add_file("broken.png", b"\x89PNG\r\n\x1a\nnope")])

    photo_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert answer["text"] == f"That picture cannot be used: {UNREADABLE}."


def test_a_file_announced_by_id_only_is_looked_up_first(
    photo_bot: Bot, fake_slack: FakeSlack
) -> None:
    full = fake_slack.add_file("shared.png", encode(draw_shape("green", "triangle")))
    event = message_event(
        DM, files=[{"id": full["id"], "mode": "file_access", "file_access": "check_file_info"}]
    )

    photo_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert len(path_shown(answer)) == 5
    [info] = fake_slack.calls("files.info")
    assert info.params["file"] == full["id"]


def test_a_mention_with_a_photo_in_a_channel_is_answered_in_its_thread(
    photo_bot: Bot, fake_slack: FakeSlack
) -> None:
    event = mention_event(CHANNEL, files=[fake_slack.add_file("p.png", encode(gradient()))])

    photo_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert answer["channel"] == CHANNEL
    assert len(path_shown(answer)) == 5


def test_a_mention_without_a_photo_gets_a_hint_only_its_author_sees(
    photo_bot: Bot, fake_slack: FakeSlack
) -> None:
    photo_bot.sender.event(mention_event(CHANNEL))

    [hint] = fake_slack.wait_for("chat.postEphemeral")
    assert hint.params["user"] == USER_ID
    assert hint.params["channel"] == CHANNEL
    assert "Send me a photo" in hint.params["text"]


def test_a_retried_event_is_never_answered_twice(photo_bot: Bot, fake_slack: FakeSlack) -> None:
    event = message_event(DM, files=[fake_slack.add_file("r.png", encode(gradient(seed=4)))])
    photo_bot.sender.event(event)
    posted_in_thread(fake_slack, event["ts"])

    for attempt in ("1", "2"):
        retried = photo_bot.sender.event(
            event, headers={"X-Slack-Retry-Num": attempt, "X-Slack-Retry-Reason": "http_timeout"}
        )
        assert retried.status_code == 200

    send_marker(photo_bot, fake_slack)
    assert len(fake_slack.calls("chat.postMessage", where=_in_thread(event["ts"]))) == 1
    assert len(fake_slack.calls("download")) == 1


def test_the_bots_own_messages_are_ignored(photo_bot: Bot, fake_slack: FakeSlack) -> None:
    own = message_event(
        DM,
        files=[fake_slack.add_file("own.png", encode(gradient(seed=6)))],
        user=BOT_USER_ID,
        bot_id=BOT_ID,
    )

    assert photo_bot.sender.event(own).status_code == 200

    send_marker(photo_bot, fake_slack)
    assert not fake_slack.calls("chat.postMessage", where=_in_thread(own["ts"]))
    assert not fake_slack.calls("download")


def _in_thread(ts: str):
    def matches(recorded: Recorded) -> bool:
        return recorded.params.get("thread_ts") == ts

    return matches
