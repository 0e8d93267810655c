"""Short lines for the person at the terminal, such as a slow model load, apart from the logs.

The command line shows them on stderr as they are; elsewhere they are ordinary INFO records.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

notices = logging.getLogger("findimage.notices")

# Below this, a wait needs no word.
SLOW_SECONDS = 1.0


@contextmanager
def announced_if_slow(message: str, after: float | None = None) -> Iterator[None]:
    """Say `message` once the block has run for `after` seconds (SLOW_SECONDS by default)."""
    timer = threading.Timer(SLOW_SECONDS if after is None else after, notices.info, (message,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
