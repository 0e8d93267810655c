"""`findimage` runs started by forking a process that has imported it already.

A trial that kills `findimage index` twenty times starts twenty processes, and each new
interpreter spends about five seconds of CPU importing sentence-transformers and PyTorch
before it indexes anything: most of the trial's time. Here one helper process (a "zygote",
as Android calls the same trick) imports the command line and its heavy libraries once, then
forks a child per run. Each child is a process of its own that runs the real
`findimage.cli.main` from its own argument list and dies of SIGKILL like any other; the
fork only skips the imports. Nothing has run a PyTorch operation in the helper before it
forks, so no thread pool is copied half-way through its work.

The helper runs one child at a time: it reports the child's pid, waits for it, then reports
its exit code. The command line's own subprocess runs (`tests/support/cli.py`) stay the
rule; this is for trials that start many processes and kill them.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

HELPER_GONE = -1


class ForkedRun:
    """One forked `findimage` process, as much of `subprocess.Popen` as the trials use."""

    def __init__(self, pid: int, exits: queue.Queue[int]) -> None:
        self.pid = pid
        self._exits = exits
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = self._exits.get_nowait()
            except queue.Empty:
                return None
        return self.returncode

    def kill(self) -> None:
        # The helper has not reaped the child before it reports its exit, so the pid is
        # still this child's (alive or a zombie) whenever the run has not ended.
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        if self.returncode is None:
            try:
                self.returncode = self._exits.get(timeout=timeout)
            except queue.Empty:
                raise subprocess.TimeoutExpired(["findimage", f"pid {self.pid}"], timeout) from None
        return self.returncode


class ForkingCli:
    """The helper process, started with the environment and folder every run shares."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self._helper = subprocess.Popen(
            # Run as a script: `tests` is not importable from the trial's folder.
            [sys.executable, __file__],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._helper.stdin is not None and self._helper.stdout is not None
        self._requests: IO[str] = self._helper.stdin
        self._pids: queue.Queue[int] = queue.Queue()
        self._exits: queue.Queue[int] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(self._helper.stdout,))
        self._reader.start()
        self._running: ForkedRun | None = None

    def _read(self, replies: IO[str]) -> None:
        for line in replies:
            reply = json.loads(line)
            if "exit" in reply:
                self._exits.put(reply["exit"])
            else:
                self._pids.put(reply["pid"])
        self._pids.put(HELPER_GONE)  # a start waiting for a pid fails now, not at its deadline

    def start(self, argv: Sequence[str]) -> ForkedRun:
        assert self._running is None or self._running.poll() is not None, "one run at a time"
        self._requests.write(json.dumps(list(argv)) + "\n")
        self._requests.flush()
        # The helper imports everything before it reads its first request: a generous wait.
        pid = self._pids.get(timeout=300)
        assert pid != HELPER_GONE, f"the forking helper ended with {self._helper.wait()}"
        self._running = ForkedRun(pid, self._exits)
        return self._running

    def __enter__(self) -> ForkingCli:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._running is not None:
            self._running.kill()
        self._requests.close()
        self._helper.wait(timeout=60)
        self._reader.join(timeout=60)


def _run_child(argv: list[str]) -> None:
    """In the forked child: the real command line, its output thrown away; never returns."""
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        for descriptor in (0, 1, 2):  # off the helper's request and reply pipes
            os.dup2(devnull, descriptor)
        from findimage.cli import main

        code = main(argv)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os._exit(code)


def _serve() -> None:
    # What `findimage index` imports on its way to its first picture, imported once here.
    import sentence_transformers  # noqa: F401

    import findimage.cli  # noqa: F401

    for line in sys.stdin:
        argv = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(argv)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    _serve()
