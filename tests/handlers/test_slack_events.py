"""Photos posted to the bot, as message.im and app_mention events, answered in their thread."""

from __future__ import annotations

from typing import Any

import pytest

from findimage.images import UNREADABLE
from tests.support.block_kit import buttons
from tests.support.pictures import draw_shape, encode, gradient
from tests.support.slack_answers import DM, posted_in_thread
from tests.support.slack_api import (
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    DOWNLOAD_CONTENT_TYPES,
    FakeSlack,
    Recorded,
)
from tests.support.slack_bot import Bot, BotFactory, IndexedLibrary
from tests.support.slack_requests import USER_ID, mention_event, message_event

CHANNEL = "C0000002"
# Only a copy counts as a duplicate here: the library's pictures differ little.
DUPLICATE_SCORE = 0.99999
SCOPE_SENTENCE = "Slack sent its sign-in page instead, which means this app lacks the files:read"


@pytest.fixture
def photo_bot(start_bot: BotFactory, fake_slack: FakeSlack) -> Bot:
    return start_bot(duplicate_score=DUPLICATE_SCORE)


def path_shown(message: dict[str, Any]) -> list[str]:
    """Paths in the order the answer lists them, from the image titles."""
    return [b["title"]["text"] for b in message["blocks"] if b["type"] == "image"]


def heading(message: dict[str, Any]) -> str:
    return message["blocks"][0]["text"]["text"]


@pytest.mark.parametrize("content_type", DOWNLOAD_CONTENT_TYPES)
def test_a_photo_in_a_dm_is_answered_in_its_thread_with_the_closest_pictures_first(
    photo_bot: Bot, fake_slack: FakeSlack, content_type: str
) -> None:
    """Whatever Content-Type Slack serves the download with, the bytes decide."""
    fake_slack.download_content_type = content_type
    photo = encode(draw_shape("green", "triangle", size=(77, 81), offset=3), "JPEG")
    event = message_event(DM, files=[fake_slack.add_file("holiday.jpg", photo, "image/jpeg")])

    assert photo_bot.sender.event(event).status_code == 200

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert answer["channel"] == DM
    assert path_shown(answer)[0] == "trips/green-triangle-0017.jpg"
    assert heading(answer) == "Pictures like holiday.jpg"
    assert all(b["action_id"].startswith("findimage_like:") for b in buttons(answer))
    [download] = fake_slack.calls("download")
    assert download.headers["Authorization"] == f"Bearer {BOT_TOKEN}"


@pytest.mark.parametrize("content_type", DOWNLOAD_CONTENT_TYPES)
def test_a_damaged_photo_gets_the_decoders_reason_whatever_its_content_type(
    photo_bot: Bot, fake_slack: FakeSlack, content_type: str
) -> None:
    fake_slack.download_content_type = content_type
    damaged = encode(gradient(), "JPEG")[:300]
    event = message_event(DM, files=[fake_slack.add_file("cut.jpg", damaged, "image/jpeg")])

    photo_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert answer["text"].startswith("That picture cannot be used: ")
    assert "couldn't download" not in answer["text"]


def test_slacks_sign_in_page_instead_of_the_photo_names_the_missing_scope(
    photo_bot: Bot, fake_slack: FakeSlack
) -> None:
    """A token without files:read is sent to the sign-in page (the stand-in's 302)."""
    fake_slack.files_read_scope = False
    event = message_event(DM, files=[fake_slack.add_file("p.png", encode(gradient()))])

    photo_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert SCOPE_SENTENCE in answer["text"]
    assert fake_slack.calls("signin"), "the download should have been redirected"


@pytest.mark.parametrize("redirect", ["same-host", "cross-host"])
def test_a_redirected_download_is_followed_and_the_token_stays_on_slacks_host(
    photo_bot: Bot, fake_slack: FakeSlack, redirect: str
) -> None:
    fake_slack.redirect_downloads = redirect
    photo = encode(draw_shape("red", "circle", size=(71, 75)))
    event = message_event(DM, files=[fake_slack.add_file("r.png", photo)])

    photo_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert path_shown(answer)[0] == "red-circle-0000.png"
    hops = fake_slack.calls("download") + fake_slack.calls("cdn")
    assert len(hops) == 2
    if redirect == "cross-host":
        [cdn] = fake_slack.calls("cdn")
        assert "Authorization" not in cdn.headers, "the token left Slack's host"
    else:
        assert all(hop.headers["Authorization"] == f"Bearer {BOT_TOKEN}" for hop in hops)


