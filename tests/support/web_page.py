"""The search page served in-process on a free loopback port, and a `findimage web` child."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from findimage.factory import build_search_service
from findimage.library import open_library
from findimage.settings import Settings
from findimage.thumbnails import ThumbnailCache
from tests.support.serve_process import pump_stderr
from web.app import WebDependencies, create_app
from web.server import WebServer, host_names


@contextmanager
def served_page(settings: Settings) -> Iterator[str]:
    """The page for the index `settings` name, as `findimage web` builds it; its base URL."""
    with build_search_service(settings) as service:
        root = settings.library or service.library_root()
        assert root is not None, "index a library first"
        library = open_library(root)
        dependencies = WebDependencies(
            service=service,
            library=library,
            thumbnails=ThumbnailCache(
                settings.data_dir / "thumbnails", library, settings.max_file_bytes
            ),
            max_file_bytes=settings.max_file_bytes,
            host_names=host_names("127.0.0.1"),
        )
        server = WebServer(create_app(dependencies), "127.0.0.1", 0)
        server.start()
        try:
            yield server.url.rstrip("/")
        finally:
            server.close(timeout=30)


@dataclass
class WebProcess:
    process: subprocess.Popen
    url: str
    lines: queue.Queue[str]
    pump: threading.Thread

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, then the exit status and everything printed to stderr."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=120)
        self.pump.join(timeout=60)
        return code, _rest(self.lines)


@contextmanager
def web_process(env: dict[str, str], cwd: Path, *args: str) -> Iterator[WebProcess]:
    """`findimage web --port 0` in a child process, once it printed its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "findimage.cli", "web", "--port", "0", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    pump = threading.Thread(target=pump_stderr, args=(process, lines), daemon=True)
    pump.start()
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first.startswith("findimage web: http://"):
            process.wait(timeout=120)
            pump.join(timeout=60)
            raise AssertionError(f"findimage web did not start: {first}{_rest(lines)}")
        url = first.split()[2].rstrip("/")
        yield WebProcess(process, url, lines, pump)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)


def _rest(lines: queue.Queue[str]) -> str:
    printed = []
    while not lines.empty():
        printed.append(lines.get())
    return "".join(printed)


def web_environment(tmp: Path, model: Path, model_cache: Path) -> dict[str, str]:
    """This process's environment without its findimage and Slack settings, for `model`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINDIMAGE_", "SLACK_"))}
    env.update(
        FINDIMAGE_IMAGE_MODEL=str(model),
        FINDIMAGE_TEXT_MODEL=str(model),
        FINDIMAGE_DATA_DIR=str(tmp / "data"),
        FINDIMAGE_MODEL_CACHE=str(model_cache),
        FINDIMAGE_DEVICE="cpu",
        HF_HUB_OFFLINE="1",
    )
    return env


def index_library(library: Path, env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "findimage.cli", "index", str(library)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
