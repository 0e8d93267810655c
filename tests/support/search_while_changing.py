"""One long-running search service (as `findimage serve` keeps one) searching by text in a
loop until a stop file appears, while another process changes the index. Before each search
it reads the paths whose removal the other process has already committed; a hit on one of
them is stale. Prints the number of searches, every error and every stale hit, as JSON.

    python -m tests.support.search_while_changing PROGRESS_FILE STOP_FILE GONE_FILE K
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from findimage.factory import build_search_service
from findimage.settings import load_settings
from tests.support.searches import text_request


def search_until_stopped(progress: Path, stop: Path, gone_file: Path, k: int) -> dict:
    runs, errors, stale = 0, [], []
    with build_search_service(load_settings()) as service:
        while not stop.exists():
            gone = set(json.loads(gone_file.read_text())) if gone_file.exists() else set()
            try:
                hits = service.search(text_request("a picture", k=k)).hits
            except Exception as exc:  # every failure is the finding, whatever its kind
                errors.append(f"{type(exc).__name__}: {exc}")
            else:
                stale += [hit.document.path for hit in hits if hit.document.path in gone]
            runs += 1
            progress.write_text(str(runs))
    return {"runs": runs, "errors": errors, "stale": stale}


if __name__ == "__main__":
    progress_file, stop_file, gone_path = map(Path, sys.argv[1:4])
    print(json.dumps(search_until_stopped(progress_file, stop_file, gone_path, int(sys.argv[4]))))
