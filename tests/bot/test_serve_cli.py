"""`findimage serve` refuses to start without what Slack needs, in one plain sentence."""

from __future__ import annotations

import pytest

from findimage.cli import main


@pytest.mark.parametrize(
    ("env", "sentence"),
    [
        (
            {},
            "SLACK_SIGNING_SECRET is not set: copy the signing secret from the Slack app "
            "(or set SLACK_APP_TOKEN for Socket Mode, which needs none).",
        ),
        # Socket Mode needs no signing secret: the next missing setting is the one said.
        (
            {"SLACK_APP_TOKEN": "xapp-1"},
            "SLACK_BOT_TOKEN is not set: copy the bot token from the Slack app.",
        ),
        (
            {"SLACK_SIGNING_SECRET": "s"},
            "SLACK_BOT_TOKEN is not set: copy the bot token from the Slack app.",
        ),
        (
            {
                "SLACK_SIGNING_SECRET": "s",
                "SLACK_BOT_TOKEN": "xoxb-1",
                "FINDIMAGE_LIBRARY": ".",
                "FINDIMAGE_PUBLIC_BASE_URL": "https://bot.example",
            },
            "FINDIMAGE_PUBLIC_BASE_URL is set but FINDIMAGE_PREVIEW_SECRET is not: "
            "set it to a long random string.",
        ),
    ],
)
def test_serve_without_the_slack_settings_exits_with_a_sentence(
    findimage_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    sentence: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert main(["serve"]) == 2

    err = capsys.readouterr().err
    assert err == f"findimage: {sentence}\n"
    assert "xoxb-1" not in err


def test_serve_starts_when_the_index_cannot_say_its_library(
    findimage_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Which library to preview is read from the index at start; a cluster that is down then
    costs the previews (a warning in the log), not the start: here the start goes on to the
    next check, the missing signing secret."""
    monkeypatch.setenv("FINDIMAGE_BACKEND", "elasticsearch")
    # Port 9 on loopback has no listener: refused at once, as a cluster that is down.
    monkeypatch.setenv("FINDIMAGE_ES_URL", "http://127.0.0.1:9")

    assert main(["serve"]) == 2

    err = capsys.readouterr().err
    assert err.endswith(
        "findimage: SLACK_SIGNING_SECRET is not set: copy the signing secret from the Slack app "
        "(or set SLACK_APP_TOKEN for Socket Mode, which needs none).\n"
    )
