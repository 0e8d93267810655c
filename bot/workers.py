"""The bot's own pool for answers: a fixed number of workers, and queues bounded by cost.

Listeners ack in the request thread and hand the work here, so an ack never waits for a
search, a download or a post. A text search costs tens of milliseconds and little memory, so
text requests queue up to a memory budget (FINDIMAGE_SLACK_QUEUE_MB) and are answered in
order: a person in a busy channel would rather wait a few seconds than be told to try again.
A photo holds its bytes and a decoded picture while it waits, so photos keep a small bound
(FINDIMAGE_SLACK_QUEUE) and a refused photo is told how long the wait is.

The context of the submitting thread (the request's id, its outbox: bot.delivery) goes
with the work to the worker.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

BUSY = "I'm busy with other searches right now: try again in a moment."
# What one waiting text request holds, generously: the request's payload (Slack's are a few
# KB), the closures and the answer being built (a 50-block message is under 50 KB).
TEXT_TASK_BYTES = 64 * 1024
# How long a photo takes before any has been timed: a download and an image encoding.
FIRST_PHOTO_SECONDS = 2.0


class AnswerWorkers:
    def __init__(self, workers: int, photo_queue: int, queue_mb: float = 64.0):
        self._workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer")
        self.text_capacity = max(1, int(queue_mb * 1024 * 1024) // TEXT_TASK_BYTES)
        self._text_slots = threading.BoundedSemaphore(self.text_capacity)
        # One slot per running or waiting photo.
        self._photo_slots = threading.BoundedSemaphore(workers + photo_queue)
        self._photo_capacity = workers + photo_queue
        self._photos = 0
        self._photo_seconds = FIRST_PHOTO_SECONDS
        self._idle = threading.Condition()
        self._pending = 0

    def submit(self, work: Callable[[], None], what: str) -> bool:
        """Run `work` in its turn; False only when the text budget is spent."""
        if not self._text_slots.acquire(blocking=False):
            log.warning(
                "%d requests wait (the memory budget): busy to %s", self.text_capacity, what
            )
            return False
        return self._start(work, what, self._text_slots.release)

    def submit_photo(self, work: Callable[[], None]) -> bool:
        """Run a photo search in its turn; False when as many photos wait as the bound allows."""
        if not self._photo_slots.acquire(blocking=False):
            log.warning("%d photos under way: answering busy to another", self._photo_capacity)
            return False
        with self._idle:
            self._photos += 1
        started = time.monotonic()

        def timed() -> None:
            try:
                work()
            finally:
                self._photo_done(time.monotonic() - started)

        if self._start(timed, "photo search", self._photo_slots.release):
            return True
        with self._idle:
            self._photos -= 1
        return False

    def photo_wait(self) -> str:
        """One sentence for a photo that cannot wait in line: how long until there is room."""
        with self._idle:
            ahead, seconds = self._photos, self._photo_seconds
        wait = max(5, math.ceil(ahead * seconds / self._workers / 5) * 5)
        return (
            f"I'm searching with {ahead} other photos right now: "
            f"send yours again in about {wait} seconds."
        )

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every accepted task has finished; False after `timeout`."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Accept nothing more; let accepted work finish, up to `timeout` seconds."""
        finished = self.wait_idle(timeout)
        self._executor.shutdown(wait=finished, cancel_futures=not finished)
        return finished

    def _start(self, work: Callable[[], None], what: str, release: Callable[[], None]) -> bool:
        with self._idle:
            self._pending += 1
        context = contextvars.copy_context()
        try:
            self._executor.submit(self._run, context, work, what, release)
        except RuntimeError:  # shut down
            self._done(release)
            return False
        return True

    def _run(
        self,
        context: contextvars.Context,
        work: Callable[[], None],
        what: str,
        release: Callable[[], None],
    ) -> None:
        try:
            context.run(work)
        except Exception:
            log.exception("%s failed", what)
        finally:
            self._done(release)

    def _photo_done(self, seconds: float) -> None:
        with self._idle:
            self._photos -= 1
            # A moving average: recent photos say best how long the next ones take.
            self._photo_seconds = 0.8 * self._photo_seconds + 0.2 * seconds

    def _done(self, release: Callable[[], None]) -> None:
        release()
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()
