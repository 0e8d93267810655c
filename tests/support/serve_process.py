"""A real `findimage serve` child process: its first line, its stderr, and a graceful stop."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.support.slack_requests import SlackSender


@dataclass
class ServeProcess:
    process: subprocess.Popen
    url: str
    first_line: str
    lines: queue.Queue[str]

    @property
    def sender(self) -> SlackSender:
        return SlackSender(self.url + "/slack/events")

    def stop(self, how: int = signal.SIGTERM, timeout: float = 400) -> tuple[int, str]:
        """SIGTERM (or Ctrl-C's SIGINT), then the exit status and what it printed after the
        first line."""
        self.process.send_signal(how)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGQUIT)
            self.process.wait(timeout=30)
            raise AssertionError(f"no exit after SIGTERM: {self._printed()}") from None
        return code, self._printed()

    def _printed(self) -> str:
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        return "".join(rest)


def pump_stderr(process: subprocess.Popen, lines: queue.Queue[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        lines.put(line)


def launch_serve(
    env: dict[str, str], cwd: Path, *options: str, first_line_timeout: float = 120
) -> ServeProcess:
    """`findimage serve` in HTTP mode as a child process with exactly `env` (plus PATH and
    the like from this one), returned once it prints that it listens."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FINDIMAGE_", "SLACK_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "findimage.cli", *options, "serve", "--host", "127.0.0.1"],
        env={**base, "HF_HUB_OFFLINE": "1", "PYTHONFAULTHANDLER": "1", **env},
        cwd=cwd,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=pump_stderr, args=(process, lines), daemon=True).start()
    while True:  # log lines (with -v) may come first
        try:
            first = lines.get(timeout=first_line_timeout)
        except queue.Empty:
            process.kill()
            raise AssertionError("findimage serve did not say it listens") from None
        if first.startswith("findimage: "):
            break
    if "listening for Slack on http://127.0.0.1:" not in first:
        process.kill()
        raise AssertionError(f"findimage serve did not start: {first}")
    port = first.split("http://127.0.0.1:")[1].split("/")[0]
    return ServeProcess(process, f"http://127.0.0.1:{port}", first, lines)
