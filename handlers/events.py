"""Photos posted to the bot: in a direct message, or in a channel with a mention of the bot."""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient

from bot.blocks import COMMAND, sentence_message, usage_message
from bot.files import display_name
from bot.replies import answer_later, post_ephemeral_safely, post_safely

if TYPE_CHECKING:
    from bot.dependencies import SlackDependencies

log = logging.getLogger(__name__)

NO_PHOTO = (
    f"Send me a photo with your mention to find similar pictures, or use `{COMMAND} <description>`."
)
_ANSWERED_MEMORY = 4096
# A user mention as Slack writes it in message text: <@U012AB3CD> (https://api.slack.com/
# reference/surfaces/formatting#mentioning-users); the bot's own starts an app_mention.
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


class AnsweredOnce:
    """Remembers recent keys, so each is acted on once however often it is delivered."""

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


def once_per_event(seen: AnsweredOnce) -> Callable[..., BoltResponse | None]:
    """Middleware: an event is handled once per `event_id`, the identity Slack keeps on each
    redelivery (https://api.slack.com/apis/events-api#retries). A first delivery that only
    ever arrives as a retry, as during a restart, is still handled."""

    def middleware(request: BoltRequest, next: Callable[[], None]) -> BoltResponse | None:
        event_id = request.body.get("event_id") if isinstance(request.body, dict) else None
        if event_id and not seen.first_time("event", str(event_id)):
            retry = request.headers.get("x-slack-retry-num", ["-"])[0]
            log.info("event %s delivered again (retry %s); already handled", event_id, retry)
            return BoltResponse(status=200, body="")
        next()
        return None

    return middleware


def register(app: App, dependencies: SlackDependencies) -> None:
    app.use(once_per_event(AnsweredOnce()))
    # Slack sends one photo as several events (message.im and app_mention for a mention in a
    # direct message, each with its own event_id): each photo is answered once per channel.
    photos = AnsweredOnce()
    workers = dependencies.workers

    def answer_photos(event: dict[str, Any], client: WebClient) -> None:
        channel, ts = event["channel"], event["ts"]
        thread_ts = event.get("thread_ts") or ts
        # What was written with the photo, without the mention of the bot: `+ at night`.
        comment = _MENTION.sub(" ", event.get("text") or "")
        for file in event.get("files", []):
            if not photos.first_time(channel, file.get("id", "")):
                continue

            def answer(file: dict[str, Any] = file) -> None:
                # Downloading needs Slack: while it cannot be reached, tried again later.
                answer_later(
                    lambda: _answer_photo(dependencies, file, channel, thread_ts, comment),
                    lambda message: post_safely(
                        client, channel=channel, thread_ts=thread_ts, **message
                    ),
                    "photo search",
                )

            if not workers.submit_photo(answer):
                busy = sentence_message(workers.photo_wait())
                post_safely(client, channel=channel, thread_ts=thread_ts, **busy)

    @app.event({"type": "message", "subtype": (None, "file_share")})
    def direct_message(event: dict[str, Any], client: WebClient) -> None:
        # Bolt drops the bot's own messages; other bots (and their file shares) are ours to skip.
        if event.get("channel_type") != "im" or event.get("bot_id"):
            return
        if event.get("files"):
            answer_photos(event, client)
            return
        channel = event["channel"]
        workers.submit(lambda: post_safely(client, channel=channel, **usage_message()), "usage")

    @app.event("app_mention")
    def mention(event: dict[str, Any], client: WebClient) -> None:
        if event.get("files"):
            answer_photos(event, client)
            return

        def hint() -> None:
            post_ephemeral_safely(
                client, channel=event["channel"], user=event["user"], **sentence_message(NO_PHOTO)
            )

        workers.submit(hint, "mention hint")

    @app.event("message")
    def other_messages() -> None:
        """Edits, deletions and other message subtypes need no answer."""


def _answer_photo(
    dependencies: SlackDependencies,
    file: dict[str, Any],
    channel: str,
    thread_ts: str,
    comment: str,
):
    file = dependencies.files.describe(file)
    dependencies.files.check(file)
    data = dependencies.files.download(file)
    return dependencies.answers.for_photo(
        data, display_name(file), dependencies.top_k, channel, thread_ts, comment
    )
