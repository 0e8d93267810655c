"""A test run started as a background job still lets its tests press Ctrl-C.

A shell without job control starts a background job (`pytest &` in a script) with SIGINT
ignored (POSIX, "Shell Command Language", 2.11 Signals and Error Handling), and an ignored
signal stays ignored across fork and exec: every command line a test started ignored the
Ctrl-C the test sent it, and the watcher tests hung until their ceiling.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tests

ROOT = Path(tests.__file__).parent.parent
PROBE = "tests/support/interrupt_probe.py"

# SIGINT ignored first, then pytest in its place: what `pytest &` in a script amounts to.
AS_A_BACKGROUND_JOB = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def test_a_run_started_with_ctrl_c_ignored_starts_its_commands_with_it_back() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            AS_A_BACKGROUND_JOB,
            "-m",
            "pytest",
            "-n0",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            PROBE,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
