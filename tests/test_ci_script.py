"""`.ci/run` leaves no virtual environment behind (each is about 1.5 GB), however it ends."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_failed_run_removes_its_virtual_environment(tmp_path: Path) -> None:
    temp, bin_dir = tmp_path / "tmp", tmp_path / "bin"
    temp.mkdir()
    bin_dir.mkdir()
    # A python3 that makes the venv folder with something in it, then fails as pip might.
    fake = bin_dir / "python3"
    fake.write_text('#!/bin/sh\nmkdir -p "$3" && touch "$3/pyvenv.cfg"\nexit 3\n')
    fake.chmod(0o755)
    env = {**os.environ, "TMPDIR": str(temp), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 3
    assert list(temp.iterdir()) == []
