"""The bot's own pool for answers: a fixed number of workers and a bounded queue.

Listeners ack in the request thread and hand the work here, so an ack never waits for a
search, a download or a post. When every worker is busy and the queue is full, `submit`
says no at once and the caller tells the user to try again, instead of letting Slack time out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

BUSY = "I'm busy with other searches right now: try again in a moment."


class AnswerWorkers:
    def __init__(self, workers: int, queue: int):
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer")
        # One slot per running or waiting task: what the executor's unbounded queue lacks.
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._idle = threading.Condition()
        self._pending = 0

    def submit(self, work: Callable[[], None], what: str) -> bool:
        """Run `work` soon; False when the pool and its queue are full."""
        if not self._slots.acquire(blocking=False):
            log.warning("no worker free for %s: answering busy", what)
            return False
        with self._idle:
            self._pending += 1
        try:
            self._executor.submit(self._run, work, what)
        except RuntimeError:  # shut down
            self._done()
            return False
        return True

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every accepted task has finished; False after `timeout`."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Accept nothing more; let accepted work finish, up to `timeout` seconds."""
        finished = self.wait_idle(timeout)
        self._executor.shutdown(wait=finished, cancel_futures=not finished)
        return finished

    def _run(self, work: Callable[[], None], what: str) -> None:
        try:
            work()
        except Exception:
            log.exception("%s failed", what)
        finally:
            self._done()

    def _done(self) -> None:
        self._slots.release()
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()
