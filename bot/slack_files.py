"""Fetching a photo someone posted: type and size checked before any byte is decoded."""

from __future__ import annotations

import logging
from typing import Any

import requests
from slack_sdk import WebClient

from bot.errors import ImageError

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_SECONDS = 30
CHUNK_BYTES = 64 * 1024


class SlackFiles:
    def __init__(self, client: WebClient, max_bytes: int, max_mb: float):
        self._client = client
        self._max_bytes = max_bytes
        self._max_mb = max_mb

    def describe(self, file: dict[str, Any]) -> dict[str, Any]:
        """The full file object; some events only carry its id and ask us to look it up."""
        if file.get("file_access") == "check_file_info":
            return self._client.files_info(file=file["id"])["file"]
        return file

    def check(self, file: dict[str, Any]) -> None:
        """Refuse what is not a picture or is too large, from what Slack says about the file."""
        name = display_name(file)
        if not str(file.get("mimetype", "")).startswith("image/"):
            kind = file.get("pretty_type") or file.get("filetype") or "file"
            raise ImageError(
                f"I can only search with pictures, and {name} is a {kind}: "
                "try a JPEG, PNG, GIF or WebP."
            )
        self._check_size(name, int(file.get("size") or 0))

    def download(self, file: dict[str, Any]) -> bytes:
        """The file's bytes from url_private_download, read with the bot token."""
        name = display_name(file)
        url = file.get("url_private_download") or file.get("url_private")
        if not url:
            raise ImageError(f"Slack did not give me a way to download {name}.")
        headers = {"Authorization": f"Bearer {self._client.token}"}
        try:
            with requests.get(
                url, headers=headers, stream=True, timeout=DOWNLOAD_TIMEOUT_SECONDS
            ) as response:
                content_type = response.headers.get("Content-Type", "")
                if response.status_code != 200 or not content_type.startswith("image/"):
                    # Without a valid token and the files:read scope Slack answers with a
                    # sign-in page, not an error status.
                    log.warning(
                        "downloading file %s gave HTTP %s (%s); check the files:read scope",
                        file.get("id"),
                        response.status_code,
                        content_type,
                    )
                    raise ImageError(f"I couldn't download {name} from Slack.")
                return self._read_limited(name, response)
        except requests.RequestException as exc:
            log.warning("downloading file %s failed: %s", file.get("id"), exc)
            raise ImageError(f"I couldn't download {name} from Slack.") from exc

    def _read_limited(self, name: str, response: requests.Response) -> bytes:
        data = bytearray()
        for chunk in response.iter_content(CHUNK_BYTES):
            data += chunk
            self._check_size(name, len(data))
        return bytes(data)

    def _check_size(self, name: str, size: int) -> None:
        if size > self._max_bytes:
            raise ImageError(f"{name} is larger than the {self._max_mb:g} MB I accept.")


def display_name(file: dict[str, Any]) -> str:
    return str(file.get("name") or file.get("title") or "that file")
