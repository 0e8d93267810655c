"""One long-running search service (as `findimage serve` keeps one) searching by picture in a
loop until a stop file appears; prints every outcome as JSON, with whether the search started
after the marker file appeared.

    python -m tests.support.service_loop PROGRESS_FILE STOP_FILE MARKER_FILE PICTURE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from findimage.errors import FindImageError
from findimage.factory import build_search_service
from findimage.settings import load_settings
from tests.support.searches import picture_request


def search_until_stopped(progress: Path, stop: Path, marker: Path, picture: Path) -> list[dict]:
    service = build_search_service(load_settings())
    data = picture.read_bytes()
    outcomes = []
    while not stop.exists():
        after_marker = marker.exists()
        try:
            hits = service.search(picture_request(data, k=3)).hits
            outcome = {"results": [[hit.document.path, hit.score] for hit in hits]}
        except FindImageError as error:
            outcome = {"refused": str(error)}
        outcomes.append({"after_marker": after_marker, **outcome})
        progress.write_text(str(len(outcomes)))
    return outcomes


if __name__ == "__main__":
    progress_file, stop_file, marker_file, picture_file = map(Path, sys.argv[1:])
    print(json.dumps(search_until_stopped(progress_file, stop_file, marker_file, picture_file)))
