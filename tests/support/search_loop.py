"""Runs `findimage search ... --json` in a loop until a stop file appears, as another process
would while the index is rebuilt, and prints how many runs there were and every failure.

    python -m tests.support.search_loop PROGRESS_FILE STOP_FILE search ARGS...
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

from findimage.cli import main as findimage


def search_until_stopped(progress: Path, stop: Path, args: list[str]) -> dict:
    runs, failures = 0, []
    while not stop.exists():
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = findimage(args)
        runs += 1
        if code != 0 or not json.loads(out.getvalue() or "{}").get("results"):
            failures.append(f"exit {code}: {err.getvalue().strip()}")
        progress.write_text(str(runs))
    return {"runs": runs, "failures": failures}


if __name__ == "__main__":
    progress_file, stop_file, *search_args = sys.argv[1:]
    print(json.dumps(search_until_stopped(Path(progress_file), Path(stop_file), search_args)))
