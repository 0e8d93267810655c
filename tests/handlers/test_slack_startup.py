"""`findimage serve` refuses what cannot work, in one line and no ERROR lines before it."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator

import pytest

from findimage.cli import main
from tests.support.slack_api import BOT_TOKEN, FakeSlack
from tests.support.slack_requests import SIGNING_SECRET


@pytest.fixture
def slack_env(
    findimage_env: dict[str, str], fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    values = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "FINDIMAGE_SLACK_API_URL": fake_slack.api_url,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def run_serve(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Callable[[], tuple[int, str]]:
    """`findimage serve`'s exit status and what it printed, after checking that it logged no
    ERROR line on the way (the printed sentence is the whole story)."""

    def run() -> tuple[int, str]:
        code = main(["serve", "--host", "127.0.0.1"])
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, errors
        return code, capsys.readouterr().err

    return run


def test_a_port_in_use_names_findimage_port_in_one_line(
    slack_env: dict[str, str],
    busy_port: int,
    monkeypatch: pytest.MonkeyPatch,
    run_serve: Callable[[], tuple[int, str]],
) -> None:
    monkeypatch.setenv("FINDIMAGE_PORT", str(busy_port))

    code, err = run_serve()

    assert code == 2
    assert err == (
        f"findimage: Port {busy_port} is in use by another program: "
        "set FINDIMAGE_PORT to a free port.\n"
    )


@pytest.mark.parametrize("name", ["SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"])
@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_secret_is_a_configuration_error(
    slack_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    run_serve: Callable[[], tuple[int, str]],
    busy_port: int,
    name: str,
    blank: str,
) -> None:
    monkeypatch.setenv(name, blank)
    # Were the blank accepted, serve would stop at the busy port instead, not listen for ever.
    monkeypatch.setenv("FINDIMAGE_PORT", str(busy_port))

    code, err = run_serve()

    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith(f"findimage: {name} is "), err


def test_a_refused_bot_token_is_one_line(
    slack_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    run_serve: Callable[[], tuple[int, str]],
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-not-this-one")

    code, err = run_serve()

    assert code == 2
    assert err == (
        "findimage: Slack refused SLACK_BOT_TOKEN: copy the bot token again from the Slack app.\n"
    )


def test_an_unreachable_web_api_is_one_line(
    slack_env: dict[str, str],
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    run_serve: Callable[[], tuple[int, str]],
) -> None:
    monkeypatch.setenv("FINDIMAGE_SLACK_API_URL", f"http://127.0.0.1:{closed_port}/api/")

    code, err = run_serve()

    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("findimage: Slack cannot be reached"), err
