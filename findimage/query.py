"""Combined queries: `2:beach + like:3f2a - people` as a list of weighted terms.

As rclip does, a query is a weighted sum of terms. `+` and `-` standing alone between words
add or subtract the next term; `N:` before a term weighs it (N from 0.01 to 10); `like:ID`
is an indexed picture, by its id or the start of it (at least 4 characters); in the CLI a
term that names a picture file is that picture, even when its name holds " - " or " + ".
A term in double quotes is text whatever it holds ("salt + pepper"). Everything else is
text. A query with one text term and no weight is a plain text query, answered exactly as
before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from findimage.errors import ConfigError

TermKind = Literal["text", "like", "picture"]
# What the CLI finds at a term read as a path: a picture file, nothing while the term looks like
# a path (an error), or nothing and the term is words.
PathKind = Literal["picture", "missing", "text"]

MAX_TERMS = 10
MAX_WEIGHT = 10.0
MIN_WEIGHT = 0.01
MIN_ID_PREFIX = 4

SYNTAX = (
    "Combine terms with + and -, and weigh a term with a number and a colon, "
    "for example 2:beach + like:3f2a9c1b - people"
)

# An operator is a lone + or - with blanks (or the start) on both sides: "t-shirt" and
# "-5 degrees" stay text.
_OPERATOR = re.compile(r"(?:^|(?<=\s))([+-])(?=\s|$)")
# A weight is a number and a colon stuck to a word: "10:30 meeting" stays a time.
_WEIGHT = re.compile(r"^(\d+(?:\.\d+)?):(?=[^\d\s])(.*)$", re.DOTALL)
_LIKE = re.compile(r"^like:(\S*)$", re.IGNORECASE)
# Double quotes, straight or curly (as macOS and phones type them), keep a term whole.
_QUOTED = re.compile(r'"[^"]*"|“[^”]*”')
_HEX_ID = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class Term:
    """One part of a query: `weight` is negative for a subtracted term."""

    kind: TermKind
    value: str
    weight: float = 1.0


def parse_query(
    text: str, path_kind: Callable[[str], PathKind] | None = None, alone: bool = True
) -> list[Term]:
    """The terms of a query, in order. `path_kind` says what a term names as a path (the
    CLI's); without it every term that is not `like:` is text. `alone` is False for terms
    that follow another one (a photo's), which may then all be subtracted.

    Raises ConfigError with one sentence that shows the syntax when the query cannot be read.
    """
    texts, operators = _split(text.strip())
    signs = [1.0] + [-1.0 if operator == "-" else 1.0 for operator in operators]
    terms: list[Term] = []
    place = 0
    while place < len(texts):
        sign = signs[place]
        joined = path_kind and _picture_across(texts, operators, place, path_kind)
        if joined:
            term, place = joined
            terms.append(Term(term.kind, term.value, sign * term.weight))
            continue
        piece = texts[place].strip()
        if piece:
            terms.append(_term(piece, sign, path_kind))
        elif place > 0:
            # Nothing before a leading + or - is fine ("- people" alone is caught below).
            raise _problem("A + or - needs a term on each side.")
        place += 1
    if len(terms) > MAX_TERMS:
        raise _problem(f"A query takes at most {MAX_TERMS} terms.")
    if alone and terms and all(term.weight < 0 for term in terms):
        raise _problem("Say what to look for as well as what to leave out.")
    return terms


def like_term(written: str) -> Term:
    """The indexed picture an id names, written bare or as like:ID (the CLI's --like)."""
    written = written.strip()
    if not _LIKE.match(written):
        written = f"like:{written}"
    return _term(written, 1.0, None)


def parse_refinement(comment: str) -> list[Term]:
    """The terms written with a photo, which is the query's first term: `+ at night - people`.

    Only a comment that starts with + or - holds terms; any other words sent with a photo
    ("is this one in the library?") are a comment, not a query, and give none.
    """
    comment = comment.strip()
    if not comment.startswith(("+ ", "- ")):
        return []
    return parse_query(comment, alone=False)


def is_plain_text(terms: list[Term]) -> bool:
    """One text term, unweighted: a query answered as a plain description."""
    return len(terms) == 1 and terms[0].kind == "text" and terms[0].weight == 1.0


def _split(text: str) -> tuple[list[str], list[str]]:
    """The texts between the operators, and the operators; none is looked for in quotes."""
    quoted = [found.span() for found in _QUOTED.finditer(text)]
    texts: list[str] = []
    operators: list[str] = []
    start = 0
    for found in _OPERATOR.finditer(text):
        if any(begin < found.start() < end for begin, end in quoted):
            continue
        texts.append(text[start : found.start()])
        operators.append(found.group(1))
        start = found.end()
    texts.append(text[start:])
    return texts, operators


def _picture_across(
    texts: list[str], operators: list[str], first: int, path_kind: Callable[[str], PathKind]
) -> tuple[Term, int] | None:
    """The picture file whose name runs from texts[first] over later operators
    ("./Paris - Nice.jpg"), longest first, and the place after it; None when there is none."""
    for last in range(min(len(texts) - 1, first + MAX_TERMS), first, -1):
        written = texts[first] + "".join(
            operators[place - 1] + texts[place] for place in range(first + 1, last + 1)
        )
        weight, body = _weighed(written.strip())
        if body and not _QUOTED.fullmatch(body) and path_kind(body) == "picture":
            return Term("picture", body, weight), last + 1
    return None


def _weighed(piece: str) -> tuple[float, str]:
    """The weight written before a term (1 when none is) and the term after it."""
    if weighted := _WEIGHT.match(piece):
        weight = float(weighted.group(1))
        if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
            raise _problem(f"A weight goes from {MIN_WEIGHT} to {MAX_WEIGHT:g}.")
        return weight, weighted.group(2).strip()
    return 1.0, piece


def _term(piece: str, sign: float, path_kind: Callable[[str], PathKind] | None) -> Term:
    weight, piece = _weighed(piece)
    if _QUOTED.fullmatch(piece):
        words = piece[1:-1].strip()
        if not words:
            raise _problem("Quotes need words between them.")
        return Term("text", words, sign * weight)
    if liked := _LIKE.match(piece):
        doc_id = liked.group(1).lower()
        if len(doc_id) < MIN_ID_PREFIX or not _HEX_ID.match(doc_id):
            raise _problem(
                f"like: takes the id of an indexed picture, or its first {MIN_ID_PREFIX} "
                "characters or more."
            )
        return Term("like", doc_id, sign * weight)
    kind = path_kind(piece) if path_kind is not None else "text"
    if kind == "missing":
        raise ConfigError(
            f"No picture file is at {piece}: give the path of a picture, or put words "
            'in double quotes ("...") to search them as text.'
        )
    return Term(kind, piece, sign * weight)


def _problem(sentence: str) -> ConfigError:
    return ConfigError(f"{sentence} {SYNTAX}.")
