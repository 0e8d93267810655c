"""Talking to a served bot the way Slack does, and reading what it posted back."""

from __future__ import annotations

from typing import Any

from bot.payloads import SharedResult
from tests.support.block_kit import buttons, check_message
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import Bot
from tests.support.slack_requests import USER_ID

# The asker's direct-message channel with the bot.
DM = "D0000001"

# Slack's limit for an ack; on 2 busy cores the bot's acks take a small part of it.
ACK_DEADLINE_SECONDS = 3.0


def ask(bot: Bot, fake: FakeSlack, text: str, name: str) -> dict[str, Any]:
    """Run `/findimage text` and return the one message posted to its response URL."""
    response = bot.sender.command(text, fake.response_url(name))
    assert response.status_code == 200
    return answer_at(fake, name)


def answer_at(fake: FakeSlack, name: str) -> dict[str, Any]:
    [posted] = fake.wait_for("response", where=lambda r: r.path.endswith("/" + name))
    check_message(posted.params)
    return posted.params


def result_paths(message: dict[str, Any]) -> list[str]:
    return [
        SharedResult.from_value(b["value"]).path
        for b in buttons(message)
        if b["action_id"].startswith("findimage_share:")
    ]


def image_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [block for block in message["blocks"] if block["type"] == "image"]


def button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    [found] = [b for b in buttons(message) if b["action_id"] == action_id]
    return found


def posted_in_thread(fake: FakeSlack, thread_ts: str, count: int = 1) -> list[dict[str, Any]]:
    found = fake.wait_for(
        "chat.postMessage", count, where=lambda r: r.params.get("thread_ts") == thread_ts
    )
    for recorded in found:
        check_message(recorded.params)
    return [recorded.params for recorded in found]


def home_opened(tab: str = "home") -> dict:
    return {
        "type": "app_home_opened",
        "user": USER_ID,
        "channel": DM,
        "tab": tab,
        "event_ts": "1700000000.000100",
    }
