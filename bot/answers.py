"""From a Slack question to a Block Kit answer: search, keep what is close, add previews, render."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.blocks import Message, Page, escape, results_message, sentence_message, shown_path
from bot.errors import FindImageError
from bot.previews import PreviewSource
from bot.search import SearchQuery, SearchService

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

    def for_page(self, page: Page, channel_id: str, thread_ts: str | None = None) -> Message:
        """A page of results for a text query or for "more like this one"."""
        query = SearchQuery(k=page.k, folder=page.folder, offset=page.offset)
        if page.like is not None:
            hits = self._service.like(page.like, query)
            heading = "*Pictures like that one*"
        else:
            hits = self._service.by_text(page.text or "", query)
            heading = f"*Results for “{escape(page.text or '')}”*"
        if page.folder:
            heading += f" in `{escape(page.folder)}`"
        close = [hit for hit in hits if hit.score >= self._min_score]
        if not close:
            return sentence_message(self._nothing_close(page))
        previews = self._previews.for_hits(close, channel_id, thread_ts)
        return results_message(
            close,
            heading,
            page,
            previews,
            has_more=len(close) == page.k,
            shareable=True,
            notice=previews.notice,
        )

    def for_photo(self, data: bytes, name: str, k: int, channel_id: str, thread_ts: str) -> Message:
        """The pictures closest to a posted photo, calling out one that is already indexed."""
        hits = self._service.by_image(data, SearchQuery(k=k))
        close = [hit for hit in hits if hit.score >= self._min_score]
        if not close:
            return sentence_message(
                f"Nothing in the library looks close to {name}; try another photo."
            )
        top = close[0]
        if top.score >= self._duplicate_score:
            heading = (
                "This picture is already in the library at "
                f"*{escape(shown_path(top.document.path))}*."
            )
        else:
            heading = f"*Pictures like {escape(name)}*"
        previews = self._previews.for_hits(close, channel_id, thread_ts)
        return results_message(
            close,
            heading,
            Page(k=k),
            previews,
            has_more=False,
            shareable=False,
            notice=previews.notice,
        )

    def _nothing_close(self, page: Page) -> str:
        if page.offset:
            return "There are no more results close enough."
        if page.like is not None:
            return "No other picture in the library is close to that one."
        return (
            f"Nothing in the library is close to “{page.text}”: try rephrasing it, "
            "for example with fewer or more common words."
        )


def safely(answer: Callable[[], Message], what: str) -> Message:
    """The answer, or one plain sentence when it fails; the details go to the log."""
    try:
        return answer()
    except FindImageError as exc:
        log.info("%s: %s", what, exc)
        return sentence_message(str(exc))
    except Exception:
        log.exception("%s failed", what)
        return sentence_message(UNEXPECTED)
