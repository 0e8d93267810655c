"""The HTTP server for `/slack/events` and `/images/<id>`: waitress, sized by the settings.

The standard library's wsgiref server listens with a backlog of 5 and drops connections in a
burst; waitress is maintained, multi-threaded and takes the backlog and thread count we give.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from waitress import create_server
from waitress.server import BaseWSGIServer

log = logging.getLogger(__name__)
# Waitress warns at each request that waits for a thread. Slack sends bursts, and waiting in
# the queue is what the queue is for; only its errors are worth an operator's attention.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


class SlackHttpServer:
    def __init__(self, wsgi_app: Callable, host: str, port: int, threads: int, backlog: int):
        self._server: BaseWSGIServer = create_server(
            wsgi_app,
            host=host,
            port=port,
            threads=threads,
            backlog=backlog,
            # Connections past this limit wait in the listen backlog instead of being refused.
            connection_limit=max(100, backlog),
            ident="findimage",
        )

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def serve_forever(self) -> None:
        """Serve until `stop` or an exception (a signal handler's) ends the loop."""
        self._server.run()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, close the connections, and let running requests finish."""
        self._server.close()
        for channel in list(self._server._map.values()):
            channel.handle_close()
        self._server.task_dispatcher.shutdown(timeout=timeout)