def test_the_token_is_never_sent_to_a_host_other_than_slacks_file_host(
    photo_bot: Bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    file = fake_slack.add_file("elsewhere.png", encode(gradient()))
    for key in ("url_private", "url_private_download"):
        file[key] = file[key].replace(fake_slack.url, fake_slack.other_host_url)
    event = message_event(DM, files=[file])

    photo_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert "does not point to Slack's file host, so I did not send it my token" in answer["text"]
    assert not fake_slack.calls("download")
    assert "refused to download file" in caplog.text
    assert BOT_TOKEN not in caplog.text


def test_a_picture_already_in_the_library_is_called_out(
    photo_bot: Bot, slack_library: IndexedLibrary, fake_slack: FakeSlack
) -> None:
    original = sorted(slack_library.root.rglob("*.png"))[3]
    relative = original.relative_to(slack_library.root).as_posix()
    event = message_event(DM, files=[fake_slack.add_file("copy.png", original.read_bytes())])

    photo_bot.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert heading(answer) == f"This picture is already in the library at {relative}."
    assert path_shown(answer)[0] == relative


def test_each_photo_of_a_message_gets_its_own_answer(photo_bot: Bot, fake_slack: FakeSlack) -> None:
    files = [
        fake_slack.add_file("one.png", encode(draw_shape("red", "circle"))),
        fake_slack.add_file("two.jpg", encode(draw_shape("blue", "square"), "JPEG"), "image/jpeg"),
    ]
    event = message_event(DM, files=files)

    photo_bot.sender.event(event)

    answers = posted_in_thread(fake_slack, event["ts"], count=2)
    assert {heading(answer) for answer in answers} == {
        "Pictures like one.png",
        "Pictures like two.jpg",
    }
    assert sorted(r.params["file"] for r in fake_slack.calls("download")) == sorted(
        f["id"] for f in files
    )
    photo_bot.finish_work()
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
        "try a JPEG, PNG, GIF, WebP or HEIC."
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


def test_a_photo_over_the_limit_is_stopped_while_streaming_when_slack_understates_its_size(
    start_bot: BotFactory, fake_slack: FakeSlack
) -> None:
    small_limit = start_bot(max_file_mb=0.001)
    content = encode(gradient((300, 300), seed=2), "JPEG", quality=95)
    assert len(content) > small_limit.settings.max_file_bytes
    file = fake_slack.add_file("big.jpg", content, "image/jpeg", reported_size=100)
    event = message_event(DM, files=[file])

    small_limit.sender.event(event)

    [answer] = posted_in_thread(fake_slack, event["ts"])
    assert answer["text"] == "big.jpg is larger than the 0.001 MB I accept."
    assert len(fake_slack.calls("download")) == 1


def test_a_first_delivery_that_only_ever_arrives_as_a_retry_is_answered(
    photo_bot: Bot, fake_slack: FakeSlack
) -> None:
    """During a restart Slack's first attempt fails; what arrives is retry 1."""
    event = message_event(DM, files=[fake_slack.add_file("late.png", encode(gradient(seed=9)))])

    response = photo_bot.sender.event(
        event, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "connection_failed"}
    )

    assert response.status_code == 200
    posted_in_thread(fake_slack, event["ts"])


def test_a_redelivered_event_is_handled_once_by_its_event_id(
    photo_bot: Bot, fake_slack: FakeSlack
) -> None:
    """A text DM: only the event-id check stands between a redelivery and a second answer."""
    event = message_event("D0000555", text="hello")
    for attempt in (None, "1", "2"):
        headers = {"X-Slack-Retry-Num": attempt, "X-Slack-Retry-Reason": "http_timeout"}
        response = photo_bot.sender.event(
            event, event_id="Ev0REDELIVERED", headers=headers if attempt else None
        )
        assert response.status_code == 200

    photo_bot.finish_work()
    assert len(fake_slack.calls("chat.postMessage")) == 1


def test_two_events_with_their_own_event_ids_are_each_handled(
    photo_bot: Bot, fake_slack: FakeSlack
) -> None:
    """The event-id check keys on the id itself: two DMs, each its own event, both answered
    (a key without the id would take the second for a redelivery of the first)."""
    first = message_event("D0000556", text="hello")
    second = message_event("D0000557", text="hello again")
    for event, event_id in ((first, "Ev0FIRST"), (second, "Ev0SECOND")):
        assert photo_bot.sender.event(event, event_id=event_id).status_code == 200

    photo_bot.finish_work()
    answered = [call.params["channel"] for call in fake_slack.calls("chat.postMessage")]
    assert sorted(answered) == ["D0000556", "D0000557"]


def test_one_photo_announced_by_two_events_is_answered_once(
    photo_bot: Bot, fake_slack: FakeSlack
) -> None:
    """A mention in a direct message arrives as message.im and app_mention, each with its own
    event_id: only the per-photo check stands between them and a second answer."""
    file = fake_slack.add_file("twice.png", encode(gradient(seed=5)))
    as_message = message_event(DM, files=[file])
    as_mention = {**mention_event(DM, files=[file]), "ts": as_message["ts"]}

    photo_bot.sender.event(as_message)
    photo_bot.sender.event(as_mention)

    photo_bot.finish_work()
    assert len(fake_slack.calls("chat.postMessage", where=_in_thread(as_message["ts"]))) == 1
    assert len(fake_slack.calls("download")) == 1


def test_the_bots_own_messages_are_ignored(photo_bot: Bot, fake_slack: FakeSlack) -> None:
    own = message_event(
        DM,
        files=[fake_slack.add_file("own.png", encode(gradient(seed=6)))],
        user=BOT_USER_ID,
        bot_id=BOT_ID,
    )

    assert photo_bot.sender.event(own).status_code == 200

    photo_bot.finish_work()
    assert not fake_slack.calls("chat.postMessage")
    assert not fake_slack.calls("download")


def test_another_bots_photo_in_a_dm_is_not_answered(photo_bot: Bot, fake_slack: FakeSlack) -> None:
    """Bolt drops only this bot's own messages; other bots' file shares are ours to skip."""
    other = message_event(
        DM,
        files=[fake_slack.add_file("bot.png", encode(gradient(seed=7)))],
        user="U0OTHERBOT",
        bot_id="B0OTHERBOT",
    )

    assert photo_bot.sender.event(other).status_code == 200

    photo_bot.finish_work()
    assert not fake_slack.calls("chat.postMessage")
    assert not fake_slack.calls("download")


def _in_thread(ts: str):
    def matches(recorded: Recorded) -> bool:
        return recorded.params.get("thread_ts") == ts

    return matches
