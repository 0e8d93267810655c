"""`findimage web` as a user starts it: the address it prints, and what it refuses."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import requests

from findimage.cli import main
from tests.support.cli import run_in_process
from tests.support.pictures import make_library
from tests.support.web_page import web_process


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "example.com", "::"])
def test_any_address_but_this_computers_own_is_refused_before_anything_starts(
    findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str], host: str
) -> None:
    code, out, err = run_in_process(capsys, "web", "--host", host)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no sign-in" in err and "127.0.0.1" in err


def test_a_port_in_use_names_the_setting(
    findimage_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    make_library(tmp_path / "library", 2)
    assert main(["index", str(tmp_path / "library")]) == 0
    capsys.readouterr()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_in_process(capsys, "web", "--port", str(port))
    assert code == 2
    assert f"Port {port}" in err and "FINDIMAGE_WEB_PORT" in err and err.count("\n") == 1


def test_it_prints_its_address_and_serves_the_page_there(
    findimage_env: dict[str, str], tmp_path: Path
) -> None:
    make_library(tmp_path / "library", 3)
    assert main(["index", str(tmp_path / "library")]) == 0
    with web_process(dict(os.environ), tmp_path) as web:
        page = requests.get(web.url + "/", timeout=120)
        assert page.ok and "<title>findimage</title>" in page.text
        # Ctrl-C is how the page is stopped: quietly, and with success.
        code, printed = web.interrupt()
    assert code == 0, printed
    assert "Traceback" not in printed and "interrupted" not in printed
