"""A waitress server served from a thread of its own, and stopped from another one.

The Slack bot's server and the search page's both run this way in `findimage serve` and in
the tests. Closing waitress's sockets from another thread while its loop waits on them in
select() kills the loop with "Bad file descriptor"; closed by the loop's own thread, through
waitress's trigger (which runs a function there), they end it cleanly.
"""

from __future__ import annotations

import logging
import threading
from contextlib import suppress

from waitress.server import BaseWSGIServer

log = logging.getLogger(__name__)


class ServerThread:
    """`server`'s loop in a daemon thread named `name`, from `start` until `stop`."""

    def __init__(self, server: BaseWSGIServer, name: str):
        self._server = server
        self._name = name
        self._loop: threading.Thread | None = None

    def start(self) -> None:
        self._loop = threading.Thread(target=self._server.run, name=self._name, daemon=True)
        self._loop.start()

    def stop(self, timeout: float) -> None:
        """Stop listening, close the connections, and let running requests finish."""
        if self._loop is not None and self._loop.is_alive():
            try:
                self._server.trigger.pull_trigger(self._close_sockets)
            except OSError as exc:
                # The trigger's pipe is gone (seen once in the suite: EBADF, cause not found).
                # The server must still stop: its sockets are closed from here instead.
                log.warning(
                    "stopping %s: its wake-up pipe failed (%s); closing directly", self._name, exc
                )
                self._close_sockets()
            self._loop.join(timeout=timeout)
        else:
            self._close_sockets()
        self._server.task_dispatcher.shutdown(timeout=timeout)

    def _close_sockets(self) -> None:
        # The trigger and the listener first, then every connection: an empty map ends the
        # loop. The trigger's pipe may be gone already (see stop); closing it is then done.
        with suppress(OSError):
            self._server.trigger.close()
        self._server.close()  # the listener; the trigger is closed once only
        for channel in list(self._server._map.values()):
            channel.handle_close()
