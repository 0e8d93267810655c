"""Each thing Slack delivers is acted on once, however often Slack delivers it.

Slack redelivers an event it thinks was not acknowledged in time; the `once_per_event`
middleware, installed where the app is created, drops those redeliveries before any
listener sees them. `AnsweredOnce` is the memory behind it, also used by the photo listener
to answer each photo once when Slack sends it as several events.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from slack_bolt import BoltRequest, BoltResponse

log = logging.getLogger(__name__)

_ANSWERED_MEMORY = 4096


class AnsweredOnce:
    """Remembers recent keys, so each is acted on once however often it is delivered."""

    def __init__(self, size: int = _ANSWERED_MEMORY):
        self._keys: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_time(self, *key: str) -> bool:
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True


def once_per_event(seen: AnsweredOnce) -> Callable[..., BoltResponse | None]:
    """Middleware: an event is handled once per `event_id`, the identity Slack keeps on each
    redelivery (https://api.slack.com/apis/events-api#retries). A first delivery that only
    ever arrives as a retry, as during a restart, is still handled."""

    def middleware(request: BoltRequest, next: Callable[[], None]) -> BoltResponse | None:
        event_id = request.body.get("event_id") if isinstance(request.body, dict) else None
        if event_id and not seen.first_time("event", str(event_id)):
            retry = request.headers.get("x-slack-retry-num", ["-"])[0]
            log.info("event %s delivered again (retry %s); already handled", event_id, retry)
            return BoltResponse(status=200, body="")
        next()
        return None

    return middleware
