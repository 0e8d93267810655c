"""Tokens, signing secrets, the preview secret and the Elasticsearch password never appear in
what findimage prints or logs (at -vv, debug), nor in what it sends to Slack users, across
the flows where they are used or where something fails around them."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import FINDIMAGE
from tests.support.es_emulator import ES_9, ElasticsearchEmulator
from tests.support.pictures import encode, gradient
from tests.support.serve_process import ServeProcess, pump_stderr
from tests.support.slack_answers import answer_at
from tests.support.slack_api import BOT_TOKEN, FakeSlack
from tests.support.slack_bot import IndexedLibrary
from tests.support.slack_requests import SIGNING_SECRET, message_event

PREVIEW_SECRET = "preview-S3CRET-5f1e2d"
ES_PASSWORD = "es-pw-S3CRET-9a8b7c"
WRONG_ES_PASSWORD = "es-wrong-S3CRET-1c2d3e"
URL_PASSWORD = "url-pw-S3CRET-4d5e6f"
# Token-shaped as Slack's are, joined here so no secret scanner takes the source for a leak.
UNKNOWN_TOKEN = "-".join(("xoxb", "unknown", "S3CRET", "7a7a"))
APP_TOKEN = "-".join(("xapp", "1", "S3CRET", "8b8b"))
SECRETS = (
    BOT_TOKEN,
    SIGNING_SECRET,
    PREVIEW_SECRET,
    ES_PASSWORD,
    WRONG_ES_PASSWORD,
    URL_PASSWORD,
    UNKNOWN_TOKEN,
)


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINDIMAGE_", "SLACK_"))}
    return {**env, "HF_HUB_OFFLINE": "1", "FINDIMAGE_DEVICE": "cpu", **values}


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FINDIMAGE, "-vv", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def cluster() -> Iterator[ElasticsearchEmulator]:
    with ElasticsearchEmulator(basic_auth=("elastic", ES_PASSWORD), version=ES_9) as running:
        yield running


@pytest.mark.slow
def test_cli_runs_against_a_cluster_never_print_its_password(
    cluster: ElasticsearchEmulator,
    slack_library: IndexedLibrary,
    trained_clip: Path,
    tmp_path: Path,
) -> None:
    common = {
        "FINDIMAGE_BACKEND": "elasticsearch",
        "FINDIMAGE_IMAGE_MODEL": str(trained_clip),
        "FINDIMAGE_TEXT_MODEL": str(trained_clip),
        "FINDIMAGE_DATA_DIR": str(tmp_path / "data"),
        "FINDIMAGE_LIBRARY": str(slack_library.root),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "FINDIMAGE_PREVIEW_SECRET": PREVIEW_SECRET,
    }
    host = cluster.url.removeprefix("http://")
    refused = {  # each a way to be refused by the cluster
        "wrong password": {
            "FINDIMAGE_ES_USER": "elastic",
            "FINDIMAGE_ES_PASSWORD": WRONG_ES_PASSWORD,
        },
        "password in the URL": {"FINDIMAGE_ES_URL": f"http://elastic:{URL_PASSWORD}@{host}"},
    }
    outputs = []
    for what, values in refused.items():
        env = clean_env(**{**common, "FINDIMAGE_ES_URL": cluster.url, **values})
        for args in (["status"], ["index"], ["search", "red circle"]):
            done = run(args, env, tmp_path)
            assert done.returncode != 0, (what, args, done.stdout)
            outputs.append((what, args, done.stdout + done.stderr))
    env = clean_env(
        **common,
        FINDIMAGE_ES_URL=cluster.url,
        FINDIMAGE_ES_USER="elastic",
        FINDIMAGE_ES_PASSWORD=ES_PASSWORD,
    )
    for args in (["index"], ["status"], ["status", "--json"], ["search", "red circle"]):
        done = run(args, env, tmp_path)
        assert done.returncode == 0, (args, done.stderr)
        outputs.append(("right password", args, done.stdout + done.stderr))
    for what, args, output in outputs:
        assert not leaked(output), (what, args, leaked(output))
    assert any("DEBUG" in output for *_, output in outputs), "debug logging was not on"


def test_a_refused_bot_token_is_one_sentence_without_the_token(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    env = clean_env(
        SLACK_BOT_TOKEN=UNKNOWN_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        FINDIMAGE_SLACK_API_URL=fake_slack.api_url,
        FINDIMAGE_PORT="0",
    )
    done = run(["serve", "--host", "127.0.0.1"], env, tmp_path)
    assert done.returncode != 0
    assert "Slack refused SLACK_BOT_TOKEN" in done.stderr
    assert not leaked(done.stdout + done.stderr)


@pytest.mark.slow
def test_a_serving_bot_never_logs_or_sends_its_secrets(
    slack_library: IndexedLibrary, fake_slack: FakeSlack, trained_clip: Path, tmp_path: Path
) -> None:
    """`findimage -vv serve` with signed previews: a command, a click, a photo it may not
    download (the token's missing scope), a badly signed request, then SIGTERM."""
    env = clean_env(
        FINDIMAGE_LIBRARY=str(slack_library.root),
        FINDIMAGE_DATA_DIR=str(slack_library.data_dir),
        FINDIMAGE_IMAGE_MODEL=str(trained_clip),
        FINDIMAGE_TEXT_MODEL=str(trained_clip),
        FINDIMAGE_PORT="0",
        FINDIMAGE_SLACK_API_URL=fake_slack.api_url,
        FINDIMAGE_PUBLIC_BASE_URL="http://127.0.0.1:1",
        FINDIMAGE_PREVIEW_SECRET=PREVIEW_SECRET,
        FINDIMAGE_ES_PASSWORD=ES_PASSWORD,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
    )
    process = subprocess.Popen(
        [*FINDIMAGE, "-vv", "serve", "--host", "127.0.0.1"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=pump_stderr, args=(process, lines), daemon=True).start()
    try:
        printed = []
        while True:
            line = lines.get(timeout=120)
            printed.append(line)
            if "listening for Slack on http://127.0.0.1:" in line:
                break
        port = line.split("http://127.0.0.1:")[1].split("/")[0]
        served = ServeProcess(process, f"http://127.0.0.1:{port}", line, lines)
        sender = served.sender
        assert sender.command("red circle", fake_slack.response_url("asked")).status_code == 200
        answer = answer_at(fake_slack, "asked")
        fake_slack.files_read_scope = False
        event = message_event("D0000001", files=[fake_slack.add_file("p.png", encode(gradient()))])
        assert sender.event(event).status_code == 200
        fake_slack.wait_for("chat.postMessage", where=lambda r: r.params.get("thread_ts"))
        forged = sender.command("x", fake_slack.response_url("forged"), signed=False)
        assert forged.status_code == 401
        code, rest = served.stop()
        assert code == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert process.stdout is not None
    output = "".join(printed) + rest + process.stdout.read()
    assert "DEBUG" in output, "debug logging was not on"
    assert not leaked(output), leaked(output)
    sent = json.dumps([r.params for r in fake_slack.requests]) + json.dumps(answer)
    # The bot token travels in Authorization headers, as it must; never in a message.
    assert not leaked(sent), leaked(sent)
