"""Previews of pictures from a private store, in a form Slack can show in an image block.

Slack only shows pictures it can fetch itself, so a preview is either a short-lived signed
URL on the bot's own `/images/<id>` endpoint (FINDIMAGE_PUBLIC_BASE_URL set), or a small
JPEG uploaded into the conversation where the question was asked.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.documents import SearchHit
from bot.errors import ImageError, NotFoundError
from bot.images import check_size, decode_image

log = logging.getLogger(__name__)

PREVIEW_MAX_SIDE = 512
PREVIEW_JPEG_QUALITY = 82
PREVIEW_PATH_PREFIX = "/images/"

NOT_IN_CHANNEL = (
    "I can't post previews here because I'm not in this conversation: invite me with "
    "`/invite @findimage` to see them. The paths are below."
)
UPLOAD_FAILED = "I couldn't upload the previews here, so here are just the paths."

ImageSource = dict[str, Any]


class OutsideStoreError(NotFoundError):
    """A document path that resolves outside the store root (a symlink, `..`)."""


@dataclass(frozen=True)
class Previews:
    """Image sources for some documents, by id, and a sentence to show when some are missing."""

    sources: dict[str, ImageSource] = field(default_factory=dict)
    uploaded_files: dict[str, str] = field(default_factory=dict)
    notice: str | None = None


class PreviewSource(Protocol):
    def for_hits(
        self, hits: Sequence[SearchHit], channel_id: str, thread_ts: str | None
    ) -> Previews: ...

    def for_shared(self, doc_id: str, uploaded_file: str | None) -> ImageSource | None: ...


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


def render_preview(store_root: Path, relative_path: str, max_bytes: int) -> bytes:
    """A downscaled JPEG of one picture of the store; never reads a file outside the store."""
    root = store_root.resolve()
    path = (root / relative_path).resolve()
    if not path.is_relative_to(root):
        raise OutsideStoreError(f"{relative_path} is not inside the image store.")
    try:
        check_size(path.stat().st_size, max_bytes)
        data = path.read_bytes()
    except OSError as exc:
        raise NotFoundError(f"{relative_path} cannot be read from the image store.") from exc
    image = decode_image(data, max_bytes, min_side=PREVIEW_MAX_SIDE).image
    image.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=PREVIEW_JPEG_QUALITY)
    return buffer.getvalue()


class SignedUrlPreviews:
    """Image blocks point at the bot's own signed `/images/<id>` URLs."""

    def __init__(self, public_base_url: str, signer: PreviewSigner):
        self._base = public_base_url.rstrip("/")
        self._signer = signer

    def url(self, doc_id: str) -> str:
        expires, signature = self._signer.sign(doc_id)
        return f"{self._base}{PREVIEW_PATH_PREFIX}{quote(doc_id)}?exp={expires}&sig={signature}"

    def for_hits(
        self, hits: Sequence[SearchHit], channel_id: str, thread_ts: str | None
    ) -> Previews:
        return Previews(
            sources={hit.document.id: {"image_url": self.url(hit.document.id)} for hit in hits}
        )

    def for_shared(self, doc_id: str, uploaded_file: str | None) -> ImageSource | None:
        return {"image_url": self.url(doc_id)}


class UploadedPreviews:
    """Small JPEGs uploaded into the conversation, so image blocks can name them as slack_file.

    A file uploaded without a channel stays private to the bot and cannot be shown in a block.
    """

    def __init__(self, client: WebClient, store_root: Path, max_bytes: int):
        self._client = client
        self._root = store_root
        self._max_bytes = max_bytes

    def for_hits(
        self, hits: Sequence[SearchHit], channel_id: str, thread_ts: str | None
    ) -> Previews:
        uploads, doc_ids = self._render(hits)
        if not uploads:
            return Previews()
        try:
            response = self._client.files_upload_v2(
                file_uploads=uploads, channel=channel_id, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in {"not_in_channel", "channel_not_found"}:
                log.info("not a member of %s; listing paths without previews", channel_id)
                return Previews(notice=NOT_IN_CHANNEL)
            log.warning("uploading previews to %s failed: %s", channel_id, error)
            return Previews(notice=UPLOAD_FAILED)
        file_ids = [uploaded["id"] for uploaded in response.get("files", [])]
        files = dict(zip(doc_ids, file_ids, strict=False))
        return Previews(
            sources={doc_id: {"slack_file": {"id": file_id}} for doc_id, file_id in files.items()},
            uploaded_files=files,
        )

    def for_shared(self, doc_id: str, uploaded_file: str | None) -> ImageSource | None:
        return {"slack_file": {"id": uploaded_file}} if uploaded_file else None

    def _render(self, hits: Iterable[SearchHit]) -> tuple[list[dict[str, Any]], list[str]]:
        uploads, doc_ids = [], []
        for hit in hits:
            doc = hit.document
            try:
                content = render_preview(self._root, doc.path, self._max_bytes)
            except (ImageError, NotFoundError) as exc:
                log.warning("no preview for %s: %s", doc.path, exc)
                continue
            stem = Path(doc.name).stem or "preview"
            uploads.append({"content": content, "filename": f"{stem}.jpg", "title": doc.path})
            doc_ids.append(doc.id)
        return uploads, doc_ids


class NoPreviews:
    """No store root is configured, so there is nothing to show but the paths."""

    def for_hits(
        self, hits: Sequence[SearchHit], channel_id: str, thread_ts: str | None
    ) -> Previews:
        return Previews()

    def for_shared(self, doc_id: str, uploaded_file: str | None) -> ImageSource | None:
        return None


class PreviewEndpoint:
    """WSGI app for `GET /images/<id>?exp=..&sig=..`: a downscaled JPEG for a valid signature."""

    def __init__(
        self,
        lookup_path: Callable[[str], str | None],
        store_root: Path,
        signer: PreviewSigner,
        max_bytes: int,
        cache_seconds: int,
    ):
        self._lookup_path = lookup_path
        self._root = store_root
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
            body = render_preview(self._root, relative_path, self._max_bytes)
        except OutsideStoreError as exc:
            log.warning("refused preview %s: %s", doc_id, exc)
            return "403 Forbidden", text, b"not available\n"
        except (NotFoundError, ImageError) as exc:
            log.warning("no preview for %s: %s", relative_path, exc)
            return "404 Not Found", text, b"no preview\n"
        headers = [
            ("Content-Type", "image/jpeg"),
            ("Cache-Control", f"private, max-age={self._cache_seconds}"),
        ]
        return "200 OK", headers, body
