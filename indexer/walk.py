"""Finding the pictures in the library."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from findimage.images import IMAGE_EXTENSIONS, check_size
from findimage.library import ObjectStoreLibrary
from findimage.raw import RAW_EXTENSIONS, RAW_EXTRA, raw_support

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LibraryFile:
    """A picture in the library. `relative_path` uses '/' whatever the platform; `root` is
    the library's folder, or its s3:// URL with `store` to read it through. An object's
    `mtime` is its LastModified."""

    root: Path | str
    relative_path: str
    size: int
    mtime: float
    store: ObjectStoreLibrary | None = field(default=None, compare=False, repr=False)

    @property
    def absolute_path(self) -> Path:
        assert isinstance(self.root, Path), "an object has no path on this machine"
        return self.root / self.relative_path

    def read_bytes(self, max_bytes: int) -> bytes:
        """The file's bytes, refused (ImageError) over `max_bytes`, before reading where the
        size is known; OSError or FindImageError when it cannot be read."""
        check_size(self.size, max_bytes)
        if self.store is not None:
            return self.store.read(self.relative_path, max_bytes)
        return self.absolute_path.read_bytes()


@dataclass(frozen=True)
class WalkSkip:
    relative_path: str
    reason: str


def walk_library(root: Path, folder: str = "") -> Iterator[LibraryFile | WalkSkip]:
    """Every picture under `root` (or only under its `folder`), by extension, case-insensitive,
    in a stable order. Relative paths are always relative to `root`.

    Hidden files and folders are left out. A symbolic link is followed only when it
    leads to a place inside the library; one leading outside (file or folder) is reported as
    skipped.
    """
    root = root.resolve()
    visited: set[Path] = set()
    start = root / folder if folder else root
    for here_name, subfolders, files in os.walk(start, followlinks=True, onerror=_log_walk_error):
        here = Path(here_name)
        # A linked folder seen twice (or a link to an ancestor) would index pictures twice or loop.
        real = here.resolve()
        if real in visited:
            subfolders[:] = []
            continue
        visited.add(real)
        kept: list[str] = []
        for name in sorted(subfolders):
            if name.startswith("."):
                continue
            if _inside(here / name, root):
                kept.append(name)
            else:
                relative = (here / name).relative_to(root).as_posix()
                yield WalkSkip(relative, "a linked folder leading outside the library")
        subfolders[:] = kept
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = here / name
            relative = path.relative_to(root).as_posix()
            if not _inside(path, root):
                yield WalkSkip(relative, "a symbolic link leading outside the library")
                continue
            if path.suffix.lower() in RAW_EXTENSIONS and not raw_support():
                yield WalkSkip(relative, RAW_EXTRA)
                continue
            try:
                stat = path.stat()
            except OSError as exc:
                yield WalkSkip(relative, f"cannot be read ({exc.strerror or exc})")
                continue
            yield LibraryFile(
                root=root, relative_path=relative, size=stat.st_size, mtime=stat.st_mtime
            )


def walk_objects(store: ObjectStoreLibrary, folder: str = "") -> Iterator[LibraryFile | WalkSkip]:
    """Every picture under an object store's prefix (or its `folder`), as `walk_library`
    finds them in a folder: by extension, hidden names left out, in key order. The listing
    gives each object's size and LastModified, so planning reads no object."""
    for stored in store.objects(folder):
        parts = stored.relative_path.split("/")
        suffix = Path(parts[-1]).suffix.lower()
        if any(part.startswith(".") for part in parts) or suffix not in IMAGE_EXTENSIONS:
            continue
        if suffix in RAW_EXTENSIONS and not raw_support():
            yield WalkSkip(stored.relative_path, RAW_EXTRA)
            continue
        yield LibraryFile(
            root=store.location,
            relative_path=stored.relative_path,
            size=stored.size,
            mtime=stored.last_modified,
            store=store,
        )


def _inside(path: Path, root: Path) -> bool:
    if not path.is_symlink():
        return True
    try:
        return path.resolve().is_relative_to(root)
    except OSError:
        return False


def _log_walk_error(error: OSError) -> None:
    log.warning("cannot list %s: %s", error.filename, error.strerror)
