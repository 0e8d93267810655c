"""Finding the pictures in the library."""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from findimage.images import IMAGE_EXTENSIONS, NOT_A_FILE, check_size, read_regular_file
from findimage.library import ObjectStoreLibrary, StoredObject, shown_path
from findimage.raw import RAW_EXTENSIONS, RAW_EXTRA, raw_support
from indexer.exclude import Exclusions

log = logging.getLogger(__name__)

# Linux's PATH_MAX: a longer path is refused by every call that takes one.
MAX_PATH_BYTES = 4096
TOO_LONG = f"the path is longer than the {MAX_PATH_BYTES} bytes this system allows"


@dataclass(frozen=True)
class LibraryFile:
    """A picture in the library. `relative_path` uses '/' whatever the platform, and is how
    the index spells it (`shown_path`: bytes that are not UTF-8 as \\xNN); `root` is the
    library's folder, or its s3:// URL with `store` to read it through. An object's `mtime`
    is its LastModified."""

    root: Path | str
    relative_path: str
    size: int
    mtime: float
    store: ObjectStoreLibrary | None = field(default=None, compare=False, repr=False)
    # The relative path as the file system spells it, where that differs from relative_path.
    on_disk: str | None = field(default=None, compare=False, repr=False)

    @property
    def absolute_path(self) -> Path:
        assert isinstance(self.root, Path), "an object has no path on this machine"
        return self.root / (self.on_disk or self.relative_path)

    def read_bytes(self, max_bytes: int) -> bytes:
        """The file's bytes, refused (ImageError) over `max_bytes`, before reading where the
        size is known; OSError or FindImageError when it cannot be read."""
        check_size(self.size, max_bytes)
        if self.store is not None:
            return self.store.read(self.relative_path, max_bytes)
        return read_regular_file(self.absolute_path, max_bytes)


@dataclass(frozen=True)
class WalkSkip:
    """Something the walk left out, with the reason to show. `unknown` when the walk could
    not tell what is there (a folder it could not list, a file it could not look at): the
    index keeps what it has under that path, and the run is incomplete."""

    relative_path: str
    reason: str
    unknown: bool = False


def walk_library(
    root: Path, folder: str = "", exclusions: Exclusions | None = None
) -> Iterator[LibraryFile | WalkSkip]:
    """Every picture under `root` (or only under its `folder`), by extension, case-insensitive,
    in a stable order. Relative paths are always relative to `root`.

    Hidden files and folders, and what `exclusions` names, are left out. Symbolic links are
    resolved once and never followed: one leading outside the library is reported as
    skipped, and one leading inside it is left to the walk, which reaches what it points to
    under its own path. So each real file has one path whatever the scope of the run, and no
    link loop or link to a parent folder can make a walk repeat itself.

    Whatever one entry raises, that entry alone is reported and the walk goes on.
    """
    root = root.resolve()
    exclusions = exclusions or Exclusions()
    if folder:
        # A folder reached through a link is walked under its real path, as a whole run
        # would reach it.
        real = (root / folder).resolve()
        if not real.is_relative_to(root):
            yield WalkSkip(shown_path(folder), "a linked folder leading outside the library")
            return
        folder = "" if real == root else real.relative_to(root).as_posix()
    stack = [folder]
    while stack:
        here = stack.pop()
        listing = _listing(root, here)
        if isinstance(listing, WalkSkip):
            yield listing
            continue
        subfolders: list[str] = []
        for entry in listing:
            relative = f"{here}/{entry.name}" if here else entry.name
            try:
                found = _look_at(root, entry, relative, exclusions)
            except Exception as exc:  # one odd entry must not stop the walk
                log.info("cannot look at %s", shown_path(relative), exc_info=True)
                found = WalkSkip(shown_path(relative), f"cannot be read ({_why(exc)})", True)
            if isinstance(found, str):  # "folder"
                subfolders.append(relative)
            elif found is not None:
                yield found
        # Popped last first: reversed keeps the walk in name order.
        stack.extend(reversed(subfolders))


