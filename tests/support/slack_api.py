"""A local stand-in for Slack's Web API, response URLs, upload URLs and file downloads.

It listens on 127.0.0.1, answers the way Slack documents, and records every request so tests
can assert on what the bot actually sent.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT_TOKEN = "xoxb-fake"
BOT_USER_ID = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM_ID = "T0000001"
JSON_FIELDS = {"blocks", "files", "view", "attachments"}
SIGN_IN_PAGE = b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>"


@dataclass
class Recorded:
    """One request: `kind` is a Web API method name, "upload", "response" or "download"."""

    kind: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    body: bytes = b""
    at: float = field(default_factory=time.monotonic)


@dataclass
class SlackFile:
    id: str
    name: str
    mimetype: str
    content: bytes
    filetype: str = "png"
    pretty_type: str = "PNG"


@dataclass
class FakeSlack:
    """State and recordings; the HTTP server below reads and writes it."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    files: dict[str, SlackFile] = field(default_factory=dict)
    not_member: set[str] = field(default_factory=set)
    rate_limited_once: set[str] = field(default_factory=set)
    all_methods: set[str] = field(default_factory=set)
    _condition: threading.Condition = field(default_factory=threading.Condition)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.url}/response/{name}"

    def reset(self) -> None:
        with self._condition:
            self.requests.clear()
            self.files.clear()
            self.not_member.clear()
            self.rate_limited_once.clear()

    def add_file(
        self, name: str, content: bytes, mimetype: str = "image/png", **extra: str
    ) -> dict[str, Any]:
        """Register a file and return it as Slack shows it in a message event."""
        file_id = f"F{next(self._ids):08d}"
        slack_file = SlackFile(file_id, name, mimetype, content, **extra)
        self.files[file_id] = slack_file
        return self.file_object(slack_file)

    def file_object(self, slack_file: SlackFile) -> dict[str, Any]:
        base = f"{self.url}/files-pri/{TEAM_ID}-{slack_file.id}"
        return {
            "id": slack_file.id,
            "name": slack_file.name,
            "title": slack_file.name,
            "mimetype": slack_file.mimetype,
            "filetype": slack_file.filetype,
            "pretty_type": slack_file.pretty_type,
            "size": len(slack_file.content),
            "mode": "hosted",
            "url_private": f"{base}/{slack_file.name}",
            "url_private_download": f"{base}/download/{slack_file.name}",
        }

    def record(self, recorded: Recorded) -> None:
        with self._condition:
            self.requests.append(recorded)
            if recorded.path.startswith("/api/"):
                self.all_methods.add(recorded.kind)
            self._condition.notify_all()

    def calls(
        self, kind: str, where: Callable[[Recorded], bool] = lambda r: True
    ) -> list[Recorded]:
        with self._condition:
            return [r for r in self.requests if r.kind == kind and where(r)]

    def wait_for(
        self,
        kind: str,
        count: int = 1,
        where: Callable[[Recorded], bool] = lambda r: True,
        timeout: float = 20.0,
    ) -> list[Recorded]:
        """Block until `count` matching requests were recorded; fail after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                found = [r for r in self.requests if r.kind == kind and where(r)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [r.kind for r in self.requests]
                    raise AssertionError(f"expected {count} {kind} request(s); saw {seen}")
                self._condition.wait(left)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recordings are the log."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        fake = self.server.fake
        segments = parts.path.strip("/").split("/")
        headers = dict(self.headers.items())
        if segments[0] == "files-pri" and len(segments) >= 2:
            file_id = segments[1].split("-", 1)[-1]
            fake.record(Recorded("download", parts.path, {"file": file_id}, headers))
            slack_file = fake.files.get(file_id)
            if slack_file is None:
                self._send(404, b"not found", "text/plain")
            elif headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
                # Slack answers a download without the right token with its sign-in page.
                self._send(200, SIGN_IN_PAGE, "text/html; charset=utf-8")
            else:
                self._send(200, slack_file.content, slack_file.mimetype)
            return
        self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = dict(self.headers.items())
        segments = parts.path.strip("/").split("/")
        if segments[0] == "upload":
            fake.record(Recorded("upload", parts.path, {"file": segments[-1]}, headers, body))
            self._send(200, f"OK - {len(body)}".encode(), "text/plain")
            return
        if segments[0] == "response":
            fake.record(Recorded("response", parts.path, json.loads(body or b"{}"), headers, body))
            self._send(200, b"ok", "text/plain")
            return
        if segments[0] != "api" or len(segments) != 2:
            self._send(404, b"not found", "text/plain")
            return
        method = segments[1]
        params = _params(parts.query, headers.get("Content-Type", ""), body)
        fake.record(Recorded(method, parts.path, params, headers, body))
        if method in fake.rate_limited_once:
            fake.rate_limited_once.discard(method)
            self._send_json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "1"})
            return
        if headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            self._send_json({"ok": False, "error": "invalid_auth"})
            return
        self._send_json(_answer(fake, method, params))

    def _send(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(
        self, data: dict[str, Any], status: int = 200, extra: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8", extra)


def _params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    params: dict[str, Any] = {key: values[-1] for key, values in parse_qs(query).items()}
    if content_type.startswith("application/json"):
        params.update(json.loads(body or b"{}"))
    elif body:
        params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8")).items()})
    for key in JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            params[key] = json.loads(params[key])
    return params


def _answer(fake: FakeSlack, method: str, params: dict[str, Any]) -> dict[str, Any]:
    ts = f"{time.time():.6f}"
    channel = params.get("channel") or params.get("channel_id")
    if channel in fake.not_member and method in {
        "chat.postMessage",
        "files.completeUploadExternal",
    }:
        return {"ok": False, "error": "not_in_channel"}
    match method:
        case "auth.test":
            return {
                "ok": True,
                "url": "https://test.slack.com/",
                "team": "Test",
                "user": "findimage",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
            }
        case "chat.postMessage":
            return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts}}
        case "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        case "files.getUploadURLExternal":
            file_id = f"FUP{next(fake._ids):06d}"
            return {"ok": True, "upload_url": f"{fake.url}/upload/{file_id}", "file_id": file_id}
        case "files.completeUploadExternal":
            files = params.get("files", [])
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        case "files.info":
            slack_file = fake.files.get(params.get("file", ""))
            if slack_file is None:
                return {"ok": False, "error": "file_not_found"}
            return {"ok": True, "file": fake.file_object(slack_file)}
        case "views.publish":
            return {"ok": True, "view": {"id": "V0001", **params.get("view", {})}}
    return {"ok": False, "error": "unknown_method"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlack):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class SlackApiServer:
    """Runs a FakeSlack on 127.0.0.1 in a thread: `with SlackApiServer() as fake: ...`."""

    def __init__(self) -> None:
        self.fake = FakeSlack()
        self._server = _Server(self.fake)
        host, port = self._server.server_address[:2]
        self.fake.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
