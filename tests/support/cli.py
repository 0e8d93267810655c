"""Running the real `findimage` command line in a child process, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

FINDIMAGE = [sys.executable, "-m", "bot.cli"]


def findimage(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FINDIMAGE, *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def findimage_json(*args: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    done = findimage(*args, "--json", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
