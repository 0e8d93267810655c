"""Previews of pictures from the private library, in a form Slack can show in an image block.

Slack only shows pictures it can fetch itself, so a preview is either a short-lived signed
URL on the bot's own `/images/<id>` endpoint (FINDIMAGE_PUBLIC_BASE_URL set), or a small
JPEG uploaded to Slack where only the people who may see the answer can see it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from findimage.documents import SearchHit
from findimage.errors import FindImageError, ImageError
from findimage.library import Library, OutsideLibraryError
from findimage.thumbnails import render_thumbnail

log = logging.getLogger(__name__)

PREVIEW_MAX_SIDE = 512
PREVIEW_PATH_PREFIX = "/images/"

NOT_IN_CHANNEL = (
    "I can't post previews here because I'm not in this conversation: invite me with "
    "`/invite @findimage` to see them. The paths are below."
)
UPLOAD_FAILED = "I couldn't upload the previews, so here are just the paths."
MISSING = "Some pictures have no preview: they are no longer in the library as indexed."
PREVIEWS_ABOVE = "The previews are just above, in this thread."
SHELF_LINE = (
    "Previews for your /findimage answers go in this thread; nobody else can see them. "
    "Share a result to show its picture in a channel."
)

ImageSource = dict[str, Any]


@dataclass(frozen=True)
class Previews:
    """Image sources for some documents, by id, and a sentence to show when some are missing."""

    sources: dict[str, ImageSource] = field(default_factory=dict)
    notice: str | None = None


@dataclass(frozen=True)
class SharedPreview:
    """The picture for a shared result: a source for the shared message, or already posted."""

    source: ImageSource | None = None
    posted: bool = False


class PreviewSource(Protocol):
    def for_private(self, hits: Sequence[SearchHit], user_id: str) -> Previews:
        """Previews that only `user_id` can see: for /findimage, More results, More like this."""
        ...

    def for_thread(self, hits: Sequence[SearchHit], channel_id: str, thread_ts: str) -> Previews:
        """Previews for an answer posted in a thread that everyone in the channel sees."""
        ...

    def for_shared(
        self, doc_id: str, path: str, channel_id: str, comment: str
    ) -> SharedPreview: ...


class PreviewSigner:
    """HMAC-SHA256 over the document id and an expiry time, so links stop working later."""

    def __init__(self, secret: str, ttl_seconds: int, clock: Callable[[], float] = time.time):
        if not secret:
            raise ValueError("a preview secret is required")
        self._key = secret.encode("utf-8")
        self._ttl = ttl_seconds
        self._clock = clock

    def sign(self, doc_id: str) -> tuple[int, str]:
        expires = int(self._clock()) + self._ttl
        return expires, self._signature(doc_id, expires)

    def verify(self, doc_id: str, expires: str, signature: str) -> bool:
        try:
            expires_at = int(expires)
        except ValueError:
            return False
        if expires_at < self._clock():
            return False
        return hmac.compare_digest(self._signature(doc_id, expires_at), signature)

    def _signature(self, doc_id: str, expires: int) -> str:
        message = f"{doc_id}:{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()


def render_preview(library: Library, relative_path: str, max_bytes: int) -> bytes:
    """A downscaled JPEG of one picture of the library; never reads a file outside it."""
    return render_thumbnail(library, relative_path, max_bytes, PREVIEW_MAX_SIDE)


class SignedUrlPreviews:
    """Image blocks point at the bot's own signed `/images/<id>` URLs.

    Slack fetches each image_url when the message is posted and rejects the whole message
    (`invalid_blocks`) when one cannot be fetched, so only pictures the endpoint can serve get
    a link: a picture deleted or moved since the last index gets none.
    """

    def __init__(self, public_base_url: str, signer: PreviewSigner, library: Library):
        self._base = public_base_url.rstrip("/")
        self._signer = signer
        self._library = library

    def url(self, doc_id: str) -> str:
        expires, signature = self._signer.sign(doc_id)
        return f"{self._base}{PREVIEW_PATH_PREFIX}{quote(doc_id)}?exp={expires}&sig={signature}"

    def for_private(self, hits: Sequence[SearchHit], user_id: str) -> Previews:
        return self._links(hits)

    def for_thread(self, hits: Sequence[SearchHit], channel_id: str, thread_ts: str) -> Previews:
        return self._links(hits)

    def for_shared(self, doc_id: str, path: str, channel_id: str, comment: str) -> SharedPreview:
        if not self._library.exists(path):
            return SharedPreview()
        return SharedPreview(source={"image_url": self.url(doc_id)})

    def _links(self, hits: Sequence[SearchHit]) -> Previews:
        sources = {}
        for hit in hits:
            if self._library.exists(hit.document.path):
                sources[hit.document.id] = {"image_url": self.url(hit.document.id)}
            else:
                log.warning("no preview link for %s: not in the library now", hit.document.path)
        return Previews(sources=sources, notice=None if len(sources) == len(hits) else MISSING)


class UploadedPreviews:
    """Small JPEGs uploaded to Slack, so image blocks can name them as `slack_file`.

    A `slack_file` must be a file the viewer can see: a file uploaded without a channel is
    the bot's alone and Slack refuses blocks naming it ("invalid slack file",
    slackapi/bolt-python#1251). So previews of a private answer go into a thread of the bot's
    direct message with the asker, which nobody else can read; the answer, visible only to
    the asker, shows them from there. Previews of a photo answer go into the photo's thread,
    which everyone there sees anyway, and the answer then shows no second copy. A shared
    result is uploaded again into the channel, with the share line as its comment: that is
    the moment a picture becomes visible to the channel.
    """

    def __init__(
        self, client: WebClient, library: Library, max_bytes: int, shelves: PrivateShelves
    ):
        self._client = client
        self._library = library
        self._max_bytes = max_bytes
        self._shelves = shelves

    def for_private(self, hits: Sequence[SearchHit], user_id: str) -> Previews:
        uploads, doc_ids = self._render(hits)
        if not uploads:
            return Previews(notice=MISSING if hits else None)
        try:
            channel_id, thread_ts = self._shelves.thread_for(user_id)
            files = self._upload(uploads, channel_id, thread_ts)
        except Exception as exc:
            # Refused, rate-limited past the client's retries, or Slack unreachable: the
            # answer goes out with the paths rather than not at all.
            log.warning("uploading private previews for %s failed: %s", user_id, _error(exc))
            return Previews(notice=UPLOAD_FAILED)
        sources = {
            doc_id: {"slack_file": {"id": file_id}}
            for doc_id, file_id in zip(doc_ids, files, strict=False)
        }
        notice = MISSING if len(sources) < len(hits) else None
        return Previews(sources=sources, notice=notice)

    def for_thread(self, hits: Sequence[SearchHit], channel_id: str, thread_ts: str) -> Previews:
        uploads, _ = self._render(hits)
        if not uploads:
            return Previews(notice=MISSING if hits else None)
        try:
            self._upload(uploads, channel_id, thread_ts)
        except Exception as exc:
            error = _error(exc)
            if error in {"not_in_channel", "channel_not_found"}:
                log.info("not a member of %s; listing paths without previews", channel_id)
                return Previews(notice=NOT_IN_CHANNEL)
            log.warning("uploading previews to %s failed: %s", channel_id, error)
            return Previews(notice=UPLOAD_FAILED)
        # The pictures are in the thread now, just above the answer: no second copy in it.
        return Previews(notice=PREVIEWS_ABOVE)

    def for_shared(self, doc_id: str, path: str, channel_id: str, comment: str) -> SharedPreview:
        uploads, _ = self._render([(doc_id, path)])
        if not uploads:
            return SharedPreview()
        try:
            self._client.files_upload_v2(
                file_uploads=uploads, channel=channel_id, initial_comment=comment
            )
        except Exception as exc:
            log.warning("sharing a preview into %s failed: %s", channel_id, _error(exc))
            return SharedPreview()
        return SharedPreview(posted=True)

    def _upload(self, uploads: list[dict[str, Any]], channel_id: str, thread_ts: str) -> list[str]:
        response = self._client.files_upload_v2(
            file_uploads=uploads, channel=channel_id, thread_ts=thread_ts
        )
        files: list[dict[str, Any]] = response.get("files", [])
        return [uploaded["id"] for uploaded in files]

    def _render(
        self, items: Iterable[SearchHit] | Iterable[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        uploads, doc_ids = [], []
        for item in items:
            doc_id, path = (
                (item.document.id, item.document.path) if isinstance(item, SearchHit) else item
            )
            try:
                content = render_preview(self._library, path, self._max_bytes)
            except (ImageError, FindImageError) as exc:
                log.warning("no preview for %s: %s", path, exc)
                continue
            stem = Path(path).stem or "preview"
            uploads.append({"content": content, "filename": f"{stem}.jpg", "title": path})
            doc_ids.append(doc_id)
        return uploads, doc_ids


class PrivateShelves:
    """One thread per person in the bot's direct message with them, holding their previews.

    The thread keeps the direct message itself tidy: one line per bot start, the pictures
    inside. Kept in memory; after a restart the next private answer opens a new thread.
    """

    def __init__(self, client: WebClient, remember: int = 10_000):
        self._client = client
        self._threads: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()

    def thread_for(self, user_id: str) -> tuple[str, str]:
        # One lock for the whole lookup, so answers arriving together open one thread; the
        # Web API calls under it happen once per person per run.
        with self._lock:
            if user_id in self._threads:
                self._threads.move_to_end(user_id)
                return self._threads[user_id]
            opened = self._client.conversations_open(users=user_id)
            channel_id = opened["channel"]["id"]
            posted = self._client.chat_postMessage(channel=channel_id, text=SHELF_LINE)
            self._threads[user_id] = (channel_id, str(posted["ts"]))
            if len(self._threads) > self._remember:
                self._threads.popitem(last=False)
            return self._threads[user_id]


class NoPreviews:
    """No library is configured, so there is nothing to show but the paths."""

    def for_private(self, hits: Sequence[SearchHit], user_id: str) -> Previews:
        return Previews()

    def for_thread(self, hits: Sequence[SearchHit], channel_id: str, thread_ts: str) -> Previews:
        return Previews()

    def for_shared(self, doc_id: str, path: str, channel_id: str, comment: str) -> SharedPreview:
        return SharedPreview()


def _error(exc: Exception) -> str:
    """Slack's error code, or the connection problem in one line."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error"))
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


