"""Requests to the bot shaped and signed the way Slack sends them."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import requests

from tests.support.slack_api import BOT_USER_ID, TEAM_ID

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APP_ID = "A0000001"
USER_ID = "U0000042"
_event_ids = itertools.count(1)


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature: HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackSender:
    """Posts to the bot's /slack/events as Slack does."""

    def __init__(self, events_url: str, secret: str = SIGNING_SECRET):
        self.events_url = events_url
        self.secret = secret

    def post(
        self,
        body: bytes,
        content_type: str,
        timestamp: int | None = None,
        signed: bool = True,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        sent = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, **(headers or {})}
        if signed:
            sent["X-Slack-Signature"] = slack_signature(self.secret, stamp, body)
        return requests.post(self.events_url, data=body, headers=sent, timeout=30)

    def command(
        self, text: str, response_url: str, channel_id: str = "C0000001", **kwargs: Any
    ) -> requests.Response:
        form = command_form(text, response_url, channel_id)
        return self.post(urlencode(form).encode(), "application/x-www-form-urlencoded", **kwargs)

    def event(
        self, event: dict[str, Any], event_id: str | None = None, **kwargs: Any
    ) -> requests.Response:
        envelope = event_envelope(event, event_id)
        return self.post(json.dumps(envelope).encode(), "application/json", **kwargs)

    def button(
        self,
        button: dict[str, Any],
        response_url: str,
        channel_id: str = "C0000001",
        **kwargs: Any,
    ) -> requests.Response:
        """A block_actions payload for a click on `button`, as rendered by the bot."""
        payload = {
            "type": "block_actions",
            "user": {"id": USER_ID, "username": "alex", "name": "alex", "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": "deprecated-verification-token",
            "container": {
                "type": "message",
                "message_ts": "1700000000.000100",
                "channel_id": channel_id,
                "is_ephemeral": True,
            },
            "trigger_id": new_trigger_id(),
            "team": {"id": TEAM_ID, "domain": "test"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": "general"},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [
                {
                    "action_id": button["action_id"],
                    "block_id": "result:1",
                    "text": button["text"],
                    "value": button["value"],
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(body, "application/x-www-form-urlencoded", **kwargs)


def new_trigger_id() -> str:
    """A trigger id as Slack sends one with every slash command and click: each invocation
    gets its own (https://api.slack.com/interactivity/handling#modal_responses: "a
    trigger_id ... unique to that interaction"), so two commands a person types alike in the
    same second never reach the app as the same body."""
    return f"{secrets.randbelow(10**11)}.738474920.{secrets.token_hex(16)}"


def command_form(text: str, response_url: str, channel_id: str = "C0000001") -> dict[str, str]:
    """A slash command as Slack posts it (https://api.slack.com/interactivity/slash-commands)."""
    return {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "test",
        "channel_id": channel_id,
        "channel_name": "general",
        "user_id": USER_ID,
        "user_name": "alex",
        "command": "/findimage",
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": new_trigger_id(),
    }


def event_envelope(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """An Events API envelope (https://api.slack.com/apis/events-api#callback-field); a
    redelivery carries the same event_id."""
    return {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):08d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def message_event(
    channel: str, files: list[dict[str, Any]] | None = None, text: str = "", **extra: Any
) -> dict[str, Any]:
    """A `message` event as message.im delivers it; with files it is a file_share."""
    ts = f"{time.time():.6f}"
    event: dict[str, Any] = {
        "type": "message",
        "text": text,
        "user": USER_ID,
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
        "channel_type": "im",
        **extra,
    }
    if files:
        event.update(subtype="file_share", files=files, upload=True, display_as_bot=False)
    return event


def mention_event(channel: str, files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    ts = f"{time.time():.6f}"
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": USER_ID,
        "text": f"<@{BOT_USER_ID}> is this one in the library?",
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
    }
    if files:
        event["files"] = files
    return event