def _listing(root: Path, relative: str) -> list[os.DirEntry[str]] | WalkSkip:
    """The folder's entries, sorted by name, or why it could not be listed."""
    path = root / relative if relative else root
    shown = shown_path(relative) or "."
    try:
        with os.scandir(path) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except FileNotFoundError:
        return []  # gone since its parent was listed: what was under it is gone too
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return WalkSkip(shown, TOO_LONG)
        log.warning("cannot list %s: %s", path, exc.strerror or exc)
        return WalkSkip(shown, f"cannot be listed ({_why(exc)})", unknown=True)
    except Exception as exc:
        log.info("cannot list %s", path, exc_info=True)
        return WalkSkip(shown, f"cannot be listed ({_why(exc)})", unknown=True)


def _look_at(
    root: Path, entry: os.DirEntry[str], relative: str, exclusions: Exclusions
) -> LibraryFile | WalkSkip | str | None:
    """What one entry is: "folder" to walk into, a picture, a skip, or None to pass over."""
    if entry.name.startswith("."):
        return None
    shown = shown_path(relative)
    if entry.is_symlink():
        return _link(root, Path(entry.path), shown, exclusions)
    if entry.is_dir(follow_symlinks=False):
        return None if exclusions.excludes(shown, folder=True) else "folder"
    if Path(entry.name).suffix.lower() not in IMAGE_EXTENSIONS:
        return None
    if exclusions.excludes(shown, folder=False):
        return None
    if len(os.fsencode(entry.path)) >= MAX_PATH_BYTES:
        return WalkSkip(shown, TOO_LONG)
    try:
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None  # deleted since the folder was listed
    except OSError as exc:
        return WalkSkip(shown, f"cannot be read ({_why(exc)})", unknown=True)
    return _picture(root, relative, shown, info)


def _link(root: Path, path: Path, shown: str, exclusions: Exclusions) -> WalkSkip | None:
    is_picture = path.suffix.lower() in IMAGE_EXTENSIONS
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        # Dangling: whatever it pointed to is gone.
        return WalkSkip(shown, "cannot be read (No such file or directory)") if is_picture else None
    except RuntimeError:  # Python 3.11 reports a loop this way, later ones as OSError (ELOOP)
        return WalkSkip(shown, "a symbolic link loop") if is_picture else None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return WalkSkip(shown, "a symbolic link loop") if is_picture else None
        return WalkSkip(shown, f"cannot be read ({_why(exc)})", unknown=is_picture)
    is_folder = target.is_dir()
    if not (is_folder or is_picture) or exclusions.excludes(shown, folder=is_folder):
        return None
    if not target.is_relative_to(root):
        kind = "a linked folder" if is_folder else "a symbolic link"
        return WalkSkip(shown, f"{kind} leading outside the library")
    # Inside the library: the walk reaches the file under its own path.
    log.debug("%s links to %s, indexed under its own path", shown, target)
    return None


def _picture(root: Path, relative: str, shown: str, info: os.stat_result) -> LibraryFile | WalkSkip:
    if not stat.S_ISREG(info.st_mode):
        return WalkSkip(shown, NOT_A_FILE)
    if Path(relative).suffix.lower() in RAW_EXTENSIONS and not raw_support():
        return WalkSkip(shown, RAW_EXTRA)
    return LibraryFile(
        root=root,
        relative_path=shown,
        size=info.st_size,
        mtime=info.st_mtime,
        on_disk=relative if relative != shown else None,
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def walk_objects(
    store: ObjectStoreLibrary,
    folder: str = "",
    exclusions: Exclusions | None = None,
    listed: Iterable[StoredObject] | None = None,
) -> Iterator[LibraryFile | WalkSkip]:
    """Every picture under an object store's prefix (or its `folder`), as `walk_library`
    finds them in a folder: by extension, hidden names and exclusions left out, in key order.
    The listing (`listed`, when the caller made it already) gives each object's size and
    LastModified, so planning reads no object."""
    exclusions = exclusions or Exclusions()
    for stored in store.objects(folder) if listed is None else listed:
        parts = stored.relative_path.split("/")
        suffix = Path(parts[-1]).suffix.lower()
        if any(part.startswith(".") for part in parts) or suffix not in IMAGE_EXTENSIONS:
            continue
        if exclusions.excludes(stored.relative_path, folder=False):
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
