"""Reading a combined query: terms, signs, weights, like: ids and picture files."""

from __future__ import annotations

import pytest

from findimage.errors import ConfigError
from findimage.query import (
    SYNTAX,
    PathKind,
    Term,
    is_plain_text,
    like_term,
    parse_query,
    parse_refinement,
)


def test_a_plain_description_is_one_text_term_and_stays_plain() -> None:
    terms = parse_query("  snowy mountain at dawn ")
    assert terms == [Term("text", "snowy mountain at dawn")]
    assert is_plain_text(terms)


def test_weights_signs_and_like_ids_as_in_the_issue_example() -> None:
    assert parse_query("2:beach + like:3F2A - people") == [
        Term("text", "beach", 2.0),
        Term("like", "3f2a", 1.0),
        Term("text", "people", -1.0),
    ]


@pytest.mark.parametrize("text", ["t-shirt - red", "-5 degrees + snow", "rock-n-roll"])
def test_a_dash_inside_or_before_a_word_is_part_of_the_text(text: str) -> None:
    terms = parse_query(text)
    assert terms[0].kind == "text" and terms[0].weight == 1.0
    assert terms[0].value in ("t-shirt", "-5 degrees", "rock-n-roll")


def test_a_decimal_weight_and_a_weighted_subtraction() -> None:
    assert parse_query("0.5:sunset - 1.5:people") == [
        Term("text", "sunset", 0.5),
        Term("text", "people", -1.5),
    ]
    assert not is_plain_text(parse_query("2:sunset"))


def test_picture_terms_are_what_the_caller_says_names_a_picture() -> None:
    terms = parse_query(
        "./pool.jpg + 2:golden retriever",
        path_kind=lambda t: "picture" if t.endswith(".jpg") else "text",
    )
    assert terms == [Term("picture", "./pool.jpg"), Term("text", "golden retriever", 2.0)]


def test_quotes_keep_a_term_whole_and_make_it_text() -> None:
    assert parse_query('"salt + pepper"') == [Term("text", "salt + pepper")]
    assert parse_query('2:"salt + pepper" - “black - white”') == [
        Term("text", "salt + pepper", 2.0),
        Term("text", "black - white", -1.0),
    ]
    # Quoted, even what names a picture is words.
    assert parse_query('"./pool.jpg"', path_kind=lambda t: "picture") == [
        Term("text", "./pool.jpg")
    ]
    # A quote without its pair is a character like any other.
    assert parse_query('5" screen + desk') == [Term("text", '5" screen'), Term("text", "desk")]


def test_a_picture_whose_name_holds_an_operator_stays_one_term() -> None:
    files = {"./Paris - Nice.jpg", "./a + b - c.jpg"}

    def kind(term: str) -> PathKind:
        return "picture" if term in files else "text"

    assert parse_query("./Paris - Nice.jpg", path_kind=kind) == [
        Term("picture", "./Paris - Nice.jpg")
    ]
    assert parse_query("beach - 2:./a + b - c.jpg + sun", path_kind=kind) == [
        Term("text", "beach"),
        Term("picture", "./a + b - c.jpg", -2.0),
        Term("text", "sun"),
    ]


def test_a_term_that_names_no_file_where_one_is_expected_is_one_sentence() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_query(
            "red + ./nowhere/missing.jpg",
            path_kind=lambda t: "missing" if t.startswith("./") else "text",
        )
    assert str(raised.value) == (
        "No picture file is at ./nowhere/missing.jpg: give the path of a picture, or put "
        'words in double quotes ("...") to search them as text.'
    )


@pytest.mark.parametrize("written", ["like:3F2A9C", "3f2a9c", " like:3f2a9c "])
def test_like_term_takes_an_id_bare_or_with_like(written: str) -> None:
    assert like_term(written) == Term("like", "3f2a9c")


@pytest.mark.parametrize("text", ["10:30 meeting", "score 3:1", "2: beach"])
def test_a_number_and_colon_not_stuck_to_a_word_is_text(text: str) -> None:
    assert parse_query(text) == [Term("text", text)]


def test_an_empty_query_has_no_terms() -> None:
    assert parse_query("   ") == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("beach +", "needs a term on each side"),
        ("beach + + people", "needs a term on each side"),
        ("- people", "as well as what to leave out"),
        ("like:3f", "first 4 characters"),
        ("like:zzzz", "id of an indexed picture"),
        ("20:beach", "from 0.01 to 10"),
        ("0:beach", "from 0.01 to 10"),
        (" + ".join(["a"] * 11), "at most 10 terms"),
        ('beach + ""', "Quotes need words"),
    ],
)
def test_a_query_that_cannot_be_read_gets_one_sentence_with_the_syntax(
    text: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_query(text)
    message = str(raised.value)
    assert problem in message
    assert message.endswith(f"{SYNTAX}.")
    assert "\n" not in message


def test_words_sent_with_a_photo_are_terms_only_when_they_start_with_an_operator() -> None:
    assert parse_refinement("is this one in the library?") == []
    assert parse_refinement("") == []
    assert parse_refinement(" + at night - people ") == [
        Term("text", "at night"),
        Term("text", "people", -1.0),
    ]
    # After the photo, leaving something out is a whole query.
    assert parse_refinement("- people") == [Term("text", "people", -1.0)]
