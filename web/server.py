"""Serving the page: waitress on a loopback address, until Ctrl-C."""

from __future__ import annotations

import errno
import ipaddress
import logging
from collections.abc import Callable

from waitress import create_server
from waitress.server import BaseWSGIServer

from findimage.errors import ConfigError
from findimage.serving import ServerThread

log = logging.getLogger(__name__)
# Waitress warns whenever a request waits for a thread: a grid asks for 50 thumbnails at once,
# and waiting in the queue is what the queue is for.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)

WEB_THREADS = 8

NO_SIGN_IN = (
    "Without Sign in with Slack the web page only listens on this computer: use --host "
    "127.0.0.1 (the default), or set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (docs/slack.md)."
)


def require_loopback(host: str) -> None:
    """Refuse any address but this computer's own: without sign-in, whoever reaches the page
    may search the library."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return
    except ValueError:
        pass
    raise ConfigError(NO_SIGN_IN)


def host_names(host: str) -> frozenset[str]:
    """The names a browser on this computer puts in the Host header to reach `host`."""
    bracketed = f"[{host}]" if ":" in host else host
    return frozenset({bracketed, "localhost", "127.0.0.1", "[::1]"})


class WebServer:
    def __init__(self, wsgi_app: Callable, host: str, port: int, signed_in: bool = False):
        """`signed_in`: the app is behind Sign in with Slack, and may listen anywhere."""
        if not signed_in:
            require_loopback(host)
        try:
            self._server: BaseWSGIServer = create_server(
                wsgi_app, host=host, port=port, threads=WEB_THREADS, ident="findimage"
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"Port {port} on {host} is in use: pick another with --port or "
                    "FINDIMAGE_WEB_PORT."
                ) from None
            raise ConfigError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
        self.host = host
        self._thread = ServerThread(self._server, "web")

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def serve_forever(self) -> None:
        """Serve in this thread until Ctrl-C."""
        self._server.run()

    def start(self) -> None:
        """Serve in a thread of its own until `close`."""
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._thread.stop(timeout)
