"""Watch mode: the index follows the library while pictures are added, changed, moved and
deleted, through real file-system events (and polling), a burst at a time."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from findimage.documents import IndexReport
from findimage.factory import build_indexer, build_store
from findimage.settings import Settings
from findimage.stores.embedded import EmbeddedStore
from indexer.watch import LibraryWatcher, WatchSettings, burst_line, changed_folder
from tests.support.pictures import make_library, save
from tests.support.waiting import wait_until
from tests.support.watching import CEILING_SECONDS, Watching, new_picture, watching_library


@pytest.fixture
def watching(settings: Settings, tmp_path: Path) -> Iterator[Watching]:
    library = tmp_path / "library"
    make_library(library, 6)
    with watching_library(settings, library) as started:
        yield started


def test_the_catch_up_indexes_the_library_then_changes_follow(watching: Watching) -> None:
    assert len(watching.paths()) == 6
    catch_up, folder = watching.runs[0]
    assert (catch_up.indexed, folder) == (6, "")

    save(new_picture(1), watching.library / "new" / "added.png")
    watching.wait_for(lambda: "new/added.png" in watching.paths(), "the added picture")

    changed = sorted(watching.library.rglob("*.jpg"))[0]
    relative = changed.relative_to(watching.library).as_posix()
    before = watching.paths()[relative]
    save(new_picture(2), changed, format="JPEG")
    watching.wait_for(lambda: watching.paths().get(relative) != before, "the re-embedded picture")

    gone = sorted(watching.library.rglob("*.png"))[0]
    gone_relative = gone.relative_to(watching.library).as_posix()
    gone.unlink()
    watching.wait_for(lambda: gone_relative not in watching.paths(), "the deleted picture")

    moved = watching.library / "marketing" / "moved.png"
    (watching.library / "new" / "added.png").rename(moved)
    watching.wait_for(
        lambda: (
            "marketing/moved.png" in watching.paths() and "new/added.png" not in watching.paths()
        ),
        "the moved picture",
    )
    assert len(watching.paths()) == 6


def test_a_folder_moved_out_of_the_library_leaves_the_index(
    watching: Watching, tmp_path: Path
) -> None:
    inside = {p for p in watching.paths() if p.startswith("trips/")}
    assert inside
    shutil.move(watching.library / "trips", tmp_path / "elsewhere")
    watching.wait_for(
        lambda: not any(p.startswith("trips/") for p in watching.paths()), "the folder to leave"
    )
    assert len(watching.paths()) == 6 - len(inside)


def test_polling_sees_changes_where_events_are_not_delivered(
    settings: Settings, tmp_path: Path
) -> None:
    library = tmp_path / "library"
    make_library(library, 2)
    with watching_library(settings, library, polling=True) as watching:
        save(new_picture(3), library / "polled.png")
        watching.wait_for(lambda: "polled.png" in watching.paths(), "the polled picture")


def test_a_burst_of_500_pictures_is_indexed_in_batches(watching: Watching) -> None:
    for number in range(500):
        save(new_picture(number), watching.library / "burst" / f"{number:03d}.png")

    def indexed_after_catch_up() -> int:
        return sum(report.indexed for report, _ in watching.runs[1:])

    # The reports, not the rows: a run's rows are in the store before its report comes back.
    watching.wait_for(lambda: indexed_after_catch_up() >= 500, "the burst's runs to report")
    assert len(watching.paths()) == 506
    after_catch_up = watching.runs[1:]
    assert indexed_after_catch_up() == 500
    # Far fewer runs than pictures: each run took a whole debounced burst.
    assert len(after_catch_up) <= 25, [report.indexed for report, _ in after_catch_up]


def test_the_changed_folder_is_the_deepest_one_holding_every_change(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "c").mkdir()
    root = str(tmp_path)
    assert changed_folder(tmp_path, [f"{root}/a/b/x.jpg", f"{root}/a/b/y.jpg"]) == "a/b"
    assert changed_folder(tmp_path, [f"{root}/a/b/x.jpg", f"{root}/a/c/y.jpg"]) == "a"
    assert changed_folder(tmp_path, [f"{root}/a/b/x.jpg", f"{root}/z.jpg"]) == ""
    # A deleted folder's pictures: its nearest folder that is still there.
    assert changed_folder(tmp_path, [f"{root}/a/gone/deeper/x.jpg"]) == "a"
    assert changed_folder(tmp_path, ["/elsewhere/x.jpg"]) == ""


def test_a_burst_is_one_line_naming_its_folder_and_skips() -> None:
    assert burst_line(IndexReport(unchanged=4), "") is None
    report = IndexReport(indexed=2, deleted=1)
    assert burst_line(report, "trips") == "Indexed 2, removed 1, skipped 0 in trips."


def test_a_dotted_folder_moved_out_of_the_library_leaves_the_index_at_once(
    settings: Settings, tmp_path: Path
) -> None:
    library = tmp_path / "library"
    make_library(library, 4)
    save(new_picture(1), library / "2024.06 Marseille" / "port.png")
    save(new_picture(2), library / "2024.06 Marseille" / "v1.2" / "quai.png")
    with watching_library(settings, library) as watching:
        assert len(watching.paths()) == 6
        # Gone, and named like a file with a suffix: only its disappearance says it was a
        # folder. The rescan (300 s) is far off: the event alone must do it.
        shutil.move(library / "2024.06 Marseille", tmp_path / "elsewhere")
        watching.wait_for(
            lambda: not any(p.startswith("2024.06 Marseille/") for p in watching.paths()),
            "the dotted folder to leave",
        )
        assert len(watching.paths()) == 4


def test_a_symbolic_link_loop_in_the_library_does_not_stop_the_watcher(
    watching: Watching,
) -> None:
    (watching.library / "self.jpg").symlink_to("self.jpg")
    save(new_picture(3), watching.library / "marketing" / "after-the-loop.png")
    watching.wait_for(
        lambda: "marketing/after-the-loop.png" in watching.paths(), "the picture added after"
    )
    (watching.library / "marketing" / "ping.png").symlink_to("pong.png")
    (watching.library / "marketing" / "pong.png").symlink_to("ping.png")
    save(new_picture(4), watching.library / "later.png")
    watching.wait_for(lambda: "later.png" in watching.paths(), "a picture added later still")


def test_a_failed_burst_is_logged_and_the_watcher_goes_on(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    library = tmp_path / "library"
    make_library(library, 3)
    store = build_store(settings)
    runs: list[IndexReport] = []
    watcher = LibraryWatcher(
        build_indexer(settings, store),
        library,
        # A short rescan: the retry after a failed burst is the next quiet spell's rescan.
        WatchSettings(debounce_ms=200, rescan_seconds=2),
        lambda report, folder: runs.append(report),
        ignore=[settings.data_dir],
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    other = EmbeddedStore(settings.data_dir)
    try:
        assert watcher.ready.wait(CEILING_SECONDS)
        # Another run holds the index: the burst for this picture fails.
        with other.writing():
            save(new_picture(5), library / "during.png")
            wait_until(
                lambda: "is writing the index" in caplog.text, CEILING_SECONDS, "the refusal"
            )
        wait_until(
            lambda: "during.png" in {fp.path for fp in store.fingerprints().values()},
            CEILING_SECONDS,
            "the picture, once the other run is done",
        )
        assert thread.is_alive()
    finally:
        other.close()
        watcher.stop()
        thread.join(CEILING_SECONDS)
        store.close()
    assert not thread.is_alive()


def test_a_picture_added_right_after_the_catch_up_is_indexed_without_a_rescan(
    settings: Settings, tmp_path: Path
) -> None:
    """The moment between the catch-up run and the watching: the report of the catch-up (the
    far edge: what the command prints) drops a picture in. The subscription is live before
    the catch-up, so a burst indexes it; the rescan that would catch it is an hour away."""
    library = tmp_path / "library"
    make_library(library, 3)
    store = build_store(settings)

    def report(done: IndexReport, folder: str) -> None:
        if folder == "" and not (library / "gap.png").exists():
            save(new_picture(6), library / "gap.png")

    watcher = LibraryWatcher(
        build_indexer(settings, store),
        library,
        WatchSettings(debounce_ms=200, rescan_seconds=3600),
        report,
        ignore=[settings.data_dir],
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        assert watcher.ready.wait(CEILING_SECONDS)
        wait_until(
            lambda: "gap.png" in {fp.path for fp in store.fingerprints().values()},
            CEILING_SECONDS,
            "the picture added between the catch-up and the watching",
        )
    finally:
        watcher.stop()
        thread.join(CEILING_SECONDS)
        store.close()
    assert not thread.is_alive()
