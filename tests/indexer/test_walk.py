from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from findimage.images import NOT_A_FILE
from findimage.library import disk_path
from indexer.exclude import IGNORE_FILE, Exclusions
from indexer.walk import MAX_PATH_BYTES, TOO_LONG, LibraryFile, WalkSkip, walk_library


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


def test_links_inside_the_store_are_left_to_their_target_and_outside_ones_skipped(
    tmp_path: Path,
) -> None:
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
    # alias.jpg is real/a.jpg: one file, one entry, under its own path.
    assert files == ["real/a.jpg"]
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


def _found(root: Path, folder: str = "", exclusions: Exclusions | None = None) -> list[str]:
    return [
        e.relative_path
        for e in walk_library(root, folder, exclusions)
        if isinstance(e, LibraryFile)
    ]


def test_symbolic_link_loops_are_reported_and_the_walk_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a-self.jpg").symlink_to("a-self.jpg")
    (tmp_path / "b-ping.jpg").symlink_to("c-pong.jpg")
    (tmp_path / "c-pong.jpg").symlink_to("b-ping.jpg")
    (tmp_path / "d-loop").symlink_to("d-loop")
    _touch(tmp_path / "e.jpg")
    entries = list(walk_library(tmp_path))
    assert [(type(e).__name__, e.relative_path) for e in entries] == [
        ("WalkSkip", "a-self.jpg"),
        ("WalkSkip", "b-ping.jpg"),
        ("WalkSkip", "c-pong.jpg"),
        ("LibraryFile", "e.jpg"),
    ]
    assert {e.reason for e in entries if isinstance(e, WalkSkip)} == {"a symbolic link loop"}


@pytest.mark.parametrize("folder", ["", "a", "a/up", "b"])
def test_a_link_to_a_parent_folder_never_duplicates_a_picture(tmp_path: Path, folder: str) -> None:
    _touch(tmp_path / "b" / "pic.jpg")
    _touch(tmp_path / "a" / "own.jpg")
    (tmp_path / "a" / "up").symlink_to("..")
    everything = ["a/own.jpg", "b/pic.jpg"]
    # a/up is the library itself, walked under its real paths.
    expected = {"": everything, "a": ["a/own.jpg"], "a/up": everything, "b": ["b/pic.jpg"]}
    assert _found(tmp_path, folder) == expected[folder]


def test_a_linked_folder_inside_the_library_is_walked_once_under_its_own_path(
    tmp_path: Path,
) -> None:
    _touch(tmp_path / "z-real" / "pic.jpg")
    (tmp_path / "a-link").symlink_to("z-real")
    assert _found(tmp_path) == ["z-real/pic.jpg"]
    assert _found(tmp_path, "z-real") == ["z-real/pic.jpg"]


def test_a_name_that_is_not_utf8_is_found_and_spelled_with_escapes(tmp_path: Path) -> None:
    raw_name = os.fsdecode(b"caf\xe9.jpg")
    _touch(tmp_path / os.fsdecode(b"\xff-folder") / raw_name, b"12345")
    (entry,) = walk_library(tmp_path)
    assert isinstance(entry, LibraryFile)
    assert entry.relative_path == "\\xff-folder/caf\\xe9.jpg"
    entry.relative_path.encode("utf-8")  # what SQLite, JSON and terminals need
    assert entry.absolute_path.read_bytes() == b"12345"
    assert disk_path(entry.relative_path) == os.fsdecode(b"\xff-folder/caf\xe9.jpg")


def test_fifos_and_sockets_are_skipped_without_being_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a-fifo.jpg")
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(tmp_path / "b-socket.png"))
        _touch(tmp_path / "c.jpg")
        # A walk that opened the FIFO would block here for good.
        entries = list(walk_library(tmp_path))
    assert [(e.relative_path, getattr(e, "reason", None)) for e in entries] == [
        ("a-fifo.jpg", NOT_A_FILE),
        ("b-socket.png", NOT_A_FILE),
        ("c.jpg", None),
    ]


def _deep_folder(root: Path, total_bytes: int) -> Path:
    """A folder whose absolute path is at least `total_bytes` long, made step by step (one
    mkdir of the whole path would be refused)."""
    here, fd = root, os.open(root, os.O_RDONLY)
    try:
        while len(os.fsencode(here)) < total_bytes:
            name = "d" * 200
            os.mkdir(name, dir_fd=fd)
            next_fd = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, here = next_fd, here / name
        with open(os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "wb") as f:
            f.write(b"x")
    finally:
        os.close(fd)
    return here


def test_a_path_over_the_system_limit_is_skipped_with_its_reason(tmp_path: Path) -> None:
    _deep_folder(tmp_path / "deep" if (tmp_path / "deep").mkdir() is None else tmp_path, 4200)
    _touch(tmp_path / "z.jpg")
    entries = list(walk_library(tmp_path))
    skips = [e for e in entries if isinstance(e, WalkSkip)]
    assert [e.relative_path for e in entries if isinstance(e, LibraryFile)] == ["z.jpg"]
    assert len(skips) == 1 and skips[0].reason == TOO_LONG and not skips[0].unknown
    assert len(os.fsencode(tmp_path / skips[0].relative_path)) >= MAX_PATH_BYTES


def _refuse_listing(monkeypatch: pytest.MonkeyPatch, refused: Path) -> None:
    """Listing `refused` fails as the kernel fails it for a folder without read permission
    (the tests run as root, whom modes do not stop: the far edge, os.scandir, says it)."""
    real_scandir = os.scandir

    def scandir(path: str | Path) -> object:
        if Path(path) == refused:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_a_folder_that_cannot_be_listed_is_reported_as_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _touch(tmp_path / "locked" / "a.jpg")
    _touch(tmp_path / "open" / "b.jpg")
    _refuse_listing(monkeypatch, tmp_path / "locked")
    entries = list(walk_library(tmp_path))
    assert entries == [
        WalkSkip("locked", "cannot be listed (Permission denied)", unknown=True),
        LibraryFile(tmp_path.resolve(), "open/b.jpg", 1, entries[1].mtime),
    ]


def test_default_exclusions_and_the_ignore_file_leave_paths_out(tmp_path: Path) -> None:
    from findimage.settings import Settings

    for name in [
        "@eaDir/a.jpg/SYNOFILE_THUMB_M.jpg",
        "trip/@eaDir/x.jpg",
        "#recycle/old.jpg",
        "site/node_modules/logo.png",
        "__MACOSX/._a.jpg",
        "drafts/b.jpg",
        "keep/b.jpg",
        "keep/c.tmp.jpg",
        "keep/d.jpg",
    ]:
        _touch(tmp_path / name)
    (tmp_path / IGNORE_FILE).write_text("drafts/\n*.tmp.jpg\n# a comment\n")
    patterns = Settings(_env_file=None).exclude_patterns
    exclusions = Exclusions.for_library(tmp_path, patterns)
    assert _found(tmp_path, exclusions=exclusions) == ["keep/b.jpg", "keep/d.jpg"]
    # An empty FINDIMAGE_EXCLUDE and no ignore file: only hidden files are left out.
    (tmp_path / IGNORE_FILE).unlink()
    assert len(_found(tmp_path, exclusions=Exclusions.for_library(tmp_path, []))) == 8


def test_avif_pictures_are_found(tmp_path: Path) -> None:
    _touch(tmp_path / "a.avif")
    assert _found(tmp_path) == ["a.avif"]
