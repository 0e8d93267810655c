"""Socket Mode, told truthfully: "connected" only once Slack has said hello on the socket.

Slack's Socket Mode (https://api.slack.com/apis/socket-mode): apps.connections.open with the
app-level token gives a WebSocket URL; Slack's first message on the socket is
`{"type": "hello", ...}`; each envelope is acked by sending back its `envelope_id`; a
`{"type": "disconnect"}` warns that the connection will be replaced (slack_sdk reconnects).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError

from findimage.errors import BackendUnavailableError, ConfigError

log = logging.getLogger(__name__)

HELLO_SECONDS = 30.0
# apps.connections.open's errors that mean the token itself is wrong
# (https://docs.slack.dev/reference/methods/apps.connections.open, "Errors").
TOKEN_ERRORS = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "not_allowed_token_type",
    "missing_scope",
}
# slack_sdk logs a refused apps.connections.open at ERROR and raises; the raise becomes the
# one sentence that serve prints.
_SDK_WSS_FAILURE = "Failed to retrieve WSS URL"


def connect(app: App, app_token: str, hello_seconds: float | None = None) -> SocketModeHandler:
    """A Socket Mode connection on which Slack has said hello; a refused token is a
    configuration error naming SLACK_APP_TOKEN, a socket that never says hello is Slack
    unreachable."""
    hello_seconds = HELLO_SECONDS if hello_seconds is None else hello_seconds
    handler = SocketModeHandler(app, app_token)
    handler.client.logger.addFilter(_drop_wss_failure)
    hello = threading.Event()

    def on_message(client: Any, message: dict[str, Any], raw: str | None) -> None:
        if message.get("type") == "hello":
            if hello.is_set():
                log.info("reconnected to Slack in Socket Mode")
            hello.set()

    handler.client.message_listeners.append(on_message)
    try:
        handler.connect()
    except SlackApiError as exc:
        handler.close()
        error = exc.response.get("error")
        if error in TOKEN_ERRORS:
            raise ConfigError(
                f"Slack refused SLACK_APP_TOKEN ({error}): copy the app-level token (xapp-…, "
                "with connections:write) again from the Slack app's Basic Information page."
            ) from None
        raise BackendUnavailableError(
            f"Slack would not open a Socket Mode connection ({error}): try again later."
        ) from None
    except OSError as exc:
        handler.close()
        log.debug("apps.connections.open failed: %s", exc)
        raise BackendUnavailableError(
            "Slack cannot be reached: check this machine's network and proxy settings "
            "(and FINDIMAGE_SLACK_API_URL)."
        ) from None
    if not hello.wait(hello_seconds):
        handler.close()
        raise BackendUnavailableError(
            f"Slack's Socket Mode connection did not answer within {hello_seconds:g} s: "
            "check that this machine may open WebSocket connections to Slack (wss://, port 443)."
        )
    return handler


def _drop_wss_failure(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(_SDK_WSS_FAILURE)
