"""Running the real `findimage` command line: in a child process as a user would, or through
`main` in this process where the test needs the process's own state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from findimage.cli import main

FINDIMAGE = [sys.executable, "-m", "findimage.cli"]


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


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`findimage ARGS` through `main` in this process: exit code, stdout, stderr."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def json_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """`findimage ARGS --json` in this process, which must succeed; its JSON."""
    code, out, err = run_in_process(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)
