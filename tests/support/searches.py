"""Search requests as the tests write them: one term and its page, in one call."""

from __future__ import annotations

from typing import Any

from findimage.query import Term, parse_query
from findimage.search import SearchRequest


def text_request(text: str, **page: Any) -> SearchRequest:
    """A plain description, as typed."""
    return SearchRequest((Term("text", text),), **page)


def like_request(doc_id: str, **page: Any) -> SearchRequest:
    """Pictures like an indexed one, by its id or the start of it."""
    return SearchRequest((Term("like", doc_id),), **page)


def picture_request(data: bytes, name: str = "query.jpg", **page: Any) -> SearchRequest:
    """Pictures like these picture bytes."""
    return SearchRequest((Term("picture", name),), pictures={name: data}, **page)


def query_request(query: str, **page: Any) -> SearchRequest:
    """A query written with the combined syntax (findimage/query.py)."""
    return SearchRequest(tuple(parse_query(query)), **page)
