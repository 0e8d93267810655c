"""`.ci/run` leaves no virtual environment behind (each is about 1.5 GB), however it ends; the
pre-commit hooks run the same checks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_a_failed_run_removes_its_virtual_environment(tmp_path: Path) -> None:
    temp, bin_dir = tmp_path / "tmp", tmp_path / "bin"
    temp.mkdir()
    bin_dir.mkdir()
    # A python3 that makes the venv folder with something in it, then fails as pip might.
    fake = bin_dir / "python3"
    fake.write_text('#!/bin/sh\nmkdir -p "$3" && touch "$3/pyvenv.cfg"\nexit 3\n')
    fake.chmod(0o755)
    # The browser is there already, so the run goes straight to its virtual environment.
    for browser in ("chromium", "chromedriver"):
        (bin_dir / browser).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / browser).chmod(0o755)
    env = {**os.environ, "TMPDIR": str(temp), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 3
    assert list(temp.iterdir()) == []


def test_the_pre_commit_hooks_run_what_ci_runs_before_the_tests() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    entries = {hook["entry"] for repo in hooks["repos"] for hook in repo["hooks"]}
    ci_lines = {line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()}
    checks = {"ruff check .", "ruff format --check .", "mypy"}
    assert checks <= ci_lines
    # pre-commit passes the changed files where CI passes `.`: the same command otherwise.
    assert entries == {"ruff check", "ruff format --check", "mypy"}
