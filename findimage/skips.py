"""Which skipped files `findimage index` has named already, so each is said once.

A file the indexer cannot read is tried again on every run (it may have been fixed), and
was named again on every run; a library with a few broken files then opened each report
with the same lines. The command line remembers what it said, per library, in the data
dir; a file skipped for another reason, or skipped again after it was once indexed, is said
again. `--json` keeps listing every skipped file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from findimage.documents import Skipped

log = logging.getLogger(__name__)

SAID_FILE = "skipped-said.json"


def not_said_before(skipped: list[Skipped], data_dir: Path, library: str) -> list[Skipped]:
    """The skipped files an earlier run did not name, in the run's order; remembers them all.

    Only what this run skipped is kept, so a file that was fixed and breaks again is named
    again. The memory is a convenience: a file that cannot be read or written means every
    skipped file is named, as before.
    """
    said = _read(data_dir / SAID_FILE, library)
    if skipped or said:  # nothing to remember and nothing to forget: no file is made
        _write(data_dir / SAID_FILE, library, skipped)
    return [skip for skip in skipped if (skip.path, skip.reason) not in said]


def _read(path: Path, library: str) -> set[tuple[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("library") != library:
            return set()
        return {(str(path), str(reason)) for path, reason in data["said"]}
    except FileNotFoundError:
        return set()
    except Exception as exc:  # whatever is wrong with the file, every skipped file is said
        log.info("could not read the skipped files said before from %s: %s", path, exc)
        return set()


def _write(path: Path, library: str, skipped: list[Skipped]) -> None:
    data = {"library": library, "said": [[skip.path, skip.reason] for skip in skipped]}
    staging = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(staging, path)
    except OSError as exc:
        log.info("could not remember the skipped files in %s: %s", path, exc)
