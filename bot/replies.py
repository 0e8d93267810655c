"""Sending an answer so that the user always gets one: a message Slack rejects is logged with
Slack's error and sent again without its pictures, the part most likely to be refused."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks import Message, without_images

log = logging.getLogger(__name__)


def respond_safely(respond: Respond, message: Message, **options: Any) -> None:
    """Post to the response URL; on a refusal (400 `invalid_blocks` and the like) retry bare."""
    sent = respond(**options, **message)
    if sent.status_code == 200:
        return
    log.warning("Slack refused a response_url post: HTTP %s %s", sent.status_code, sent.body)
    bare = without_images(message)
    if bare == message:
        return
    again = respond(**options, **bare)
    if again.status_code != 200:
        log.error(
            "Slack refused the answer without pictures too: HTTP %s %s",
            again.status_code,
            again.body,
        )


def post_safely(client: WebClient, **message: Any) -> None:
    """chat.postMessage; on `invalid_blocks` (or any refusal) retry once without pictures."""
    try:
        client.chat_postMessage(**message)
        return
    except SlackApiError as exc:
        error = exc.response.get("error")
        log.warning(
            "could not post to %s: %s %s",
            message.get("channel"),
            error,
            exc.response.get("errors", ""),
        )
        if error in {"not_in_channel", "channel_not_found", "is_archived"}:
            return
    bare = without_images(message)
    if bare == message:
        return
    try:
        client.chat_postMessage(**bare)
    except SlackApiError as exc:
        log.error("could not post without pictures either: %s", exc.response.get("error"))
