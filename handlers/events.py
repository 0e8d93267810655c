"""Photos posted to the bot: in a direct message, or in a channel with a mention of the bot."""

from __future__ import annotations

import logging
import re
from functools import partial
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.blocks import COMMAND, Message, sentence_message, usage_message
from bot.deduplication import AnsweredOnce
from bot.files import display_name
from bot.replies import answer_later, post_ephemeral_safely, post_safely

if TYPE_CHECKING:
    from bot.dependencies import SlackDependencies

log = logging.getLogger(__name__)

NO_PHOTO = (
    f"Send me a photo with your mention to find similar pictures, or use `{COMMAND} <description>`."
)
# A user mention as Slack writes it in message text: <@U012AB3CD> (https://api.slack.com/
# reference/surfaces/formatting#mentioning-users); the bot's own starts an app_mention.
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


class PhotoMessages:
    """The listeners for direct messages and mentions, with what they need to answer."""

    def __init__(self, dependencies: SlackDependencies):
        self._dependencies = dependencies
        # Slack sends one photo as several events (message.im and app_mention for a mention
        # in a direct message, each with its own event_id): each photo is answered once per
        # channel.
        self._photos = AnsweredOnce()

    def direct_message(self, event: dict[str, Any], client: WebClient) -> None:
        # Bolt drops the bot's own messages; other bots (and their file shares) are ours to skip.
        if event.get("channel_type") != "im" or event.get("bot_id"):
            return
        if event.get("files"):
            self._answer_photos(event, client)
            return
        channel = event["channel"]
        self._dependencies.workers.submit(
            lambda: post_safely(client, channel=channel, **usage_message()), "usage"
        )

    def mention(self, event: dict[str, Any], client: WebClient) -> None:
        if event.get("files"):
            self._answer_photos(event, client)
            return
        self._dependencies.workers.submit(partial(self._hint, client, event), "mention hint")

    def _answer_photos(self, event: dict[str, Any], client: WebClient) -> None:
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        # What was written with the photo, without the mention of the bot: `+ at night`.
        comment = _MENTION.sub(" ", event.get("text") or "")
        for file in event.get("files", []):
            if not self._photos.first_time(channel, file.get("id", "")):
                continue
            answer = partial(self._answer_photo, client, file, channel, thread_ts, comment)
            workers = self._dependencies.workers
            if not workers.submit_photo(answer):
                busy = sentence_message(workers.photo_wait())
                post_safely(client, channel=channel, thread_ts=thread_ts, **busy)

    def _answer_photo(
        self,
        client: WebClient,
        file: dict[str, Any],
        channel: str,
        thread_ts: str,
        comment: str,
    ) -> None:
        # Downloading needs Slack: while it cannot be reached, tried again later.
        answer_later(
            lambda: self._search_photo(file, channel, thread_ts, comment),
            lambda message: post_safely(client, channel=channel, thread_ts=thread_ts, **message),
            "photo search",
        )

    def _search_photo(
        self, file: dict[str, Any], channel: str, thread_ts: str, comment: str
    ) -> Message:
        files = self._dependencies.files
        file = files.describe(file)
        files.check(file)
        data = files.download(file)
        return self._dependencies.answers.for_photo(
            data, display_name(file), self._dependencies.top_k, channel, thread_ts, comment
        )

    def _hint(self, client: WebClient, event: dict[str, Any]) -> None:
        post_ephemeral_safely(
            client, channel=event["channel"], user=event["user"], **sentence_message(NO_PHOTO)
        )


def other_messages() -> None:
    """Edits, deletions and other message subtypes need no answer."""


def register(app: App, dependencies: SlackDependencies) -> None:
    messages = PhotoMessages(dependencies)
    app.event({"type": "message", "subtype": (None, "file_share")})(messages.direct_message)
    app.event("app_mention")(messages.mention)
    app.event("message")(other_messages)
