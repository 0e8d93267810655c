from __future__ import annotations

import os
from pathlib import Path

from indexer.walk import LibraryFile, WalkSkip, walk_library


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_finds_pictures_by_extension_case_insensitively_and_recursively(tmp_path: Path) -> None:
    names = ["a.jpg", "b.JPEG", "c.Png", "d.webp", "e.gif", "f.bmp", "g.tif", "h.TIFF", "i.HEIC"]
    for name in names:
        _touch(tmp_path / "deep" / "er" / name)
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / "clip.mp4")
    found = [e.relative_path for e in walk_library(tmp_path) if isinstance(e, LibraryFile)]
    assert found == [f"deep/er/{n}" for n in names]


def test_reports_size_and_mtime(tmp_path: Path) -> None:
    path = _touch(tmp_path / "a.png", b"12345")
    os.utime(path, (1_700_000_000, 1_700_000_000))
    (entry,) = walk_library(tmp_path)
    assert isinstance(entry, LibraryFile)
    assert (entry.size, entry.mtime) == (5, 1_700_000_000)
    assert entry.absolute_path == path.resolve()


def test_hidden_files_and_folders_are_left_out(tmp_path: Path) -> None:
    _touch(tmp_path / ".hidden.jpg")
    _touch(tmp_path / ".thumbnails" / "a.jpg")
    _touch(tmp_path / "ok" / "b.jpg")
    assert [e.relative_path for e in walk_library(tmp_path)] == ["ok/b.jpg"]


def test_links_inside_the_store_are_followed_and_outside_ones_skipped(tmp_path: Path) -> None:
    store, outside = tmp_path / "store", tmp_path / "outside"
    _touch(store / "real" / "a.jpg")
    _touch(outside / "secret.jpg")
    (store / "link-to-secret.jpg").symlink_to(outside / "secret.jpg")
    (store / "link-to-outside-folder").symlink_to(outside)
    (store / "alias.jpg").symlink_to(store / "real" / "a.jpg")
    (store / "real" / "loop").symlink_to(store)
    entries = list(walk_library(store))
    files = sorted(e.relative_path for e in entries if isinstance(e, LibraryFile))
    skips = [e for e in entries if isinstance(e, WalkSkip)]
    assert files == ["alias.jpg", "real/a.jpg"]
    assert {s.relative_path: s.reason for s in skips} == {
        "link-to-outside-folder": "a linked folder leading outside the library",
        "link-to-secret.jpg": "a symbolic link leading outside the library",
    }


def test_a_folder_is_walked_alone_with_paths_relative_to_the_root(tmp_path: Path) -> None:
    _touch(tmp_path / "top.jpg")
    _touch(tmp_path / "trips" / "a.jpg")
    _touch(tmp_path / "trips" / "2024" / "b.jpg")
    _touch(tmp_path / "tripsandmore" / "c.jpg")
    found = [e.relative_path for e in walk_library(tmp_path, "trips")]
    assert found == ["trips/a.jpg", "trips/2024/b.jpg"]


def test_other_files_before_a_picture_do_not_hide_it(tmp_path: Path) -> None:
    _touch(tmp_path / "a-notes.txt")
    _touch(tmp_path / "b.jpg")
    assert [e.relative_path for e in walk_library(tmp_path)] == ["b.jpg"]


def test_a_dangling_link_is_reported_and_the_walk_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a-broken.jpg").symlink_to(tmp_path / "deleted.jpg")
    _touch(tmp_path / "b.jpg")
    entries = list(walk_library(tmp_path))
    assert [(type(e), e.relative_path) for e in entries] == [
        (WalkSkip, "a-broken.jpg"),
        (LibraryFile, "b.jpg"),
    ]
    assert entries[0].reason == "cannot be read (No such file or directory)"
