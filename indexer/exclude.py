"""What the walk leaves out of the library: FINDIMAGE_EXCLUDE, and a `.findimageignore` file
at the library's root (a folder's, or the object at an s3:// library's prefix), both in
gitignore's syntax (through pathspec, which implements it)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

import pathspec

from findimage.errors import ConfigError, ImageError, NotFoundError
from findimage.library import ObjectStoreLibrary

IGNORE_FILE = ".findimageignore"
# An ignore file is a few lines; one this large is not one.
IGNORE_FILE_MAX_BYTES = 1024 * 1024


class Exclusions:
    """gitignore patterns matched against paths relative to the library, '/'-separated: a
    pattern without a slash (`@eaDir`, `*.tmp.jpg`) matches a name at any depth, and what
    is under an excluded folder is excluded with it."""

    def __init__(self, patterns: Iterable[str] = ()):
        self.patterns = [line for line in (p.strip() for p in patterns) if line]
        self._spec = pathspec.GitIgnoreSpec.from_lines(self.patterns)

    @classmethod
    def from_setting(cls, patterns: Iterable[str], lines: Iterable[str] = ()) -> Exclusions:
        """FINDIMAGE_EXCLUDE's patterns, then an ignore file's `lines`. A setting's pattern
        is a pattern even where gitignore would read a comment (`#recycle`)."""
        literal = [f"\\{p}" if p.startswith("#") else p for p in patterns]
        return cls([*literal, *lines])

    @classmethod
    def for_library(cls, root: Path, patterns: Iterable[str]) -> Exclusions:
        """`patterns` (FINDIMAGE_EXCLUDE), then the lines of the library's ignore file."""
        ignore_file = root / IGNORE_FILE
        try:
            lines = ignore_file.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
        except FileNotFoundError:
            lines = []
        except OSError as exc:
            # Going on without it would drop from the index what it keeps out on purpose.
            raise ConfigError(
                f"Cannot read {ignore_file} ({exc.strerror or exc}): make it readable or "
                "remove it, then run again."
            ) from exc
        return cls.from_setting(patterns, lines)

    @classmethod
    def for_objects(
        cls,
        library: ObjectStoreLibrary,
        patterns: Iterable[str],
        listed: Collection[str] | None = None,
    ) -> Exclusions:
        """`patterns`, then the lines of the `.findimageignore` object at the library's
        prefix (s3://bucket/prefix/.findimageignore), read through the library as the
        pictures are; a failure to read it other than its absence is the run's failure.
        `listed`, the whole library's listing when the run has it, spares the request when
        there is no such object."""
        where = f"{library.location}/{IGNORE_FILE}"
        if listed is not None and IGNORE_FILE not in listed:
            return cls.from_setting(patterns)
        try:
            data = library.read(IGNORE_FILE, IGNORE_FILE_MAX_BYTES)
        except NotFoundError:
            data = b""
        except ImageError as exc:  # over the size above
            raise ConfigError(
                f"{where} is over {IGNORE_FILE_MAX_BYTES // 1024} KB, too large for an ignore "
                "file: shorten it or remove it, then run again."
            ) from exc
        lines = data.decode("utf-8", errors="surrogateescape").splitlines()
        return cls.from_setting(patterns, lines)

    def excludes(self, relative_path: str, folder: bool) -> bool:
        if not self.patterns:
            return False
        return self._spec.match_file(f"{relative_path}/" if folder else relative_path)
