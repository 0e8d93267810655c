"""What the command line writes to a terminal and to a pipe (issue 20, item 16): whatever a
user typed or a file is named is shown escaped, headers and log lines included; a reader that
goes away ends the command quietly; a URL setting that cannot be read names the setting."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import FINDIMAGE, findimage, json_in_process, run_in_process
from tests.support.pictures import draw_shape, encode

# An escape that would turn the terminal red, and one that would retitle its window.
RED = "\x1b[31m"
TITLE = "\x1b]0;pwned\x07"


@pytest.fixture
def library(
    tmp_path: Path,
    findimage_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    monkeypatch.delenv("FORCE_HYPERLINK", raising=False)
    root = tmp_path / f"lib{TITLE}"
    root.mkdir()
    for number, colour in enumerate(("red", "green", "blue")):
        picture = root / f"{RED}{colour}-{number}.png"
        picture.write_bytes(encode(draw_shape(colour, "circle", size=(64, 64))))
    json_in_process(capsys, "index", str(root))
    return root


def _shown_escaped(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output
    assert "\\x1b" in output


def test_search_headers_show_the_query_and_its_picture_escaped(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = sorted(library.iterdir())[0]
    code, out, err = run_in_process(capsys, "search", "--image", str(picture), "-k", "1")
    assert code == 0, err
    _shown_escaped(out)
    assert out.splitlines()[0] == (
        f"Pictures like {library.parent}/lib\\x1b]0;pwned\\x07/\\x1b[31mblue-2.png, best first:"
    )
    code, out, err = run_in_process(capsys, "search", f"{RED}red circle", "-k", "1")
    assert code == 0, err
    _shown_escaped(out)
    assert out.splitlines()[0] == 'Pictures for "\\x1b[31mred circle", best first:'
    code, out, err = run_in_process(capsys, "search", f"{TITLE}sun + moon", "-k", "1")
    assert code == 0, err
    _shown_escaped(out)


def test_status_shows_the_library_escaped(
    library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_in_process(capsys, "status")
    assert code == 0, err
    _shown_escaped(out)
    assert f"library: {library.parent}/lib\\x1b]0;pwned\\x07" in out.splitlines()


def test_log_lines_show_file_names_escaped(library: Path, findimage_env: dict[str, str]) -> None:
    (library / f"{RED}broken.jpg").write_bytes(b"not a picture")
    done = findimage("-v", "index", "--json", str(library), env={}, cwd=library.parent)
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stderr.splitlines() if "skipped" in line]
    assert skipped and all("\\x1b[31mbroken.jpg" in line for line in skipped)
    assert "\x1b" not in done.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly_as_sigpipe_would(
    library: Path, findimage_env: dict[str, str]
) -> None:
    """`findimage search ... | head -1`, where head has gone before the results are written."""
    child = subprocess.Popen(
        [*FINDIMAGE, "search", "circle", "-k", "3"],
        env={**os.environ, **findimage_env},
        cwd=library.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader is gone before the child writes a byte
    err = child.stderr.read()
    assert child.wait(timeout=300) == 128 + signal.SIGPIPE
    # Nothing about the pipe. The run that finds the text model not yet exported in the
    # suite's shared cache (whichever test comes first, in random order) says it prepares it.
    preparing = "Preparing the text model"
    assert [line for line in err.splitlines() if not line.startswith(preparing)] == []


@pytest.mark.parametrize(
    ("setting", "value", "backend"),
    [
        ("FINDIMAGE_ES_URL", "http://admin:hunter2secret@127.0.0.1:notaport", "elasticsearch"),
        ("FINDIMAGE_ES_URL", "http://admin:hunter2secret@127.0.0.1:99999", "elasticsearch"),
        ("FINDIMAGE_ES_URL", "http://admin:hunter2secret@:9200", "elasticsearch"),
        ("FINDIMAGE_S3_ENDPOINT_URL", "http://key:hunter2secret@127.0.0.1:port", "embedded"),
    ],
)
def test_a_url_setting_that_cannot_be_read_names_the_setting_and_no_password(
    findimage_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    value: str,
    backend: str,
) -> None:
    monkeypatch.setenv("FINDIMAGE_BACKEND", backend)
    monkeypatch.setenv(setting, value)
    code, out, err = run_in_process(capsys, "search", "beach")
    assert (code, out) == (2, "")
    assert err.startswith(f"findimage: Invalid settings: {setting}: is not a URL that can be used")
    assert err.count("\n") == 1
    assert "hunter2secret" not in err
