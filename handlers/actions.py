"""The buttons under results: More like this, Share in channel, More results."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot.answers import failure_message, safely
from bot.blocks import sentence_message
from bot.payloads import ACTION_LIKE, ACTION_MORE, ACTION_SHARE, Page, SharedResult
from bot.replies import respond_safely
from bot.workers import BUSY

if TYPE_CHECKING:
    from bot.dependencies import SlackDependencies


class ResultButtons:
    """The buttons' listeners, with what they need to answer."""

    def __init__(self, dependencies: SlackDependencies):
        self._answers = dependencies.answers
        self._workers = dependencies.workers

    def another_page(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        """More results, or More like this: a private page of results."""
        ack()
        page = Page.from_value(action["value"])
        work = partial(self._answer_page, page, body["user"]["id"], respond)
        self._hand_off(respond, work, "button search")

    def share(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond
    ) -> None:
        """Share in channel: the result posted again, for everyone in the conversation."""
        ack()
        result = SharedResult.from_value(action["value"])
        work = partial(self._share, result, body["user"]["id"], _channel_id(body), respond)
        self._hand_off(respond, work, "share")

    def _answer_page(self, page: Page, user_id: str, respond: Respond) -> None:
        message = safely(lambda: self._answers.for_page(page, user_id), "button search")
        respond_safely(respond, message, response_type="ephemeral", replace_original=False)

    def _share(self, result: SharedResult, user_id: str, channel_id: str, respond: Respond) -> None:
        try:
            message = self._answers.share(result, user_id, channel_id)
        except Exception as exc:
            # A failure is for the sharer alone, never for the channel.
            failed = failure_message(exc, "share")
            respond_safely(respond, failed, response_type="ephemeral", replace_original=False)
            return
        if message is not None:
            respond_safely(respond, message, response_type="in_channel", replace_original=False)

    def _hand_off(self, respond: Respond, work: Callable[[], None], what: str) -> None:
        if not self._workers.submit(work, what):
            respond(response_type="ephemeral", replace_original=False, **sentence_message(BUSY))


def register(app: App, dependencies: SlackDependencies) -> None:
    buttons = ResultButtons(dependencies)
    app.action(ACTION_MORE)(buttons.another_page)
    # A result's buttons are numbered by its rank: findimage_like:3, findimage_share:3.
    app.action(re.compile(rf"^{ACTION_LIKE}:\d+$"))(buttons.another_page)
    app.action(re.compile(rf"^{ACTION_SHARE}:\d+$"))(buttons.share)


def _channel_id(body: dict[str, Any]) -> str:
    return body.get("channel", {}).get("id") or body.get("container", {}).get("channel_id", "")
