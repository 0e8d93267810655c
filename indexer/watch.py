"""Watch mode: keep the index in line with the library while it changes.

A start runs the batch indexer once over the whole library, so nothing changed while no
watcher ran is missed. Then file-system events (through watchfiles, which groups a burst of
them, up to `debounce_ms` at a time) each start an incremental run of that same indexer over
the deepest folder holding every change: new and changed pictures there are embedded in
batches, gone ones leave, and a killed watcher loses nothing the next start would not redo.
Where events are not delivered (network shares), `rescan_seconds` of quiet start a full
incremental run anyway, and `polling` makes watchfiles poll instead of subscribing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from watchfiles import Change, DefaultFilter, watch

from findimage.documents import IndexReport
from findimage.errors import FindImageError
from findimage.images import IMAGE_EXTENSIONS
from findimage.raw import RAW_EXTENSIONS
from findimage.terminal import printable, shortened
from indexer.indexer import Indexer

log = logging.getLogger(__name__)

PICTURE_SUFFIXES = IMAGE_EXTENSIONS | RAW_EXTENSIONS


@dataclass(frozen=True)
class WatchSettings:
    debounce_ms: int = 1000
    rescan_seconds: float = 300.0
    polling: bool = False
    poll_delay_ms: int = 300


# Back-off after a failed burst: the first wait, and the longest one.
FIRST_RETRY_SECONDS = 1.0
# How long a wait for changes lasts before it reports none: the first one tells that the
# subscription is live, and the quiet spells' rescans are timed on the clock, not on it.
SUBSCRIBED_CHECK_MS = 1000
LONGEST_RETRY_SECONDS = 60.0


class PictureFilter(DefaultFilter):
    """Changes that may concern a picture: a picture file, a folder, or anything that
    disappeared (a gone path may have been a folder, whatever its name looks like:
    `2024.06 Marseille`). Files of an index kept inside the library are left out, or the
    watcher would wake itself up with its own writes."""

    def __init__(self, ignore: Iterable[Path] = ()) -> None:
        super().__init__(ignore_paths=[str(path) for path in ignore])

    def __call__(self, change: Change, path: str) -> bool:
        if not super().__call__(change, path):
            return False
        if change == Change.deleted:
            return True
        suffix = PurePosixPath(path).suffix.lower()
        return suffix in PICTURE_SUFFIXES or not suffix or Path(path).is_dir()


def changed_folder(root: Path, paths: Iterable[str]) -> str:
    """The deepest folder of the library (relative, "" for the root) that holds every path,
    climbing to one that still exists (a deleted folder's parent)."""
    common: tuple[str, ...] | None = None
    for written in paths:
        path = Path(written)
        if not path.is_relative_to(root):
            continue
        parent = path.relative_to(root).parent.parts
        if common is None:
            common = parent
        else:
            shared = 0
            for mine, theirs in zip(common, parent, strict=False):
                if mine != theirs:
                    break
                shared += 1
            common = common[:shared]
    parts = list(common or ())
    while parts and not (root.joinpath(*parts)).is_dir():
        parts.pop()
    return "/".join(parts)


class LibraryWatcher:
    """Runs `indexer` over `root` now, then again over each burst of changes, until `stop`."""

    def __init__(
        self,
        indexer: Indexer,
        root: Path,
        settings: WatchSettings,
        report: Callable[[IndexReport, str], None],
        ignore: Iterable[Path] = (),
    ):
        self._indexer = indexer
        self._root = root.resolve()
        self._settings = settings
        self._report = report
        self._filter = PictureFilter(ignore)
        self._stop = threading.Event()
        self._retry_wait = FIRST_RETRY_SECONDS
        # Set once the catch-up run is done and changes are being followed.
        self.ready = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, progress: bool = False, retry_catch_up: bool = False) -> None:
        """Catch up (with a progress bar if asked), then follow the library's changes;
        returns once `stop` is called. A failure of the catch-up is raised, or with
        `retry_catch_up` (a watcher nobody sits in front of: `serve --watch`) logged and
        tried again with the bursts' back-off until it succeeds. A later failure, whatever
        it is, is logged, the watcher waits (doubling each time a burst fails again, up to a
        minute), and the next quiet spell runs a full rescan instead of waiting for more
        changes."""
        changes = self._changes()
        try:
            # Subscribed before the catch-up: a picture added while it runs, or just after,
            # is announced to the subscription and indexed by the first burst. Subscribing
            # after it left a gap whose pictures waited for the next rescan (300 s).
            if next(changes, None) is None:
                return  # stopped while subscribing
            report = self._catch_up(progress, retry_catch_up)
            if report is None:
                return  # stopped before a catch-up succeeded
            self._report(report, "")
            self.ready.set()
            try:
                self._follow(changes)
            except KeyboardInterrupt:
                # Ctrl-C is how a watcher at a terminal is stopped, quietly (watchfiles' own
                # raise_interrupt=False logs "KeyboardInterrupt caught, stopping watch"); a
                # burst it cut short is caught up by the next start, as after any stop.
                return
        finally:
            changes.close()

    def _catch_up(self, progress: bool, retry: bool) -> IndexReport | None:
        """The full run that starts the watching; None when stopped while retrying it."""
        while not self._stop.is_set():
            try:
                report = self._indexer.run(self._root, progress=progress)
            except Exception as exc:
                if not retry:
                    raise
                # One line per failure (the store unreachable for a moment, another run
                # writing the index): the cause is the same each time, its traceback only
                # at -vv.
                reason = str(exc) if isinstance(exc, FindImageError) else repr(exc)
                log.warning(
                    "watching %s: the first run failed (%s); trying again in %.0f s",
                    self._root,
                    reason,
                    self._retry_wait,
                )
                log.debug("the first run's failure", exc_info=True)
                self._stop.wait(self._retry_wait)
                self._retry_wait = min(self._retry_wait * 2, LONGEST_RETRY_SECONDS)
                continue
            self._retry_wait = FIRST_RETRY_SECONDS
            return report
        return None

    def _changes(self) -> Generator[set[tuple[Change, str]], None, None]:
        """The library's changes, a set per burst; an empty set each second without any, so
        that the subscription is known to be live soon after the first `next`."""
        return watch(
            self._root,
            watch_filter=self._filter,
            debounce=self._settings.debounce_ms,
            stop_event=self._stop,
            rust_timeout=SUBSCRIBED_CHECK_MS,
            yield_on_timeout=True,
            force_polling=self._settings.polling,
            poll_delay_ms=self._settings.poll_delay_ms,
            raise_interrupt=True,
        )

    def _follow(self, bursts: Iterator[set[tuple[Change, str]]]) -> None:
        """Index each burst of changes, and rescan after a quiet spell, until stopped."""
        last_run = time.monotonic()
        rescan_due = False
        for changes in bursts:
            if changes:
                folder = changed_folder(self._root, (path for _, path in changes))
            elif rescan_due or time.monotonic() - last_run >= self._settings.rescan_seconds:
                # No event for a while: a full rescan catches what was not announced.
                folder = ""
            else:
                continue
            rescan_due = not self._index(folder)
            if rescan_due:
                self._stop.wait(self._retry_wait)
                self._retry_wait = min(self._retry_wait * 2, LONGEST_RETRY_SECONDS)
            else:
                self._retry_wait = FIRST_RETRY_SECONDS
            last_run = time.monotonic()

    def _index(self, folder: str) -> bool:
        """One incremental run over `folder`; False when it failed (the reason is logged)."""
        target = self._root / folder if folder else self._root
        if folder and not _resolves_inside(target, self._root):
            # A link in the library to a folder outside it: a run over the folder would be
            # taken for another library (and advise --replace, which would wipe the index);
            # the whole library is run instead, which takes its links as every full run does.
            target = self._root
        try:
            report = self._indexer.run(target, progress=False)
        except FindImageError as exc:
            log.warning("watching %s: %s (a full rescan follows)", self._root, exc)
            return False
        except Exception:  # the watcher outlives any one burst, whatever stopped it
            log.exception("watching %s: a burst failed (a full rescan follows)", self._root)
            return False
        self._report(report, folder)
        return True


def _resolves_inside(path: Path, root: Path) -> bool:
    """Whether `path`, its links followed, is inside `root`; False for whatever resolving it
    raises (a link loop's RuntimeError, an unreadable link)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except Exception:
        return False


def burst_line(report: IndexReport, folder: str) -> str | None:
    """One line for a run that changed something, naming its folder; None when nothing did."""
    if not (report.indexed or report.deleted or report.skipped):
        return None
    where = f" in {folder}" if folder else ""
    line = f"Indexed {report.indexed}, removed {report.deleted}, skipped {len(report.skipped)}"
    reasons = "; ".join(
        f"{shortened(printable(skip.path))}: {skip.reason}" for skip in report.skipped[:3]
    )
    more = f" (+{len(report.skipped) - 3} more)" if len(report.skipped) > 3 else ""
    return f"{line}{where}." + (f" Skipped {reasons}{more}." if reasons else "")
