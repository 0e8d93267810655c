"""A real `findimage serve` child process: its first line, its stderr, and a graceful stop."""

from __future__ import annotations

import queue
import signal
import subprocess
from dataclasses import dataclass

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
