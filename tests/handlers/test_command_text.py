"""Options written inside the `/findimage` text."""

from __future__ import annotations

from datetime import datetime

from findimage.filters import Filters, Place
from handlers.commands import CommandText, parse_command_text


def test_options_are_taken_out_of_the_text_in_any_order() -> None:
    assert parse_command_text("k:10 in:/marketing/2024/ snowy  mountain") == CommandText(
        text="snowy mountain", k=10, folder="marketing/2024"
    )
    assert parse_command_text("montagne enneigée K:3") == CommandText(text="montagne enneigée", k=3)


def test_only_k_and_in_are_options() -> None:
    assert parse_command_text("sign saying k:o ok").problem is not None
    assert parse_command_text("time 10:30 sunset").text == "time 10:30 sunset"


def test_bad_options_are_explained() -> None:
    assert parse_command_text("k:0 cats").problem == "k: takes a number from 1 to 15, like k:10."
    assert parse_command_text("k:99 cats").problem is not None
    assert parse_command_text("in: cats").problem == (
        "in: takes a folder of the library, like in:marketing/2024."
    )


def test_an_overlong_query_is_cut_to_what_the_model_can_read() -> None:
    assert len(parse_command_text("word " * 1000).text) == 500


def test_a_quoted_folder_may_hold_spaces_in_any_quotes_slack_sends() -> None:
    for raw in (
        'in:"Team photos/2024" cat',
        "in:'Team photos/2024' cat",
        "in:“Team photos/2024” cat",
    ):
        parsed = parse_command_text(raw)
        assert (parsed.folder, parsed.text) == ("Team photos/2024", "cat")


def test_date_and_place_options_become_filters() -> None:
    parsed = parse_command_text("after:2024-06 beach before:2025 near:48.85,2.35,10")
    assert parsed == CommandText(
        text="beach",
        filters=Filters(datetime(2024, 6, 1), datetime(2025, 1, 1), Place(48.85, 2.35, 10.0)),
    )


def test_bad_date_and_place_options_are_explained() -> None:
    assert parse_command_text("after:june cats").problem == (
        "after: takes a date like 2024, 2024-06 or 2024-06-03."
    )
    assert parse_command_text("near:paris cats").problem == (
        "near: takes a latitude, a longitude and a distance in km, like 48.85,2.35,10."
    )
    assert parse_command_text("after:2025 before:2024 cats").problem == (
        "The after: date (2025-01-01) must come before the before: date (2024-01-01), "
        "or no picture can match."
    )
