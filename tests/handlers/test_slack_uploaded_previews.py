"""Without a public URL, previews are uploaded to Slack: private answers stay private.

The recorded Web API calls are the proof: a private answer (/findimage, More results, More
like this) shares nothing into the conversation it was asked in; its previews go into a
thread of the bot's direct message with the asker. Share in channel is the one moment a
picture is uploaded into the channel.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.payloads import SharedResult
from bot.previews import PREVIEW_MAX_SIDE, PREVIEWS_ABOVE
from tests.support.block_kit import check_message
from tests.support.slack_answers import answer_at, ask, button, image_blocks, result_paths
from tests.support.slack_api import FakeSlack, Recorded
from tests.support.slack_bot import Bot, BotFactory
from tests.support.slack_requests import USER_ID, message_event

CHANNEL = "C0000003"
ASKERS_DM = "D" + USER_ID.lstrip("U")


@pytest.fixture
def upload_bot(start_bot: BotFactory, fake_slack: FakeSlack) -> Bot:
    return start_bot(previews="upload")


def shared_into(fake: FakeSlack, channel: str) -> list[Recorded]:
    """Every Web API call that put something into `channel` for its members to see."""
    return [
        r
        for r in fake.requests
        if r.kind in {"chat.postMessage", "files.completeUploadExternal", "chat.postEphemeral"}
        and channel in (r.params.get("channel"), r.params.get("channel_id"))
    ]


def test_private_answers_share_nothing_into_the_channel_until_share_in_channel(
    upload_bot: Bot, fake_slack: FakeSlack
) -> None:
    first = ask(upload_bot, fake_slack, "white square", "p1")
    upload_bot.sender.button(
        button(first, "findimage_more"), fake_slack.response_url("p2"), channel_id=CHANNEL
    )
    more = answer_at(fake_slack, "p2")
    upload_bot.sender.button(
        button(first, "findimage_like:1"), fake_slack.response_url("p3"), channel_id=CHANNEL
    )
    like = answer_at(fake_slack, "p3")
    upload_bot.finish_work()

    assert shared_into(fake_slack, CHANNEL) == []
    assert shared_into(fake_slack, "C0000001") == []
    for answer in (first, more, like):
        assert answer["response_type"] == "ephemeral"
        assert len(image_blocks(answer)) == len(result_paths(answer)) == 5
    # Every preview went into one thread of the asker's own direct message with the bot. The
    # bot is shared by the session and remembers that thread, so an earlier test may have
    # opened it already: at most one open and one thread starter here, both in that DM.
    opened = fake_slack.calls("conversations.open")
    assert len(opened) <= 1 and all(o.params["users"] == USER_ID for o in opened)
    shelves = fake_slack.calls("chat.postMessage")
    assert len(shelves) <= 1 and all(s.params["channel"] == ASKERS_DM for s in shelves)
    completes = fake_slack.calls("files.completeUploadExternal")
    assert len(completes) == 3
    assert {c.params["channel_id"] for c in completes} == {ASKERS_DM}
    assert len({c.params["thread_ts"] for c in completes}) == 1
    uploaded = {f["id"] for c in completes for f in c.params["files"]}
    shown = {i["slack_file"]["id"] for a in (first, more, like) for i in image_blocks(a)}
    assert shown == uploaded

    upload_bot.sender.button(
        button(first, "findimage_share:2"), fake_slack.response_url("p4"), channel_id=CHANNEL
    )

    [share] = fake_slack.wait_for(
        "files.completeUploadExternal", where=lambda r: r.params.get("channel_id") == CHANNEL
    )
    shared = SharedResult.from_value(button(first, "findimage_share:2")["value"])
    assert [f["title"] for f in share.params["files"]] == [shared.path]
    assert f"<@{USER_ID}> shared `{shared.path}`" in share.params["initial_comment"]
    upload_bot.finish_work()
    assert shared_into(fake_slack, CHANNEL) == [share]
    assert not fake_slack.calls("response", where=lambda r: r.path.endswith("/p4"))


def test_previews_are_small_jpegs(upload_bot: Bot, fake_slack: FakeSlack) -> None:
    ask(upload_bot, fake_slack, "red square", "small")

    uploads = fake_slack.calls("upload")
    assert len(uploads) == 5
    preview = Image.open(io.BytesIO(uploads[0].body))
    assert preview.format == "JPEG"
    assert max(preview.size) <= PREVIEW_MAX_SIDE


def test_sharing_into_a_channel_without_the_bot_posts_the_result_without_its_picture(
    upload_bot: Bot, fake_slack: FakeSlack
) -> None:
    fake_slack.not_member.add("C0000404")
    first = ask(upload_bot, fake_slack, "black circle", "notin0")

    upload_bot.sender.button(
        button(first, "findimage_share:1"),
        fake_slack.response_url("notin1"),
        channel_id="C0000404",
    )

    shared = answer_at(fake_slack, "notin1")
    assert shared["response_type"] == "in_channel"
    assert not image_blocks(shared)
    assert SharedResult.from_value(button(first, "findimage_share:1")["value"]).path in str(
        shared["blocks"]
    )


def test_previews_for_a_photo_go_into_its_thread_once(
    upload_bot: Bot, fake_slack: FakeSlack
) -> None:
    event = message_event("D0000007", files=[fake_slack.add_file("x.png", _png())])

    upload_bot.sender.event(event)

    [answer] = fake_slack.wait_for("chat.postMessage")
    check_message(answer.params)
    [complete] = fake_slack.calls("files.completeUploadExternal")
    assert complete.params["channel_id"] == "D0000007"
    assert complete.params["thread_ts"] == event["ts"] == answer.params["thread_ts"]
    assert len(complete.params["files"]) == 5
    assert image_blocks(answer.params) == [], "the pictures would show twice in the thread"
    assert PREVIEWS_ABOVE in str(answer.params["blocks"])


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (220, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()
