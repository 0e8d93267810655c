"""A waitress server on its own thread (findimage/serving.py) stops whatever became of the
pipe it is woken through."""

from __future__ import annotations

import os
import socket

import pytest
from waitress import create_server

from findimage.serving import ServerThread


def _hello(environ: dict, start_response) -> list[bytes]:  # type: ignore[no-untyped-def]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\n"]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := connection.recv(1024):  # HTTP/1.0: the server closes when done
                answer += chunk
            return b"hello" in answer
    except OSError:
        return False


@pytest.mark.parametrize("pipe", ["intact", "closed underneath"])
def test_the_server_stops_and_stops_listening(pipe: str, caplog: pytest.LogCaptureFixture) -> None:
    server = create_server(_hello, host="127.0.0.1", port=0)
    port = int(server.effective_port)  # type: ignore[union-attr]
    thread = ServerThread(server, "test")
    thread.start()
    assert _answers(port)
    if pipe == "closed underneath":
        # What the suite saw once (EBADF from the wake-up pipe as a page's server stopped):
        # the pipe's write end closed by someone else. Before, stop() raised and the server
        # went on listening.
        os.close(server.trigger.trigger)

    thread.stop(timeout=30)

    assert not _answers(port)
    assert ("wake-up pipe failed" in caplog.text) == (pipe == "closed underneath")
