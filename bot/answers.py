"""From a Slack question to a Block Kit answer: search, keep what is close, add previews, render."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.blocks import (
    Message,
    home_view,
    results_message,
    sentence_message,
    share_comment,
    shared_message,
    shown_path,
)
from bot.payloads import Page, SharedResult
from bot.previews import PreviewSource
from findimage.errors import FindImageError
from findimage.query import Term, parse_query, parse_refinement
from findimage.search import SearchRequest, SearchService

log = logging.getLogger(__name__)

UNEXPECTED = "Something went wrong on my side; the details are in the bot's log."


class Answers:
    def __init__(
        self,
        service: SearchService,
        previews: PreviewSource,
        min_score: float,
        duplicate_score: float,
    ):
        self._service = service
        self._previews = previews
        self._min_score = min_score
        self._duplicate_score = duplicate_score

    @property
    def previews(self) -> PreviewSource:
        return self._previews

    def home(self) -> dict[str, Any]:
        """The Home tab: what the index holds, or why that cannot be told now."""
        try:
            return home_view(self._service.status(), problem=self._service.text_model_problem())
        except FindImageError as exc:
            log.warning("index status for the Home tab: %s", exc)
            return home_view(None, problem=str(exc))

    def for_page(self, page: Page, user_id: str) -> Message:
        """A private page of results for a text query or for "more like this one"."""
        outcome = self._service.search(page_request(page))
        hits = outcome.hits
        notices = [outcome.cut_note[0].upper() + outcome.cut_note[1:]] if outcome.cut_note else []
        if page.like is not None:
            heading = "Pictures like that one"
        else:
            heading = f"Results for “{outcome.description}”"
        if page.folder:
            heading += f" in {page.folder}"
        if page.filters:
            heading += f", {page.filters.describe()}"
        if not hits and page.filters and not page.offset:
            return sentence_message(
                f"No picture in the library matches {page.filters.describe()}"
                + (f" in {page.folder}" if page.folder else "")
                + ": widen the dates or the distance."
            )
        if not hits and page.folder and not page.offset:
            return sentence_message(no_such_folder(page.folder))
        close = [hit for hit in hits if hit.score >= self._min_score]
        if not close:
            return sentence_message(self._nothing_close(page))
        previews = self._previews.for_private(close, user_id)
        return results_message(
            close,
            heading,
            page,
            previews,
            has_more=len(close) == page.k,
            shareable=True,
            notices=notices,
        )

    def for_photo(
        self, data: bytes, name: str, k: int, channel_id: str, thread_ts: str, comment: str = ""
    ) -> Message:
        """The pictures closest to a posted photo, calling out one that is already indexed.

        A comment that starts with + or - adds terms to the photo (`+ at night - people`).
        """
        refinement = parse_refinement(comment)
        terms = (Term("picture", name), *refinement)
        outcome = self._service.search(SearchRequest(terms, k=k, pictures={name: data}))
        close = [hit for hit in outcome.hits if hit.score >= self._min_score]
        if not close:
            return sentence_message(
                f"Nothing in the library looks close to {name}; try another photo."
            )
        top = close[0]
        if refinement:
            heading = f"Pictures like {outcome.description}"
        elif top.score >= self._duplicate_score:
            heading = f"This picture is already in the library at {shown_path(top.document.path)}."
        else:
            heading = f"Pictures like {name}"
        previews = self._previews.for_thread(close, channel_id, thread_ts)
        return results_message(close, heading, Page(k=k), previews, has_more=False, shareable=False)

    def share(self, result: SharedResult, user_id: str, channel_id: str) -> Message | None:
        """The message that shows one result to the channel, or None when the picture was
        posted there already with its share line."""
        shared = self._previews.for_shared(
            result.doc_id, result.path, channel_id, share_comment(result, user_id)
        )
        if shared.posted:
            return None
        return shared_message(result, user_id, shared.source)

    def _nothing_close(self, page: Page) -> str:
        if page.offset:
            return "There are no more results close enough."
        if page.like is not None:
            return "No other picture in the library is close to that one."
        return (
            f"Nothing in the library is close to “{page.text}”: try rephrasing it, "
            "for example with fewer or more common words."
        )


def page_request(page: Page) -> SearchRequest:
    """The search a page of results asks for: like an indexed picture, or its query's terms."""
    if page.like is not None:
        terms: tuple[Term, ...] = (Term("like", page.like),)
    else:
        terms = tuple(parse_query(page.text or ""))
    return SearchRequest(
        terms, k=page.k, folder=page.folder, offset=page.offset, filters=page.filters
    )


def no_such_folder(folder: str) -> str:
    return (
        f"The library has no pictures in a folder “{folder}”: check the name after in:, "
        'written as in the library (in:"folder with spaces" for a name with spaces).'
    )


def safely(answer: Callable[[], Message], what: str) -> Message:
    """The answer, or one plain sentence when it fails; the details go to the log."""
    try:
        return answer()
    except Exception as exc:
        return failure_message(exc, what)


def failure_message(exc: Exception, what: str) -> Message:
    """One plain sentence for a failure: the error's own for ours, a generic one otherwise."""
    if isinstance(exc, FindImageError):
        log.info("%s: %s", what, exc)
        return sentence_message(str(exc))
    log.error("%s failed", what, exc_info=exc)
    return sentence_message(UNEXPECTED)
