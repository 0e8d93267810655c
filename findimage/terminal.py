"""Search results for a terminal: a header, then one line per picture that opens it.

The absolute path of each result is an OSC 8 hyperlink where the terminal is known to
support them. The escape and its `file://HOSTNAME/path` form follow the spec:
https://gist.github.com/egmontkob/eb114294efbcd5adb1944c9f3cb5feda
Which terminals support it: the same environment checks as the `supports-hyperlinks`
crate (https://github.com/zkat/supports-hyperlinks, src/lib.rs), FORCE_HYPERLINK included.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from findimage.documents import SearchHit
from findimage.filters import picture_date
from findimage.library import is_object_store, joined

_LINKING_PROGRAMS = frozenset({"Hyper", "iTerm.app", "terminology", "WezTerm", "vscode"})
_LINKING_TERMS = frozenset({"xterm-kitty", "alacritty", "alacritty-direct"})
# VTE 0.50 (GNOME Terminal 3.26 and its family) was the first with hyperlinks.
_VTE_WITH_LINKS = 5000


def supports_hyperlinks(stream: TextIO, env: Mapping[str, str]) -> bool:
    """True when `stream` is a terminal known to show OSC 8 links (or FORCE_HYPERLINK says so)."""
    forced = env.get("FORCE_HYPERLINK")
    if forced is not None:
        return forced.strip() != "0"
    if not stream.isatty():
        return False
    vte = env.get("VTE_VERSION", "")
    return (
        "DOMTERM" in env
        or (vte.isdigit() and int(vte) >= _VTE_WITH_LINKS)
        or env.get("TERM_PROGRAM") in _LINKING_PROGRAMS
        or env.get("TERM") in _LINKING_TERMS
        or env.get("COLORTERM") == "xfce4-terminal"
        or "WT_SESSION" in env
        or "KONSOLE_VERSION" in env
    )


def hyperlink(path: Path, text: str) -> str:
    """`text` linked to the file at the absolute `path`, on this host."""
    uri = f"file://{socket.gethostname()}{path.as_uri().removeprefix('file://')}"
    return f"\x1b]8;;{uri}\x1b\\{text}\x1b]8;;\x1b\\"


def printable(text: str) -> str:
    """`text` safe for one terminal line: control characters in a file name (a newline, an
    escape sequence that would recolor or retitle the terminal) are shown escaped, as `\\n`."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


# A path in a line that names a skipped file is shown whole up to this many characters (as
# shown, escapes included); a longer one (a folder nested past the system's 4,096 bytes)
# keeps its first third and its end, the file's name, around "...". `--json` gives it whole.
SHOWN_PATH_WIDTH = 240
_CUT = "..."


def shortened(text: str, width: int = SHOWN_PATH_WIDTH) -> str:
    """`text` as it is when at most `width` characters, else cut to exactly `width`."""
    if len(text) <= width:
        return text
    kept = width - len(_CUT)
    head = kept // 3
    return f"{text[:head]}{_CUT}{text[len(text) - (kept - head) :]}"


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def results_table(hits: list[SearchHit], root: str | None, title: str, links: bool) -> str:
    """A title line, column names, and one line per result, best first.

    The date is when the picture was taken where its EXIF says so, else the file's date (in
    UTC, as date filters compare it); the `from` column says which.
    Without a recorded library root (an index from before roots were kept), paths stay
    relative to the library.
    """
    # The title quotes the query and may name a query picture: escaped as the paths are.
    lines = [
        printable(title),
        f"{'score':<7} {'id':<8}  {'size':>9}  {'date':<10} {'from':<5}  picture",
    ]
    for hit in hits:
        doc = hit.document
        day, origin = picture_date(doc)
        location = joined(root, doc.path) if root else doc.path
        shown = printable(location)
        if links and root and not is_object_store(root):
            shown = hyperlink(Path(location), shown)
        size, short_id = human_size(doc.size), doc.id[:8]
        lines.append(
            f"{hit.score:<7.4f} {short_id:<8}  {size:>9}  {day:%Y-%m-%d} {origin:<5}  {shown}"
        )
    return "\n".join(lines)
