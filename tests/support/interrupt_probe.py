"""Run by tests/test_interrupts.py inside a test run started with SIGINT ignored; not collected
on its own (its name does not start with test_)."""

from __future__ import annotations

import subprocess
import sys


def test_a_command_line_started_by_a_test_takes_ctrl_c() -> None:
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == "True", child.stdout
