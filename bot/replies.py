"""Sending an answer so that the user always gets one: through the outbox of the app whose
request it answers (bot.delivery), which retries what Slack could not take yet and sends a
message Slack refuses again without its pictures, the part most likely to be refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.blocks import Message
from bot.delivery import current_outbox


def respond_safely(respond: Respond, message: Message, **options: Any) -> None:
    """Post to the response URL, until Slack takes it or the URL's 30 minutes are over."""
    current_outbox().respond(respond, message, **options)


def post_safely(client: WebClient, **message: Any) -> None:
    """chat.postMessage; where the bot is not a member, the asker is told in a DM."""
    current_outbox().post(client, **message)


def post_ephemeral_safely(client: WebClient, **message: Any) -> None:
    """chat.postEphemeral to `user` in `channel`."""
    current_outbox().post_ephemeral(client, **message)


def publish_safely(client: WebClient, user_id: str, view: dict[str, Any]) -> None:
    """views.publish, for the Home tab."""
    current_outbox().publish(client, user_id, view)


def answer_later(
    compute: Callable[[], Message], deliver: Callable[[Message], None], what: str
) -> None:
    """Build an answer that needs Slack itself (a photo to download), tried again off the
    workers while Slack cannot be reached, then `deliver` it."""
    current_outbox().answer_later(compute, deliver, what)
