"""Waiting on a condition another process or thread will make true, never on the clock alone."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_SECONDS = 0.02
# How long a wait for another thread or process may take before the test calls it broken:
# far above what any answer takes, so that a machine busy with other work (several suites
# side by side on two cores) slows a test down without failing it. A wait that is met ends
# at once; only a broken run waits this long.
CEILING_SECONDS = 300.0


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Return as soon as `condition()` holds; fail naming `what` if it has not within `timeout`.

    The timeout is a ceiling for a broken run, not a guess at how long the work takes.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_SECONDS)
