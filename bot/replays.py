"""A replayed slash command is not answered twice.

Slack signs each request with its timestamp, and Bolt refuses one whose timestamp is more
than five minutes off (https://api.slack.com/authentication/verifying-requests-from-slack:
"If the timestamp is more than five minutes from local time, it could be a replay attack").
Within those five minutes the same body with the same signature would pass again; Slack
never sends a slash command twice (it does not retry them, unlike events, which
handlers/events.py de-duplicates by event_id), so a second one is a replay: acked, dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from slack_bolt import BoltRequest, BoltResponse

log = logging.getLogger(__name__)

REPLAY_WINDOW_SECONDS = 5 * 60


class SeenSignatures:
    """Signatures seen in the last five minutes, forgotten as they age out of the window."""

    def __init__(
        self, window: float = REPLAY_WINDOW_SECONDS, clock: Callable[[], float] = time.time
    ):
        self._window = window
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, signature: str, timestamp: str) -> bool:
        now = self._clock()
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now - self._window:
                self._seen.popitem(last=False)
            key = (signature, timestamp)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


def once_per_signature(seen: SeenSignatures) -> Callable[..., BoltResponse | None]:
    """Bolt middleware: a slash command whose signature and timestamp were seen is dropped.
    Socket Mode requests carry no signature (the socket is authenticated) and pass."""

    def middleware(
        request: BoltRequest, body: dict, next: Callable[[], None]
    ) -> BoltResponse | None:
        signature = request.headers.get("x-slack-signature", [""])[0]
        timestamp = request.headers.get("x-slack-request-timestamp", [""])[0]
        if body.get("command") and signature and not seen.first_time(signature, timestamp):
            log.warning("a slash command was sent again with the same signature: not answered")
            return BoltResponse(status=200, body="")
        next()
        return None

    return middleware
