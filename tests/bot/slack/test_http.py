"""The bot's HTTP server stopped from another thread, as Socket Mode's preview server is."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import requests

from bot.slack.http import SlackHttpServer

CYCLES = 100  # before the fix, 7 to 9 of 100 cycles failed with EBADF


def _hello(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_stopping_the_server_from_another_thread_fails_nowhere(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures: list[str] = []
    caplog.set_level(logging.ERROR, logger="waitress")
    for _ in range(CYCLES):
        server = SlackHttpServer(_hello, "127.0.0.1", 0, threads=2, backlog=16)

        def serve(server: SlackHttpServer = server) -> None:
            try:
                server.serve_forever()
            except Exception as exc:  # the finding, whatever its kind
                failures.append(repr(exc))

        loop = threading.Thread(target=serve)
        loop.start()
        assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=10).text == "ok"
        server.stop()
        loop.join(timeout=10)
        assert not loop.is_alive(), "the server's loop did not end"
    assert failures == []
    assert [record.getMessage() for record in caplog.records] == []
