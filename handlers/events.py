"""Photos posted to the bot: in a direct message, or in a channel with a mention of the bot."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.answers import safely
from bot.blocks import COMMAND, sentence_message, usage_message
from bot.slack_files import display_name

if TYPE_CHECKING:
    from bot.slack_app import BotOptions

log = logging.getLogger(__name__)

NO_PHOTO = (
    f"Send me a photo with your mention to find similar pictures, or use `{COMMAND} <description>`."
)
_ANSWERED_MEMORY = 2048


class AnsweredOnce:
    """Remembers recent (channel, message, file) keys, so each photo is answered once even
    when Slack delivers the same message as two events."""

    def __init__(self, size: int = _ANSWERED_MEMORY):
        self._keys: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_time(self, *key: str) -> bool:
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True


def register(app: App, options: BotOptions) -> None:
    answered = AnsweredOnce()

    def answer_photos(event: dict[str, Any], client: WebClient) -> None:
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        for file in event.get("files", []):
            if not answered.first_time(channel, ts, file.get("id", "")):
                continue
            message = safely(
                lambda file=file: _answer_photo(options, file, channel, thread_ts),
                "photo search",
            )
            _post(client, channel=channel, thread_ts=thread_ts, **message)

    @app.event({"type": "message", "subtype": (None, "file_share")})
    def direct_message(event: dict[str, Any], client: WebClient) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id"):
            return
        if event.get("files"):
            answer_photos(event, client)
        elif answered.first_time(event["channel"], event["ts"]):
            _post(client, channel=event["channel"], **usage_message())

    @app.event("app_mention")
    def mention(event: dict[str, Any], client: WebClient) -> None:
        if event.get("files"):
            answer_photos(event, client)
            return
        try:
            client.chat_postEphemeral(
                channel=event["channel"], user=event["user"], **sentence_message(NO_PHOTO)
            )
        except SlackApiError as exc:
            log.warning("could not answer a mention: %s", exc.response.get("error"))

    @app.event("message")
    def other_messages() -> None:
        """Edits, deletions and other message subtypes need no answer."""


def _answer_photo(options: BotOptions, file: dict[str, Any], channel: str, thread_ts: str):
    file = options.files.describe(file)
    options.files.check(file)
    data = options.files.download(file)
    return options.answers.for_photo(data, display_name(file), options.top_k, channel, thread_ts)


def _post(client: WebClient, **message: Any) -> None:
    try:
        client.chat_postMessage(**message)
    except SlackApiError as exc:
        log.warning("could not post to %s: %s", message.get("channel"), exc.response.get("error"))
