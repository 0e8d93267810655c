"""The Slack Web API stand-in refuses what Slack refuses, so a malformed call fails a test.

Each behavior's source is cited beside it in tests/support/slack_api.py and block_kit.py.
"""

from __future__ import annotations

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from tests.support.slack_api import BOT_TOKEN, SIGN_IN_PAGE, FakeSlack


@pytest.fixture
def client(fake_slack: FakeSlack) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)


def error_of(call) -> dict:
    with pytest.raises(SlackApiError) as refused:
        call()
    return refused.value.response.data


def test_no_token_is_not_authed_and_a_wrong_one_is_invalid_auth(fake_slack: FakeSlack) -> None:
    assert error_of(WebClient(base_url=fake_slack.api_url).auth_test)["error"] == "not_authed"
    wrong = WebClient(token="xoxb-wrong", base_url=fake_slack.api_url)
    assert error_of(wrong.auth_test)["error"] == "invalid_auth"


def test_required_arguments_are_checked(client: WebClient) -> None:
    assert error_of(lambda: client.chat_postMessage(channel="", text="x"))["error"] == (
        "channel_not_found"
    )
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        assert error_of(lambda: client.chat_postMessage(channel="C1"))["error"] == "no_text"
    assert (
        error_of(lambda: client.chat_postEphemeral(channel="C1", user="", text="x"))["error"]
        == "user_not_in_channel"
    )


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([{"type": "divider"}] * 51, "/blocks"),
        (
            [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            "/blocks/0/text/text",
        ),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x", "emoji": True}}], "emoji"),
        ([{"type": "image", "image_url": "https://x/i.png"}], "/blocks/0/alt_text"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}
                    ],
                }
            ],
            "/blocks/0/elements/0/text/text",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "b"},
                            "value": "v" * 2001,
                        }
                    ],
                }
            ],
            "/blocks/0/elements/0/value",
        ),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], "/blocks/0/text/type"),
        (
            [{"type": "image", "slack_file": {"id": "F0NOTSHARED"}, "alt_text": "a"}],
            "/blocks/0/slack_file",
        ),
    ],
)
def test_blocks_slack_would_refuse_are_invalid_blocks(
    client: WebClient, fake_slack: FakeSlack, blocks: list, pointer: str
) -> None:
    refused = error_of(lambda: client.chat_postMessage(channel="C1", text="t", blocks=blocks))
    assert refused["error"] == "invalid_blocks"
    assert any(pointer in error for error in refused["errors"]), refused["errors"]

    sent = WebhookClient(fake_slack.response_url("blocks")).send(text="t", blocks=blocks)
    assert (sent.status_code, sent.body) == (400, "invalid_blocks")


def test_a_file_uploaded_without_a_channel_cannot_be_shown_and_one_shared_can(
    client: WebClient,
) -> None:
    def show(file_id: str) -> None:
        image = {"type": "image", "slack_file": {"id": file_id}, "alt_text": "a"}
        client.chat_postMessage(channel="C1", text="t", blocks=[image])

    private = client.files_upload_v2(content=b"x", filename="a.jpg")["files"][0]["id"]
    shared = client.files_upload_v2(content=b"x", filename="b.jpg", channel="D1")["files"][0]["id"]

    assert "invalid slack file" in error_of(lambda: show(private))["errors"][0]
    show(shared)


def test_a_response_url_takes_five_posts(fake_slack: FakeSlack) -> None:
    hook = WebhookClient(fake_slack.response_url("five"))

    statuses = [hook.send(text=f"post {n}").status_code for n in range(6)]

    assert statuses == [200] * 5 + [404]


def test_a_download_without_the_token_is_redirected_to_the_sign_in_page(
    fake_slack: FakeSlack,
) -> None:
    file = fake_slack.add_file("p.png", b"\x89PNG")

    bare = requests.get(file["url_private_download"], allow_redirects=False, timeout=10)
    followed = requests.get(file["url_private_download"], timeout=10)
    authorized = requests.get(
        file["url_private_download"],
        headers={"Authorization": f"Bearer {BOT_TOKEN}"},
        timeout=10,
    )

    assert bare.status_code == 302
    assert "/signin?redir=" in bare.headers["Location"]
    assert (followed.status_code, followed.content) == (200, SIGN_IN_PAGE)
    assert followed.headers["Content-Type"].startswith("text/html")
    assert (authorized.status_code, authorized.content) == (200, b"\x89PNG")
