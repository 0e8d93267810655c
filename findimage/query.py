"""Combined queries: `2:beach + like:3f2a - people` as a list of weighted terms.

As rclip does, a query is a weighted sum of terms. `+` and `-` standing alone between words
add or subtract the next term; `N:` before a term weighs it (N from 0.01 to 10); `like:ID`
is an indexed picture, by its id or the start of it (at least 4 characters); in the CLI a
term that names a picture file is that picture. Everything else is text. A query with one
text term and no weight is a plain text query, answered exactly as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from findimage.errors import ConfigError

TermKind = Literal["text", "like", "picture"]

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
_HEX_ID = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class Term:
    """One part of a query: `weight` is negative for a subtracted term."""

    kind: TermKind
    value: str
    weight: float = 1.0


def parse_query(
    text: str, is_picture: Callable[[str], bool] | None = None, alone: bool = True
) -> list[Term]:
    """The terms of a query, in order. `is_picture` says whether a term names a picture file
    (the CLI's); without it every term that is not `like:` is text. `alone` is False for
    terms that follow another one (a photo's), which may then all be subtracted.

    Raises ConfigError with one sentence that shows the syntax when the query cannot be read.
    """
    # split() with one group: the texts at even places, the operators between them.
    pieces = _OPERATOR.split(text.strip())
    texts, operators = pieces[0::2], pieces[1::2]
    signs = [1.0] + [-1.0 if operator == "-" else 1.0 for operator in operators]
    terms: list[Term] = []
    for place, (sign, piece) in enumerate(zip(signs, texts, strict=True)):
        piece = piece.strip()
        if piece:
            terms.append(_term(piece, sign, is_picture))
        elif place > 0:
            # Nothing before a leading + or - is fine ("- people" alone is caught below).
            raise _problem("A + or - needs a term on each side.")
    if len(terms) > MAX_TERMS:
        raise _problem(f"A query takes at most {MAX_TERMS} terms.")
    if alone and terms and all(term.weight < 0 for term in terms):
        raise _problem("Say what to look for as well as what to leave out.")
    return terms


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


def _term(piece: str, sign: float, is_picture: Callable[[str], bool] | None) -> Term:
    weight = 1.0
    if weighted := _WEIGHT.match(piece):
        weight = float(weighted.group(1))
        piece = weighted.group(2).strip()
        if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
            raise _problem(f"A weight goes from {MIN_WEIGHT} to {MAX_WEIGHT:g}.")
    if liked := _LIKE.match(piece):
        doc_id = liked.group(1).lower()
        if len(doc_id) < MIN_ID_PREFIX or not _HEX_ID.match(doc_id):
            raise _problem(
                f"like: takes the id of an indexed picture, or its first {MIN_ID_PREFIX} "
                "characters or more."
            )
        return Term("like", doc_id, sign * weight)
    if is_picture is not None and is_picture(piece):
        return Term("picture", piece, sign * weight)
    return Term("text", piece, sign * weight)


def _problem(sentence: str) -> ConfigError:
    return ConfigError(f"{sentence} {SYNTAX}.")
