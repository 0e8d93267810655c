"""What the buttons carry: each value reads back as written, and stays within Slack's limit."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.payloads import MAX_BUTTON_VALUE, Page, SharedResult
from findimage.filters import Filters, Place


def test_button_values_round_trip() -> None:
    page = Page(k=7, text="snow", folder="trips/2024", offset=14)
    shared = SharedResult("abc", "trips/x.jpg", 0.91234)

    assert Page.from_value(page.to_value()) == page
    assert SharedResult.from_value(shared.to_value()) == SharedResult("abc", "trips/x.jpg", 0.9123)


def test_a_pages_filters_round_trip() -> None:
    filters = Filters(
        after=datetime(2024, 6, 1), before=datetime(2025, 1, 1), near=Place(48.85, 2.35, 10)
    )
    page = Page(k=3, like="3f2a9c1b", filters=filters)

    assert Page.from_value(page.to_value()) == page


def test_a_button_value_over_slacks_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="over Slack's limit"):
        Page(k=5, text="x" * 2100).to_value()


def test_a_button_value_of_exactly_slacks_limit_is_kept_and_one_more_is_refused() -> None:
    empty = len(Page(k=5, text="").to_value())
    at_limit = Page(k=5, text="x" * (MAX_BUTTON_VALUE - empty))

    assert len(at_limit.to_value()) == MAX_BUTTON_VALUE
    with pytest.raises(ValueError, match="over Slack's limit"):
        Page(k=5, text="x" * (MAX_BUTTON_VALUE - empty + 1)).to_value()
