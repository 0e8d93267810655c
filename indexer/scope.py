"""Which part of the library a run covers: the scope rules of `findimage index` and watch mode.

The index records the library it was built from. A run is given a folder (or an s3:// URL),
the library setting, or nothing; these rules say which library that is, and which folder
inside it the run brings up to date, and refuse what would silently replace one library by
another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from findimage.errors import ConfigError
from findimage.library import is_object_store
from findimage.settings import Settings


class LibraryMismatchError(ConfigError):
    """The index holds another library than the folder given."""


@dataclass(frozen=True)
class Scope:
    """What one run covers: the library root, which the index's paths are relative to, and
    the folder inside it to bring up to date ("" for all of it)."""

    root: Path | str
    folder: str = ""


def library_scope(path: Path | str, recorded: str | None, replace: bool, setting: str) -> Scope:
    """Where `path` lies in the library the index was built from.

    The library itself or a folder inside it is fine; another folder would delete the
    whole index in favour of it, so it is refused unless `replace` says to start over.
    `setting` names what points findimage at another index.
    """
    if is_object_store(path) or is_object_store(recorded):
        return _object_store_scope(str(path), recorded, replace, setting)
    path = Path(path).resolve()
    if recorded is None or replace:
        return Scope(path)
    root = Path(recorded)
    if path == root:
        return Scope(root)
    if path.is_relative_to(root):
        return Scope(root, path.relative_to(root).as_posix())
    raise LibraryMismatchError(
        f"This index holds the library {root}, and {path} is not inside it: to keep a second "
        f"library, set {setting} to another place for its index; to start over with {path}, "
        f"run `findimage index {path} --replace`."
    )


def _object_store_scope(url: str, recorded: str | None, replace: bool, setting: str) -> Scope:
    """`library_scope` for s3:// URLs: a prefix is inside the recorded one when it extends it
    by whole path segments."""
    url = url.rstrip("/")
    if recorded is None or replace or url == recorded:
        return Scope(url)
    if url.startswith(f"{recorded}/"):
        return Scope(recorded, url[len(recorded) + 1 :])
    raise LibraryMismatchError(
        f"This index holds the library {recorded}, and {url} is not inside it: to keep a "
        f"second library, set {setting} to another place for its index; to start over with "
        f"{url}, run `findimage index {url} --replace`."
    )


def library_to_index(
    given: Path | str | None, settings: Settings, recorded: str | None
) -> Path | str:
    """The folder (or s3:// URL) to index: the one given, else FINDIMAGE_LIBRARY, else the
    library the index records."""
    if isinstance(given, str) or (given is None and isinstance(settings.library, str)):
        return given or settings.require_library()
    if given is None and settings.library is None and is_object_store(recorded):
        return str(recorded)
    if given is not None:
        if not given.is_dir():
            raise ConfigError(f"{given} is not a folder: give the folder of pictures to index.")
        return given
    if settings.library is None and recorded is not None:
        if not Path(recorded).is_dir():
            raise ConfigError(
                f"The library this index was built from, {recorded}, is not a folder any more: "
                "give its new place with `findimage index FOLDER --replace`."
            )
        return Path(recorded)
    return settings.require_library()


def whole_library(
    path: Path | str, recorded: str | None, replace: bool, setting: str
) -> Path | str:
    """The library's root for a rebuild, which embeds the whole library again: a folder
    inside it would drop the rest, so it is refused."""
    scope = library_scope(path, recorded, replace, setting)
    if scope.folder:
        raise ConfigError(
            f"--rebuild embeds the whole library again: run it on {scope.root}, "
            "not on a folder inside it."
        )
    return scope.root


def folder_to_watch(location: Path | str) -> Path:
    """Watch mode follows a folder of this machine; an object store has no events to follow."""
    if isinstance(location, str):
        raise ConfigError(
            "Watch mode follows folders of this machine; for a library in object storage, run "
            "`findimage index` on a schedule instead (it lists the bucket and reads only "
            "what changed)."
        )
    return location
