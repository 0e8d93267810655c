"""The HTTP server for `/slack/events` and `/images/<id>`: waitress, sized by the settings.

The standard library's wsgiref server listens with a backlog of 5 and drops connections in a
burst; waitress is maintained, multi-threaded and takes the backlog and thread count we give.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk.signature import SignatureVerifier
from waitress import create_server
from waitress.server import BaseWSGIServer

from findimage.serving import ServerThread

log = logging.getLogger(__name__)

# The largest request Slack sends the bot: an interaction payload carrying a whole view (a
# Home tab or modal holds up to 100 blocks, https://docs.slack.dev/reference/block-kit/blocks,
# each text up to 3,000 characters) URL-encoded into a form field, which can triple its size:
# 100 x 3,000 x 3 is 0.9 MB. Messages hold 50 blocks, events less. 2 MiB fits them all with
# room, and nothing larger is read, let alone buffered to disk (waitress's default is 1 GB).
MAX_BODY_BYTES = 2 * 1024 * 1024
LOG_EVERY_SECONDS = 60.0
# Waitress warns at each request that waits for a thread. Slack sends bursts, and waiting in
# the queue is what the queue is for; only its errors are worth an operator's attention.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


class SlackHttpServer:
    def __init__(
        self,
        wsgi_app: Callable,
        host: str,
        port: int,
        threads: int,
        backlog: int,
        max_body: int = MAX_BODY_BYTES,
    ):
        self._server: BaseWSGIServer = create_server(
            wsgi_app,
            host=host,
            port=port,
            threads=threads,
            backlog=backlog,
            # Connections past this limit wait in the listen backlog instead of being refused.
            connection_limit=max(100, backlog),
            # Waitress answers 413 itself past this, before buffering the body anywhere.
            max_request_body_size=max_body,
            ident="findimage",
        )
        self._thread = ServerThread(self._server, "http")

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def start(self) -> None:
        """Serve in a thread of its own until `stop`."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, close the connections, and let running requests finish."""
        self._thread.stop(timeout)


class QuietLog:
    """At most one log line per kind of refusal per minute: a flood of bad requests must not
    flood the log (nor fill the disk it is written to)."""

    def __init__(
        self, every: float = LOG_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic
    ):
        self._every = every
        self._clock = clock
        self._last: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, kind: str, detail: str) -> None:
        now = self._clock()
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            last = self._last.get(kind)
            if last is not None and now - last < self._every:
                return
            self._last[kind] = now
            count, self._counts[kind] = self._counts[kind], 0
        log.warning("refused %d request(s) to /slack/events: %s (%s)", count, kind, detail)


def signed_only(
    app: Callable,
    signing_secret: str,
    max_body: int = MAX_BODY_BYTES,
    quiet: QuietLog | None = None,
) -> Callable:
    """WSGI middleware: the body is read (up to `max_body`) and its Slack signature checked
    before anything parses it; what fails is answered 413, 400 or 401 in one log line a
    minute, with no traceback. https://api.slack.com/authentication/verifying-requests-from-slack"""
    verifier = SignatureVerifier(signing_secret)
    refusals = quiet or QuietLog()

    def guarded(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)  # Slack only POSTs; Bolt answers the rest 404
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            refusals.warning("bad Content-Length", str(environ.get("CONTENT_LENGTH"))[:40])
            return _refuse(start_response, "400 Bad Request")
        if length > max_body:
            refusals.warning("too large", f"{length} bytes")
            return _refuse(start_response, "413 Content Too Large")
        body = environ["wsgi.input"].read(length)
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        if not timestamp or not signature:
            refusals.warning("unsigned", "no X-Slack-Signature or timestamp")
            return _refuse(start_response, "401 Unauthorized")
        if not verifier.is_valid(body, timestamp, signature):
            refusals.warning("bad signature", "signature or timestamp does not match")
            return _refuse(start_response, "401 Unauthorized")
        environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    return guarded


def _refuse(start_response: Callable, status: str) -> list[bytes]:
    body = status.split(" ", 1)[1].lower().encode() + b"\n"
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


# What an orchestrator polls to learn whether this bot may be sent requests (the readiness
# probe in deploy/kubernetes/bot.yaml). A probe succeeds on 200-399 and fails on anything else:
# https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/
HEALTH_PATH = "/healthz"


class Readiness:
    """Whether the bot is ready for requests: its models loaded and warmed.

    Loading is at its start (`bot.app.warm_up`); until it is done, or when it failed, the
    endpoint says 503, so a rolling update keeps sending Slack to the old pod until the new
    one can answer, and a pod whose models cannot load takes no traffic (its log says why).
    """

    def __init__(self) -> None:
        self._state = "loading the models"
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        with self._lock:
            return self._state == "ready"

    def loaded(self) -> None:
        with self._lock:
            self._state = "ready"

    def failed(self) -> None:
        # The reason goes to the log, not to whoever can reach the port.
        with self._lock:
            self._state = "the models failed to load (see the log)"

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        """The WSGI endpoint: 200 `ready`, or 503 with what is missing, in one line."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _refuse(start_response, "405 Method Not Allowed")
        with self._lock:
            state = self._state
        status = "200 OK" if state == "ready" else "503 Service Unavailable"
        body = f"{state}\n".encode()
        start_response(
            status,
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
