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
from slack_sdk.errors import SlackApiError

from bot.blocks import sentence_message
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

    def allows(self, user_id: str | None, channel_id: str | None) -> bool:
        if self.users and user_id not in self.users:
            return False
        # The Home tab is in no conversation: with a channel list it is closed too, as the
        # bot then answers only where the admins chose.
        return not self.channels or channel_id in self.channels


def parse_ids(value: str) -> frozenset[str]:
    """`U1, U2 ,U3` -> {"U1", "U2", "U3"}; blanks are ignored."""
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def access_middleware(
    policy: AccessPolicy, workers: AnswerWorkers
) -> Callable[..., BoltResponse | None]:
    """Lets allowed requests through; acks the rest at once and refuses them on a worker."""

    def middleware(
        body: dict[str, Any], context: BoltContext, client: WebClient, next: Callable[[], None]
    ) -> BoltResponse | None:
        event = body.get("event") or {}
        if event and not event.get("user"):
            # Slack's own and bots' events: the listeners decide, nobody to refuse.
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
    if body.get("type") == "block_actions" and context.respond is not None:
        respond = context.respond
        return lambda: _safely(
            lambda: respond(text=REFUSAL, response_type="ephemeral", replace_original=False)
        )
    if kind == "app_home_opened" and event.get("tab") == "home":
        view = {"type": "home", "blocks": sentence_message(REFUSAL)["blocks"]}
        return lambda: _safely(lambda: client.views_publish(user_id=user_id, view=view))
    if kind == "app_mention":
        channel = event["channel"]
        return lambda: _safely(
            lambda: client.chat_postEphemeral(channel=channel, user=user_id, text=REFUSAL)
        )
    if kind == "message" and event.get("channel_type") == "im" and not event.get("bot_id"):
        if event.get("subtype") not in (None, "file_share"):
            return None
        channel, ts = event["channel"], event.get("thread_ts") or event["ts"]
        return lambda: _safely(
            lambda: client.chat_postMessage(channel=channel, thread_ts=ts, text=REFUSAL)
        )
    return None


def _safely(call: Callable[[], Any]) -> None:
    try:
        call()
    except SlackApiError as exc:
        log.warning("could not send a refusal: %s", exc.response.get("error"))
