"""`findimage serve` as a real process: bursts of connections, load right after a start, and
a graceful stop on SIGTERM. The Web API stand-in answers each call in 250 ms, as a busy Slack.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.payloads import ACTION_LIKE, ACTION_MORE, Page
from tests.support.serve_process import ServeProcess, pump_stderr
from tests.support.slack_answers import ACK_DEADLINE_SECONDS
from tests.support.slack_api import BOT_TOKEN, FakeSlack
from tests.support.slack_bot import IndexedLibrary
from tests.support.slack_requests import SIGNING_SECRET

WEB_API_SECONDS = 0.25


@pytest.fixture
def serve_process(
    slack_library: IndexedLibrary, fake_slack: FakeSlack, trained_clip: Path, tmp_path: Path
) -> Iterator[ServeProcess]:
    """A fresh `findimage serve` in HTTP mode; yielded as soon as it listens (models still
    loading in the background)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FINDIMAGE_", "SLACK_"))
    }
    env.update(
        FINDIMAGE_LIBRARY=str(slack_library.root),
        FINDIMAGE_DATA_DIR=str(slack_library.data_dir),
        FINDIMAGE_IMAGE_MODEL=str(trained_clip),
        FINDIMAGE_TEXT_MODEL=str(trained_clip),
        FINDIMAGE_DEVICE="cpu",
        # fp32, whose export always agrees: int8 of the trained tiny model may fall back to
        # fp32 with a WARNING on some machines (cosine about 0.995), and these tests read
        # everything serve prints. The engines have tests of their own.
        FINDIMAGE_PRECISION="fp32",
        FINDIMAGE_PORT="0",
        FINDIMAGE_SLACK_API_URL=fake_slack.api_url,
        FINDIMAGE_HTTP_BACKLOG="256",
        # A stop waits for the answers under way, up to this; generous, so that a busy
        # machine makes the stop slower, never an answer dropped (it ends when they are sent).
        FINDIMAGE_SHUTDOWN_GRACE_SECONDS="300",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        HF_HUB_OFFLINE="1",
        PYTHONFAULTHANDLER="1",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "findimage.cli", "serve", "--host", "127.0.0.1"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=pump_stderr, args=(process, lines), daemon=True).start()
    try:
        first = lines.get(timeout=300)
        assert "listening for Slack on http://127.0.0.1:" in first, first
        port = first.split("http://127.0.0.1:")[1].split("/")[0]
        yield ServeProcess(process, f"http://127.0.0.1:{port}", first, lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.mark.slow
def test_serve_prints_one_line_serves_fifty_connections_at_once_and_stops_on_ctrl_c(
    serve_process: ServeProcess,
) -> None:
    assert serve_process.first_line.startswith("findimage: listening for Slack on ")
    host, port = "127.0.0.1", int(serve_process.url.rsplit(":", 1)[1])
    barrier = threading.Barrier(50)

    def connect_and_ask(n: int) -> bytes:
        # Raw sockets, all connected before any sends: a listen backlog of 5 would reset some.
        with socket.create_connection((host, port), timeout=30) as sock:
            barrier.wait(timeout=30)
            sock.sendall(b"GET /nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(64)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(connect_and_ask, range(50)))

    assert all(answer.startswith(b"HTTP/1.1 404") for answer in answers)
    code, rest = serve_process.stop(signal.SIGINT)
    assert code == 0
    assert rest == "findimage: stopped.\n"


@pytest.mark.slow
def test_commands_and_clicks_right_after_start_are_acked_in_time_and_answered_once(
    serve_process: ServeProcess, fake_slack: FakeSlack, slack_library: IndexedLibrary
) -> None:
    fake_slack.delay = WEB_API_SECONDS
    sender = serve_process.sender
    doc_ids = sorted(slack_library.store.fingerprints())[:5]
    clicks = [
        ({"action_id": ACTION_MORE, "value": Page(k=5, text="red circle", offset=5).to_value()})
        for _ in range(5)
    ] + [
        {"action_id": f"{ACTION_LIKE}:1", "value": Page(k=5, like=doc_id).to_value()}
        for doc_id in doc_ids
    ]
    barrier = threading.Barrier(30)

    def command(n: int) -> tuple[int, float]:
        barrier.wait(timeout=30)
        started = time.monotonic()
        response = sender.command(f"k:5 shape {n}", fake_slack.response_url(f"cmd{n}"))
        return response.status_code, time.monotonic() - started

    def click(n: int) -> tuple[int, float]:
        barrier.wait(timeout=30)
        started = time.monotonic()
        button = {**clicks[n], "text": {"type": "plain_text", "text": "b"}}
        response = sender.button(button, fake_slack.response_url(f"click{n}"))
        return response.status_code, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=30) as pool:
        commands = [pool.submit(command, n) for n in range(20)]
        buttons = [pool.submit(click, n) for n in range(10)]
        acks = [future.result() for future in commands + buttons]

    assert [status for status, _ in acks] == [200] * 30
    slowest = max(seconds for _, seconds in acks)
    assert slowest < ACK_DEADLINE_SECONDS, f"slowest ack took {slowest:.2f} s"
    # Stop while answers are still under way: they are finished before the process exits.
    code, rest = serve_process.stop()
    assert code == 0
    assert rest.endswith("findimage: stopped.\n")
    names = [r.path.rsplit("/", 1)[1] for r in fake_slack.calls("response")]
    expected = [f"cmd{n}" for n in range(20)] + [f"click{n}" for n in range(10)]
    assert sorted(names) == sorted(expected), "each request answered exactly once"
    assert not fake_slack.calls("response-refused")
