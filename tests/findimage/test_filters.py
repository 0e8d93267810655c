"""Reading date and place filters, and the date a picture is filtered by."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from findimage.errors import ConfigError
from findimage.filters import (
    Filters,
    Place,
    checked,
    distance_km,
    parse_date,
    parse_place,
    picture_date,
)
from tests.support.documents import make_document


@pytest.mark.parametrize(
    ("written", "start"),
    [
        ("2024", datetime(2024, 1, 1)),
        ("2024-06", datetime(2024, 6, 1)),
        ("2024-6", datetime(2024, 6, 1)),
        (" 2025-01-31 ", datetime(2025, 1, 31)),
    ],
)
def test_a_date_is_the_start_of_the_year_month_or_day_written(
    written: str, start: datetime
) -> None:
    assert parse_date(written, "after:") == start


@pytest.mark.parametrize("written", ["", "june", "24-06", "2024-13", "2024-02-30", "2024/06"])
def test_a_date_that_cannot_be_read_names_the_option_and_the_forms(written: str) -> None:
    with pytest.raises(ConfigError, match=r"^--before takes a date like 2024, 2024-06 or"):
        parse_date(written, "--before")


def test_a_place_is_a_point_and_a_radius_in_km() -> None:
    assert parse_place("48.85,2.35,10") == Place(48.85, 2.35, 10.0)
    assert parse_place(" -33.86 , 151.2 , 0.5km ") == Place(-33.86, 151.2, 0.5)
    assert str(Place(48.85, 2.35, 10.0)) == "48.85,2.35,10"


@pytest.mark.parametrize("written", ["paris", "48.85,2.35", "91,0,1", "0,181,1", "0,0,0", "0,0,-1"])
def test_a_place_that_cannot_be_read_shows_the_form(written: str) -> None:
    with pytest.raises(ConfigError, match=r"^near: takes a latitude, a longitude and a distance"):
        parse_place(written)


def test_dates_in_the_wrong_order_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"^The after: date \(2025-01-01\) must come before"):
        checked(Filters(after=datetime(2025, 1, 1), before=datetime(2024, 1, 1)))
    assert checked(Filters(after=datetime(2024, 1, 1))) == Filters(after=datetime(2024, 1, 1))


def test_the_date_filtered_by_is_the_exif_date_else_the_file_date_in_utc() -> None:
    scanned = make_document("scan.jpg", mtime=datetime(2024, 6, 15, 23, 30, tzinfo=UTC).timestamp())
    assert picture_date(scanned) == (datetime(2024, 6, 15, 23, 30), "file")
    taken = replace(scanned, taken_at=datetime(2023, 1, 2, 3, 4))
    assert picture_date(taken) == (datetime(2023, 1, 2, 3, 4), "taken")
    zoned = replace(
        scanned, taken_at=datetime(2023, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=2)))
    )
    assert picture_date(zoned) == (datetime(2023, 1, 2, 1, 4), "taken")


def test_distances_are_great_circle_kilometres() -> None:
    # Paris (Notre-Dame) to Lyon (Bellecour): about 392 km as the crow flies.
    assert distance_km(48.853, 2.3499, 45.7578, 4.832) == pytest.approx(392, abs=2)
    assert distance_km(10, 20, 10, 20) == 0
    # Across the antimeridian, not the long way round.
    assert distance_km(0, 179.5, 0, -179.5) == pytest.approx(111.2, abs=0.2)


def test_filters_describe_themselves_for_a_heading() -> None:
    filters = Filters(datetime(2024, 6, 1), datetime(2025, 1, 1), Place(48.85, 2.35, 10))
    assert filters.describe() == "after 2024-06-01, before 2025-01-01, within 10 km of 48.85,2.35"
    assert not Filters()