class PreviewEndpoint:
    """WSGI app for `GET /images/<id>?exp=..&sig=..`: a downscaled JPEG for a valid signature."""

    def __init__(
        self,
        lookup_path: Callable[[str], str | None],
        library: Library,
        signer: PreviewSigner,
        max_bytes: int,
        cache_seconds: int,
    ):
        self._lookup_path = lookup_path
        self._library = library
        self._signer = signer
        self._max_bytes = max_bytes
        self._cache_seconds = cache_seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        status, headers, body = self.respond(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
        )
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def respond(
        self, method: str, path: str, query_string: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        text = [("Content-Type", "text/plain; charset=utf-8")]
        if method != "GET":
            return "405 Method Not Allowed", [*text, ("Allow", "GET")], b"GET only\n"
        doc_id = path.removeprefix(PREVIEW_PATH_PREFIX)
        query = parse_qs(query_string)
        expires = query.get("exp", [""])[0]
        signature = query.get("sig", [""])[0]
        if not self._signer.verify(doc_id, expires, signature):
            return "403 Forbidden", text, b"invalid or expired link\n"
        relative_path = self._lookup_path(doc_id)
        if relative_path is None:
            return "404 Not Found", text, b"no such picture\n"
        try:
            # An object store serves the picture itself, by a link as short-lived as ours.
            presigned = self._library.presigned_url(relative_path, self._cache_seconds)
            if presigned is not None:
                return "302 Found", [*text, ("Location", presigned)], b""
            body = render_preview(self._library, relative_path, self._max_bytes)
        except OutsideLibraryError as exc:
            log.warning("refused preview %s: %s", doc_id, exc)
            return "403 Forbidden", text, b"not available\n"
        except (FindImageError, ImageError) as exc:
            log.warning("no preview for %s: %s", relative_path, exc)
            return "404 Not Found", text, b"no preview\n"
        headers = [
            ("Content-Type", "image/jpeg"),
            ("Cache-Control", f"private, max-age={self._cache_seconds}"),
        ]
        return "200 OK", headers, body
