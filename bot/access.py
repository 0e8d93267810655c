"""Who may use the bot: FINDIMAGE_ALLOWED_USERS and FINDIMAGE_ALLOWED_CHANNELS.

One Bolt middleware checks every request before any listener sees it, so no surface (the
slash command, buttons, direct messages and photos, mentions, the Home tab) can forget the
check. Anyone not allowed gets one polite sentence and nothing from the index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import BoltContext, BoltResponse
from slack_sdk import WebClient

from bot.blocks import sentence_message
from bot.replies import post_ephemeral_safely, post_safely, publish_safely, respond_safely
from bot.workers import AnswerWorkers

log = logging.getLogger(__name__)

REFUSAL = (
    "Sorry, I only answer the people and channels my admins have allowed. "
    "Ask them to add you if you need me."
)


@dataclass(frozen=True)
class AccessPolicy:
    """Empty sets mean everyone and everywhere."""

    users: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()

    @property
    def is_open(self) -> bool:
        """No list is set: everyone, everywhere."""
        return not self.users and not self.channels

    def allows(self, user_id: str | None, channel_id: str | None) -> bool:
        if self.users and user_id not in self.users:
            return False
        # The Home tab is in no conversation: with a channel list it is closed too, as the
        # bot then answers only where the admins chose.
        return not self.channels or channel_id in self.channels


def access_middleware(
    policy: AccessPolicy, workers: AnswerWorkers
) -> Callable[..., BoltResponse | None]:
    """Lets allowed requests through; acks the rest at once and refuses them on a worker."""

    def middleware(
        body: dict[str, Any], context: BoltContext, client: WebClient, next: Callable[[], None]
    ) -> BoltResponse | None:
        event = body.get("event") or {}
        if event and not event.get("user"):
            # Another bot's event is never answered: two bots could answer each other forever.
            # Other events without a user (edits, deletions) pass only where everyone may use
            # the bot: an allow-list cannot vouch for a user it is not told.
            if event.get("bot_id") or not policy.is_open:
                log.info(
                    "ignored a %s event without a user (bot %s) in %s",
                    event.get("type"),
                    event.get("bot_id") or "-",
                    event.get("channel") or "-",
                )
                return BoltResponse(status=200, body="")
            next()
            return None
        home = event.get("type") == "app_home_opened"
        channel_id = None if home else context.channel_id
        if policy.allows(context.user_id, channel_id):
            next()
            return None
        log.info(
            "refused a request from user %s in %s: not in the allow-lists",
            context.user_id,
            channel_id or "the Home tab",
        )
        if body.get("command"):
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": REFUSAL})
        refuse = _refusal(body, event, context, client)
        if refuse is not None:
            workers.submit(refuse, "refusal")
        return BoltResponse(status=200, body="")

    return middleware


def _refusal(
    body: dict[str, Any], event: dict[str, Any], context: BoltContext, client: WebClient
) -> Callable[[], None] | None:
    """How to tell this person, for each surface; None where nothing should be said."""
    user_id = context.user_id
    if user_id is None:
        return None
    kind = event.get("type")
    refusal = sentence_message(REFUSAL)
    if body.get("type") == "block_actions" and context.respond is not None:
        respond = context.respond
        return lambda: respond_safely(
            respond, refusal, response_type="ephemeral", replace_original=False
        )
    if kind == "app_home_opened" and event.get("tab") == "home":
        view = {"type": "home", "blocks": refusal["blocks"]}
        return lambda: publish_safely(client, user_id, view)
    if kind == "app_mention":
        channel = event["channel"]
        return lambda: post_ephemeral_safely(client, channel=channel, user=user_id, **refusal)
    if kind == "message" and event.get("channel_type") == "im":
        if event.get("subtype") not in (None, "file_share"):
            return None
        channel, ts = event["channel"], event.get("thread_ts") or event["ts"]
        return lambda: post_safely(client, channel=channel, thread_ts=ts, **refusal)
    return None
