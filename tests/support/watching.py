"""A library watcher running on a thread of the test, and what its store holds."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from findimage.documents import IndexReport
from findimage.factory import build_indexer, build_store
from findimage.settings import Settings
from findimage.stores.base import VectorStore
from indexer.watch import LibraryWatcher, WatchSettings
from tests.support.pictures import draw_shape, gradient
from tests.support.waiting import CEILING_SECONDS, wait_until

# A ceiling for a broken run; the goal (searchable within 5 s) is what the debounce
# and the run take, and the figures are in BENCHMARKS.md, not asserted here.


@dataclass
class Watching:
    library: Path
    store: VectorStore
    watcher: LibraryWatcher
    runs: list[tuple[IndexReport, str]] = field(default_factory=list)

    def paths(self) -> dict[str, str]:
        """Every indexed path with its content hash, as the store has it now."""
        return {fp.path: fp.sha256 for fp in self.store.fingerprints().values()}

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        wait_until(condition, CEILING_SECONDS, what)


@contextmanager
def watching_library(
    settings: Settings, library: Path, polling: bool = False
) -> Iterator[Watching]:
    """The library watched, from its catch-up run done until the block ends."""
    store = build_store(settings)
    runs: list[tuple[IndexReport, str]] = []
    watcher = LibraryWatcher(
        build_indexer(settings, store),
        library,
        WatchSettings(debounce_ms=300, polling=polling, poll_delay_ms=100),
        lambda report, folder: runs.append((report, folder)),
        ignore=[settings.data_dir],
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        assert watcher.ready.wait(CEILING_SECONDS), "the catch-up run did not finish"
        yield Watching(library, store, watcher, runs)
    finally:
        watcher.stop()
        thread.join(CEILING_SECONDS)
        assert not thread.is_alive(), "the watcher did not stop"
        store.close()


def indexed_paths(data_dir: Path) -> list[str]:
    """The paths an embedded index in `data_dir` holds now, read by another process's way:
    SQLite directly, so a watcher in a child process can be followed."""
    database = data_dir / "index.sqlite3"
    if not database.exists():
        return []
    with closing(sqlite3.connect(database)) as db:
        try:
            return sorted(row[0] for row in db.execute("SELECT path FROM images"))
        except sqlite3.OperationalError:
            return []  # the first run is still creating the tables


def new_picture(seed: int) -> Image.Image:
    """A picture unlike the library's, different for each seed."""
    picture = draw_shape("orange", "circle", size=(70 + seed % 20, 60))
    picture.paste(gradient((20, 20), seed=seed), (0, 0))
    return picture
