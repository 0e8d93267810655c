"""Socket Mode told truthfully (issue 21, item 5): connected only after Slack's hello, a
refused app token named, a socket that never answers not reported as connected."""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot import socket_mode
from bot.app import build_workers, create_app, web_client_retry_handlers
from findimage.cli import main
from tests.handlers.test_slack_socket_mode import SocketModeSlack
from tests.support.slack_api import APP_TOKEN, BOT_TOKEN, FakeSlack
from tests.support.slack_bot import IndexedLibrary, bot_settings
from tests.support.slack_requests import SIGNING_SECRET, command_form


@pytest.fixture
def socket_slack(fake_slack: FakeSlack) -> Iterator[SocketModeSlack]:
    with SocketModeSlack() as server:
        fake_slack.socket_url = server.url
        yield server
        fake_slack.socket_url = ""


def test_connect_returns_after_hello_and_a_command_is_acked_and_answered(
    slack_library: IndexedLibrary,
    fake_slack: FakeSlack,
    socket_slack: SocketModeSlack,
    trained_clip: Path,
) -> None:
    settings = bot_settings(
        trained_clip, slack_library.root, slack_library.data_dir, slack_app_token=APP_TOKEN
    )
    client = WebClient(
        token=BOT_TOKEN, base_url=fake_slack.api_url, retry_handlers=web_client_retry_handlers()
    )
    workers = build_workers(settings)
    app = create_app(settings, slack_library.service(), client=client, workers=workers)

    handler = socket_mode.connect(app, APP_TOKEN, hello_seconds=30)
    try:
        socket_slack.outbox.put(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": command_form("red circle", fake_slack.response_url("socket-1")),
            }
        )
        assert socket_slack.ack_for("env-1")["envelope_id"] == "env-1"
        [answer] = fake_slack.wait_for(
            "response", where=lambda r: r.path.endswith("/socket-1"), timeout=120
        )
    finally:
        handler.close()
        workers.shutdown(timeout=30)
    assert "red-circle-0000.png" in answer.params["text"]


@pytest.fixture
def socket_env(
    findimage_env: dict[str, str], fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    monkeypatch.setenv("FINDIMAGE_SLACK_API_URL", fake_slack.api_url)


def test_a_refused_app_token_is_a_configuration_error_naming_slack_app_token(
    socket_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-not-this-one")

    assert main(["serve"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("findimage: Slack refused SLACK_APP_TOKEN (invalid_auth): "), err
    assert err.count("\n") == 1
    assert "xapp-not-this-one" not in err + caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_socket_that_never_says_hello_is_not_reported_as_connected(
    socket_env: None,
    fake_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the WebSocket is refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    fake_slack.socket_url = f"ws://127.0.0.1:{closed}/link/?ticket=t"
    monkeypatch.setattr(socket_mode, "HELLO_SECONDS", 2.0)
    interrupt, terminate = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    assert main(["serve"]) == 1

    # The process's own Ctrl-C and SIGTERM again: the bot's stop handlers were put back (a
    # later SIGINT in this process raised the bot's stop exception before).
    assert signal.getsignal(signal.SIGINT) is interrupt
    assert signal.getsignal(signal.SIGTERM) is terminate

    err = capsys.readouterr().err
    assert "connected" not in err
    assert err.startswith("findimage: Slack's Socket Mode connection did not answer within 2 s"), (
        err
    )
