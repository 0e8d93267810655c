"""Without a public URL, previews are uploaded with files_upload_v2 where the question was asked."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.blocks import SharedResult
from bot.previews import PREVIEW_MAX_SIDE
from bot.search import SearchQuery
from tests.handlers.conftest import Bot, BotFactory
from tests.handlers.test_slack_commands import answer_at, ask, button, image_blocks, result_paths
from tests.support.block_kit import check_message
from tests.support.pictures import encode, gradient
from tests.support.slack_api import FakeSlack
from tests.support.slack_requests import message_event

CHANNEL = "C0000003"


@pytest.fixture
def upload_bot(start_bot: BotFactory, fake_slack: FakeSlack) -> Bot:
    return start_bot(previews="upload")


def test_previews_are_uploaded_into_the_channel_and_shown_as_slack_files(
    upload_bot: Bot, fake_slack: FakeSlack
) -> None:
    expected = upload_bot.service.by_text("white square", SearchQuery(k=5))

    upload_bot.sender.command("white square", fake_slack.response_url("up"), channel_id=CHANNEL)

    message = answer_at(fake_slack, "up")
    assert result_paths(message) == [hit.document.path for hit in expected]
    [complete] = fake_slack.calls("files.completeUploadExternal")
    assert complete.params["channel_id"] == CHANNEL
    uploaded_ids = [f["id"] for f in complete.params["files"]]
    assert [f["title"] for f in complete.params["files"]] == result_paths(message)
    assert [image["slack_file"]["id"] for image in image_blocks(message)] == uploaded_ids
    uploads = fake_slack.calls("upload")
    assert len(uploads) == 5
    preview = Image.open(io.BytesIO(uploads[0].body))
    assert preview.format == "JPEG"
    assert max(preview.size) <= PREVIEW_MAX_SIDE


def test_sharing_an_uploaded_preview_reuses_its_file(
    upload_bot: Bot, fake_slack: FakeSlack
) -> None:
    first = ask(upload_bot, fake_slack, "red square", "up-share0")
    value = button(first, "findimage_share:1")["value"]
    uploaded = SharedResult.from_value(value).uploaded_file
    assert uploaded is not None

    upload_bot.sender.button(
        button(first, "findimage_share:1"), fake_slack.response_url("up-share1"), channel_id=CHANNEL
    )

    shared = answer_at(fake_slack, "up-share1")
    assert shared["response_type"] == "in_channel"
    assert [image["slack_file"]["id"] for image in image_blocks(shared)] == [uploaded]


def test_a_channel_without_the_bot_gets_the_paths_and_how_to_invite_it(
    upload_bot: Bot, fake_slack: FakeSlack
) -> None:
    fake_slack.not_member.add("C0000404")
    expected = upload_bot.service.by_text("black circle", SearchQuery(k=5))

    upload_bot.sender.command(
        "black circle", fake_slack.response_url("notin"), channel_id="C0000404"
    )

    message = answer_at(fake_slack, "notin")
    assert "invite me with `/invite @findimage`" in str(message["blocks"])
    assert result_paths(message) == [hit.document.path for hit in expected]
    assert not image_blocks(message)


def test_previews_for_a_photo_go_into_its_thread(upload_bot: Bot, fake_slack: FakeSlack) -> None:
    event = message_event("D0000007", files=[fake_slack.add_file("x.png", encode(gradient()))])

    upload_bot.sender.event(event)

    [answer] = fake_slack.wait_for("chat.postMessage")
    check_message(answer.params)
    [complete] = fake_slack.calls("files.completeUploadExternal")
    assert complete.params["channel_id"] == "D0000007"
    assert complete.params["thread_ts"] == event["ts"] == answer.params["thread_ts"]
    assert len(image_blocks(answer.params)) == 5
