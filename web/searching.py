"""What the page asks for, read from its form, and the search that answers it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from findimage.documents import SearchHit
from findimage.filters import Filters, checked, parse_date, parse_place
from findimage.query import Term, parse_query
from findimage.search import SearchRequest, SearchService, library_folder

PAGE_SIZE = 50
# A photo's name among the query's terms: what a heading calls it ("Pictures like your
# photo + at night").
PHOTO = "your photo"


@dataclass(frozen=True)
class WebQuery:
    """The search form as sent: every field as typed, empty when not given."""

    text: str = ""
    folder: str = ""
    after: str = ""
    before: str = ""
    near: str = ""
    offset: int = 0

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> WebQuery:
        try:
            offset = max(0, int(form.get("offset", "0") or 0))
        except ValueError:
            offset = 0
        return cls(
            text=form.get("q", "").strip(),
            folder=form.get("in", "").strip(),
            after=form.get("after", "").strip(),
            before=form.get("before", "").strip(),
            near=form.get("near", "").strip(),
            offset=offset,
        )

    def form(self) -> dict[str, str]:
        """The query as the form's fields, without the empty ones: for the next page's URL."""
        fields = {
            "q": self.text,
            "in": self.folder,
            "after": self.after,
            "before": self.before,
            "near": self.near,
            "offset": str(self.offset) if self.offset else "",
        }
        return {name: value for name, value in fields.items() if value}

    def with_offset(self, offset: int) -> WebQuery:
        return replace(self, offset=offset)

    def filters(self) -> Filters:
        return checked(
            Filters(
                after=parse_date(self.after, "after:") if self.after else None,
                before=parse_date(self.before, "before:") if self.before else None,
                near=parse_place(self.near, "near:") if self.near else None,
            )
        )


@dataclass(frozen=True)
class Found:
    """One page of results and the heading that says what was searched."""

    hits: list[SearchHit]
    heading: str
    note: str | None
    offset: int


def run_search(service: SearchService, query: WebQuery, photo: bytes | None) -> Found:
    """The page of hits for the form (and the photo sent with it, if any).

    Raises FindImageError with the sentence the command line gives for the same mistake.
    """
    filters = query.filters()
    folder = (library_folder(query.folder) or None) if query.folder else None
    terms: list[Term] = []
    pictures = {}
    if photo is not None:
        # Words typed beside a photo refine it: "at night - people" adds and takes away.
        pictures[PHOTO] = photo
        terms.append(Term("picture", PHOTO))
        if query.text:
            terms += parse_query(query.text, alone=False)
    else:
        terms = parse_query(query.text)
    request = SearchRequest(
        tuple(terms),
        k=PAGE_SIZE,
        folder=folder,
        offset=query.offset,
        filters=filters,
        pictures=pictures,
    )
    outcome = service.search(request)
    heading = (
        f"Pictures like {outcome.description}" if photo else f"Pictures for “{outcome.description}”"
    )
    if folder:
        heading += f" in {folder}"
    if filters:
        heading += f", {filters.describe()}"
    return Found(hits=outcome.hits, heading=heading, note=outcome.cut_note, offset=query.offset)
