"""`findimage web` as a user starts it: the address it prints, and what it refuses."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import requests

from findimage.cli import main
from tests.support.cli import run_in_process
from tests.support.pictures import make_library
from tests.support.web_page import web_process


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "example.com", "::"])
def test_any_address_but_this_computers_own_is_refused_before_anything_starts(
    findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str], host: str
) -> None:
    code, out, err = run_in_process(capsys, "web", "--host", host)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Without Sign in with Slack" in err and "127.0.0.1" in err


def test_a_port_in_use_names_the_setting(
    findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    make_library(tmp_path / "library", 2)
    assert main(["index", str(tmp_path / "library")]) == 0
    capsys.readouterr()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_in_process(capsys, "web", "--port", str(port))
    assert code == 2
    assert f"Port {port}" in err and "FINDIMAGE_WEB_PORT" in err and err.count("\n") == 1


def test_it_prints_its_address_and_serves_the_page_there(
    findimage_env: dict[str, str], tmp_path: Path
) -> None:
    make_library(tmp_path / "library", 3)
    assert main(["index", str(tmp_path / "library")]) == 0
    with web_process(dict(os.environ), tmp_path) as web:
        page = requests.get(web.url + "/", timeout=120)
        assert page.ok and "<title>findimage</title>" in page.text
        # Ctrl-C is how the page is stopped: quietly, and with success.
        code, printed = web.interrupt()
    assert code == 0, printed
    assert "Traceback" not in printed and "interrupted" not in printed


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        (
            {"SLACK_CLIENT_ID": "1.2"},
            "Sign in with Slack needs SLACK_CLIENT_SECRET too: copy it from the Slack app's "
            "Basic Information page.",
        ),
        (
            {"SLACK_CLIENT_SECRET": "s"},
            "Sign in with Slack needs SLACK_CLIENT_ID too: copy it from the Slack app's "
            "Basic Information page.",
        ),
        (
            {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s"},
            "Sign in with Slack needs FINDIMAGE_PUBLIC_BASE_URL: the address people open the "
            "page at, where Slack sends them back.",
        ),
        (
            {
                "SLACK_CLIENT_ID": "1.2",
                "SLACK_CLIENT_SECRET": "s",
                "FINDIMAGE_PUBLIC_BASE_URL": "https://find.example",
            },
            "Sign in with Slack needs the team's workspace: set FINDIMAGE_SLACK_TEAM_ID "
            "(or SLACK_BOT_TOKEN, to ask Slack).",
        ),
    ],
)
@pytest.mark.parametrize("command", ["web", "serve"])
def test_sign_in_half_set_up_is_one_sentence_before_anything_starts(
    findimage_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    sentence: str,
    command: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_in_process(capsys, command, "--host", "0.0.0.0")
    assert (code, out, err) == (2, "", f"findimage: {sentence}\n")


def test_behind_sign_in_it_listens_on_any_address_and_sends_visitors_to_slack(
    findimage_env: dict[str, str], tmp_path: Path
) -> None:
    make_library(tmp_path / "library", 3)
    assert main(["index", str(tmp_path / "library")]) == 0
    env = {
        **os.environ,
        "SLACK_CLIENT_ID": "1.2",
        "SLACK_CLIENT_SECRET": "secret",
        "FINDIMAGE_PUBLIC_BASE_URL": "https://find.example",
        "FINDIMAGE_SLACK_TEAM_ID": "T0000001",
    }
    with web_process(env, tmp_path, "--host", "0.0.0.0") as web:
        assert web.url.startswith("http://0.0.0.0:")
        port = web.url.rsplit(":", 1)[1]
        # Any Host is answered behind sign-in, and what it answers is the way to Slack.
        page = requests.get(f"http://127.0.0.1:{port}/", allow_redirects=False, timeout=120)
        assert page.status_code == 302 and page.headers["Location"] == "/signin"
        start = requests.get(
            f"http://127.0.0.1:{port}/signin",
            cookies=page.cookies,
            allow_redirects=False,
            timeout=60,
        )
        assert start.headers["Location"].startswith("https://slack.com/openid/connect/authorize?")
        assert (
            "redirect_uri=https%3A%2F%2Ffind.example%2Fsignin%2Fcallback"
            in start.headers["Location"]
        )
        code, printed = web.interrupt()
    assert code == 0, printed
