"""The buttons under results: More like this, Share in channel, More results."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot.answers import safely
from bot.blocks import ACTION_LIKE, ACTION_MORE, ACTION_SHARE, Page, SharedResult, shared_message

if TYPE_CHECKING:
    from bot.slack_app import BotOptions


def register(app: App, options: BotOptions) -> None:
    answers = options.answers

    @app.action(re.compile(rf"^{ACTION_LIKE}:\d+$"))
    @app.action(ACTION_MORE)
    def another_page(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        ack()
        page = Page.from_value(action["value"])
        channel_id = _channel_id(body)
        thread_ts = body.get("container", {}).get("thread_ts")
        message = safely(lambda: answers.for_page(page, channel_id, thread_ts), "button search")
        respond(response_type="ephemeral", replace_original=False, **message)

    @app.action(re.compile(rf"^{ACTION_SHARE}:\d+$"))
    def share(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        result = SharedResult.from_value(action["value"])
        source = answers.previews.for_shared(result.doc_id, result.uploaded_file)
        message = shared_message(result, body["user"]["id"], source)
        respond(response_type="in_channel", replace_original=False, **message)


def _channel_id(body: dict[str, Any]) -> str:
    return body.get("channel", {}).get("id") or body.get("container", {}).get("channel_id", "")
