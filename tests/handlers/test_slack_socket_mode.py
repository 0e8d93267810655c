"""Socket Mode: Slack's envelopes over a websocket, acked over the socket, answered as in HTTP.

A local websocket server (the `websockets` package) plays Slack's Socket Mode endpoint, and
the Web API stand-in's apps.connections.open points the bot at it. Envelope shapes from
https://api.slack.com/apis/socket-mode ("Events API", "slash commands": an envelope_id, a
type and the usual payload; the app acks by sending back {"envelope_id": ...}).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from bot.app import build_workers, create_app, web_client_retry_handlers
from tests.support.pictures import draw_shape, encode
from tests.support.slack_api import APP_TOKEN, BOT_TOKEN, FakeSlack
from tests.support.slack_bot import IndexedLibrary, bot_settings
from tests.support.slack_requests import command_form, event_envelope, message_event
from tests.support.waiting import CEILING_SECONDS


class SocketModeSlack:
    """Sends queued envelopes to whoever connects, and collects what comes back."""

    def __init__(self) -> None:
        self.outbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self._server = serve(self._connection, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link/?ticket=t"

    def _connection(self, websocket: ServerConnection) -> None:
        websocket.send(json.dumps({"type": "hello", "num_connections": 1}))
        reader = threading.Thread(target=self._read, args=(websocket,), daemon=True)
        reader.start()
        while reader.is_alive():
            try:
                envelope = self.outbox.get(timeout=0.1)
            except queue.Empty:
                continue
            websocket.send(json.dumps(envelope))

    def _read(self, websocket: ServerConnection) -> None:
        try:
            for message in websocket:
                self.inbox.put(json.loads(message))
        except ConnectionClosed:
            pass  # the bot hung up: the test is over

    def ack_for(self, envelope_id: str, timeout: float = CEILING_SECONDS) -> dict[str, Any]:
        while True:
            message = self.inbox.get(timeout=timeout)
            if message.get("envelope_id") == envelope_id:
                return message

    def __enter__(self) -> SocketModeSlack:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()


@pytest.fixture
def socket_slack(fake_slack: FakeSlack) -> Iterator[SocketModeSlack]:
    with SocketModeSlack() as socket_slack:
        fake_slack.socket_url = socket_slack.url
        yield socket_slack
        fake_slack.socket_url = ""


def test_a_command_and_a_photo_over_socket_mode_are_acked_on_the_socket_and_answered(
    slack_library: IndexedLibrary,
    fake_slack: FakeSlack,
    socket_slack: SocketModeSlack,
    trained_clip,
) -> None:
    # No signing secret: Socket Mode's envelopes are not signed, and the set-up asks for none.
    settings = bot_settings(
        trained_clip,
        slack_library.root,
        slack_library.data_dir,
        slack_app_token=APP_TOKEN,
        slack_signing_secret=None,
    )
    client = WebClient(
        token=BOT_TOKEN, base_url=fake_slack.api_url, retry_handlers=web_client_retry_handlers()
    )
    workers = build_workers(settings)
    app = create_app(settings, slack_library.service(), client=client, workers=workers)
    handler = SocketModeHandler(app, APP_TOKEN)
    handler.connect()
    try:
        socket_slack.outbox.put(
            {
                "envelope_id": "env-command",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": command_form("red circle", fake_slack.response_url("socket")),
            }
        )
        photo = fake_slack.add_file("s.png", encode(draw_shape("red", "circle", (73, 71))))
        event = message_event("D0000077", files=[photo])
        socket_slack.outbox.put(
            {
                "envelope_id": "env-photo",
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": 0,
                "retry_reason": "",
                "payload": event_envelope(event),
            }
        )

        assert socket_slack.ack_for("env-command")["envelope_id"] == "env-command"
        assert socket_slack.ack_for("env-photo")["envelope_id"] == "env-photo"
        [answer] = fake_slack.wait_for("response", where=lambda r: r.path.endswith("/socket"))
        [posted] = fake_slack.wait_for(
            "chat.postMessage", where=lambda r: r.params.get("thread_ts") == event["ts"]
        )
    finally:
        handler.close()
        workers.shutdown(timeout=30)
    assert answer.params["response_type"] == "ephemeral"
    assert "red-circle-0000.png" in answer.params["text"]
    lines = [b["text"]["text"] for b in posted.params["blocks"] if b["type"] == "section"]
    assert lines[1].startswith("1. red-circle-0000.png ")
    [opened] = fake_slack.calls("apps.connections.open")
    assert opened.headers["Authorization"] == f"Bearer {APP_TOKEN}"
