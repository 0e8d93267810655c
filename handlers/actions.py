"""The buttons under results: More like this, Share in channel, More results."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot.answers import failure_message, safely
from bot.blocks import (
    ACTION_LIKE,
    ACTION_MORE,
    ACTION_SHARE,
    Page,
    SharedResult,
    sentence_message,
)
from bot.replies import respond_safely
from bot.workers import BUSY

if TYPE_CHECKING:
    from bot.dependencies import SlackDependencies


def register(app: App, dependencies: SlackDependencies) -> None:
    answers = dependencies.answers

    def hand_off(respond: Respond, work: Callable[[], None], what: str) -> None:
        if not dependencies.workers.submit(work, what):
            respond(response_type="ephemeral", replace_original=False, **sentence_message(BUSY))

    @app.action(re.compile(rf"^{ACTION_LIKE}:\d+$"))
    @app.action(ACTION_MORE)
    def another_page(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        ack()
        page = Page.from_value(action["value"])
        user_id = body["user"]["id"]

        def answer() -> None:
            message = safely(lambda: answers.for_page(page, user_id), "button search")
            respond_safely(respond, message, response_type="ephemeral", replace_original=False)

        hand_off(respond, answer, "button search")

    @app.action(re.compile(rf"^{ACTION_SHARE}:\d+$"))
    def share(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        result = SharedResult.from_value(action["value"])
        user_id = body["user"]["id"]
        channel_id = _channel_id(body)

        def answer() -> None:
            try:
                message = answers.share(result, user_id, channel_id)
            except Exception as exc:
                # A failure is for the sharer alone, never for the channel.
                failed = failure_message(exc, "share")
                respond_safely(respond, failed, response_type="ephemeral", replace_original=False)
                return
            if message is not None:
                respond_safely(respond, message, response_type="in_channel", replace_original=False)

        hand_off(respond, answer, "share")


def _channel_id(body: dict[str, Any]) -> str:
    return body.get("channel", {}).get("id") or body.get("container", {}).get("channel_id", "")
