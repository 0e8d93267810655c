"""Search filters by date and by place, read the same way from Slack and the command line.

A picture's date is when it was taken, from its EXIF, else its file's modification time; both
are compared as UTC (EXIF times are the camera's clock, which has no zone). A place is the
EXIF GPS position; a picture without one never matches a place filter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from findimage.documents import ImageDocument
from findimage.errors import ConfigError

# The mean Earth radius Elasticsearch's arc distance uses (GeoUtils.EARTH_MEAN_RADIUS), so both
# stores agree on what is inside a circle.
EARTH_RADIUS_KM = 6371.0087714
MAX_KM = 20_000.0

DATE_SYNTAX = "takes a date like 2024, 2024-06 or 2024-06-03"
PLACE_SYNTAX = "takes a latitude, a longitude and a distance in km, like 48.85,2.35,10"

_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?$")
_NUMBER = r"\s*([+-]?\d+(?:\.\d+)?)\s*"
_PLACE = re.compile(rf"^{_NUMBER},{_NUMBER},{_NUMBER}(?:km)?\s*$", re.IGNORECASE)

DateSource = Literal["taken", "file"]


@dataclass(frozen=True)
class Place:
    """A circle on the Earth: its centre in degrees and its radius in km."""

    lat: float
    lon: float
    km: float

    def __str__(self) -> str:
        return f"{self.lat:g},{self.lon:g},{self.km:g}"


@dataclass(frozen=True)
class Filters:
    """What a search keeps besides its folder: `after` is inclusive, `before` exclusive, both
    naive datetimes in UTC."""

    after: datetime | None = None
    before: datetime | None = None
    near: Place | None = None

    @property
    def by_date(self) -> bool:
        return self.after is not None or self.before is not None

    def __bool__(self) -> bool:
        return self.by_date or self.near is not None

    def describe(self) -> str:
        """The filters as the user wrote them, for a heading: 'after 2024-06-01'."""
        parts = []
        if self.after is not None:
            parts.append(f"after {self.after:%Y-%m-%d}")
        if self.before is not None:
            parts.append(f"before {self.before:%Y-%m-%d}")
        if self.near is not None:
            parts.append(f"within {self.near.km:g} km of {self.near.lat:g},{self.near.lon:g}")
        return ", ".join(parts)


def parse_date(written: str, option: str) -> datetime:
    """The start of the year, month or day written: after: keeps that start and later,
    before: keeps what is earlier than it."""
    found = _DATE.match(written.strip())
    if found is None:
        raise ConfigError(f"{option} {DATE_SYNTAX}.")
    year, month, day = (int(part) if part else 1 for part in found.groups())
    try:
        return datetime(year, month, day)
    except ValueError:
        raise ConfigError(f"{option} {DATE_SYNTAX}; {written.strip()} is not a date.") from None


def parse_place(written: str, option: str = "near:") -> Place:
    found = _PLACE.match(written)
    if found is None:
        raise ConfigError(f"{option} {PLACE_SYNTAX}.")
    lat, lon, km = (float(part) for part in found.groups())
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 < km <= MAX_KM):
        raise ConfigError(
            f"{option} {PLACE_SYNTAX}: the latitude goes from -90 to 90, the longitude from "
            f"-180 to 180, and the distance from 0 to {MAX_KM:,.0f} km."
        )
    return Place(lat, lon, km)


def checked(filters: Filters, names: tuple[str, str] = ("after:", "before:")) -> Filters:
    """`filters`, unless no picture could match them; `names` are the after and before
    options as the user wrote them (Slack's after: and before:, the CLI's --after and --before)."""
    if filters.after and filters.before and filters.after >= filters.before:
        after, before = names
        raise ConfigError(
            f"The {after} date ({filters.after:%Y-%m-%d}) must come before the {before} date "
            f"({filters.before:%Y-%m-%d}), or no picture can match."
        )
    return filters


def picture_date(document: ImageDocument) -> tuple[datetime, DateSource]:
    """The date a filter compares, naive UTC, and where it comes from."""
    if document.taken_at is not None:
        taken = document.taken_at
        if taken.tzinfo is not None:
            taken = taken.astimezone(UTC).replace(tzinfo=None)
        return taken, "taken"
    return datetime.fromtimestamp(document.mtime, UTC).replace(tzinfo=None), "file"


def utc_timestamp(moment: datetime) -> float:
    """Seconds since the epoch of a naive UTC datetime: how file dates are stored."""
    return moment.replace(tzinfo=UTC).timestamp()


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle (haversine) distance, as Elasticsearch's `arc` distance type."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
