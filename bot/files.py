"""Fetching a photo someone posted: from Slack's own file host only, decided by its content.

Slack serves file downloads with varying Content-Types (the file's mimetype, but also
`application/octet-stream` or `binary/octet-stream`), so the type header decides nothing: the
bytes go to the picture decoder, which gives the real reason when they are not a picture. The
one exception is an HTML page, which is Slack's sign-in page when the token may not read files.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import requests
from slack_sdk import WebClient

from bot.delivery import Later
from findimage.errors import ImageError

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_SECONDS = 30
CHUNK_BYTES = 64 * 1024
# Mimetypes in a file object that may still hold a picture: Slack reports "" or a generic
# binary type for files it did not recognize (see slackapi/java-slack-sdk#1349).
UNKNOWN_MIMETYPES = {"", "application/octet-stream", "binary/octet-stream"}
_HTML_STARTS = (b"<!doctype html", b"<html")


def file_host(api_url: str) -> tuple[str, str]:
    """The scheme and host that Slack serves `url_private` from, for the Web API at `api_url`.

    Slack's own API (slack.com, and slack-gov.com for GovSlack) serves files from
    `files.<domain>` over https; any other API URL (a local Web API in tests, a proxy) must
    serve files itself, from the same scheme and host.
    """
    api = urlsplit(api_url)
    host = (api.hostname or "").lower()
    if api.scheme == "https" and api.port is None and host in {"slack.com", "slack-gov.com"}:
        return "https", f"files.{host}"
    return api.scheme, api.netloc.lower()


class SlackFiles:
    def __init__(self, client: WebClient, max_bytes: int, max_mb: float):
        self._client = client
        self._max_bytes = max_bytes
        self._max_mb = max_mb
        self._file_host = file_host(client.base_url)

    def describe(self, file: dict[str, Any]) -> dict[str, Any]:
        """The full file object; some events only carry its id and ask us to look it up."""
        if file.get("file_access") == "check_file_info":
            return self._client.files_info(file=file["id"])["file"]
        return file

    def check(self, file: dict[str, Any]) -> None:
        """Refuse what Slack says is another kind of file, or too large, before downloading."""
        name = display_name(file)
        mimetype = str(file.get("mimetype") or "")
        if not mimetype.startswith("image/") and mimetype not in UNKNOWN_MIMETYPES:
            kind = file.get("pretty_type") or file.get("filetype") or "file"
            raise ImageError(
                f"I can only search with pictures, and {name} is a {kind}: "
                "try a JPEG, PNG, GIF, WebP or HEIC."
            )
        self._check_size(name, int(file.get("size") or 0))

    def download(self, file: dict[str, Any]) -> bytes:
        """The file's bytes from url_private_download, read with the bot token."""
        name = display_name(file)
        url = file.get("url_private_download") or file.get("url_private")
        if not url:
            raise ImageError(f"Slack did not give me a way to download {name}.")
        self._check_host(name, file.get("id"), url)
        headers = {"Authorization": f"Bearer {self._client.token}"}
        try:
            # requests follows redirects and drops the Authorization header when one leaves
            # the host (requests.Session.rebuild_auth), so the token never travels further.
            with requests.get(
                url, headers=headers, stream=True, timeout=DOWNLOAD_TIMEOUT_SECONDS
            ) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    # Slack is down or busy: the outbox tries the whole photo again later.
                    raise Later(
                        f"downloading file {file.get('id')} gave HTTP {response.status_code}",
                        _retry_after(response),
                    )
                if response.status_code != 200:
                    log.warning(
                        "downloading file %s gave HTTP %s", file.get("id"), response.status_code
                    )
                    raise ImageError(f"I couldn't download {name} from Slack.")
                return self._read_limited(name, file.get("id"), response)
        except (requests.ConnectionError, requests.Timeout) as exc:
            # Slack cannot be reached: the outbox tries the whole photo again later.
            raise Later(f"downloading file {file.get('id')}: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            log.warning("downloading file %s failed: %s", file.get("id"), exc)
            raise ImageError(f"I couldn't download {name} from Slack.") from exc

    def _check_host(self, name: str, file_id: Any, url: str) -> None:
        """The token goes to Slack's file host only, never to a host named in an event."""
        parts = urlsplit(url)
        scheme, host = self._file_host
        if parts.scheme != scheme or parts.netloc.lower() != host or parts.username:
            log.warning(
                "refused to download file %s from %s://%s: not Slack's file host %s://%s",
                file_id,
                parts.scheme,
                parts.hostname,
                scheme,
                host,
            )
            raise ImageError(
                f"I couldn't download {name}: its link does not point to Slack's file host, "
                "so I did not send it my token."
            )

    def _read_limited(self, name: str, file_id: Any, response: requests.Response) -> bytes:
        data = bytearray()
        for chunk in response.iter_content(CHUNK_BYTES):
            if not data and _looks_like_html(chunk, response.headers.get("Content-Type", "")):
                log.warning(
                    "downloading file %s gave an HTML page (%s): the token lacks files:read",
                    file_id,
                    response.url.split("?")[0],
                )
                raise ImageError(
                    f"I couldn't download {name}: Slack sent its sign-in page instead, which "
                    "means this app lacks the files:read scope. Ask an admin to add it and "
                    "reinstall the app."
                )
            data += chunk
            self._check_size(name, len(data))
        return bytes(data)

    def _check_size(self, name: str, size: int) -> None:
        if size > self._max_bytes:
            raise ImageError(f"{name} is larger than the {self._max_mb:g} MB I accept.")


def _looks_like_html(first_chunk: bytes, content_type: str) -> bool:
    if content_type.split(";")[0].strip().lower() == "text/html":
        return True
    return first_chunk.lstrip()[:16].lower().startswith(_HTML_STARTS)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def display_name(file: dict[str, Any]) -> str:
    return str(file.get("name") or file.get("title") or "that file")
