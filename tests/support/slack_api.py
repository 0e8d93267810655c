"""A local stand-in for Slack's Web API, response URLs, upload URLs and file downloads.

It listens on 127.0.0.1, answers the way Slack documents (each behavior cites its source),
and records every request so tests can assert on what the bot actually sent. Where Slack
varies (the Content-Type of a download, redirects), each variant can be switched on.

Failures are emulated too: 429 with Retry-After (`rate_limit`), 5xx (`server_errors`), a part
of Slack unreachable (`down`), and the whole server stopped and restarted on the same port
(`SlackApiServer.stop` / `restart`).

Sign in with Slack (the team page's OpenID Connect endpoints) is answered by `FakeSlack.oidc`,
tests/support/slack_oidc.py, which cites Slack's documentation for each behaviour.

Not emulated, because the bot never relies on them: per-tier rate-limit windows (tests
choose which calls get a 429), pagination, Enterprise Grid, and message editing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests

from tests.support.block_kit import message_errors, view_errors
from tests.support.slack_oidc import SlackOidc
from tests.support.waiting import CEILING_SECONDS

BOT_TOKEN = "xoxb-fake"
APP_TOKEN = "xapp-fake"
BOT_USER_ID = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM_ID = "T0000001"
OIDC_METHODS = {"openid.connect.token", "openid.connect.userInfo"}
JSON_FIELDS = {"blocks", "files", "view", "attachments"}
SIGN_IN_PAGE = b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>"
# What Slack has been seen to send as a download's Content-Type: the file's own mimetype, or a
# generic binary type (issue 7's trials; slackapi/java-slack-sdk#1349 shows files whose
# mimetype Slack left empty). Tests run photo answers against each.
DOWNLOAD_CONTENT_TYPES = ("mimetype", "application/octet-stream", "binary/octet-stream")
# https://api.slack.com/interactivity/handling#message_responses: "You can use response_url
# up to five times within 30 minutes" of the interaction.
RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60
# https://api.slack.com/docs/rate-limits: "If you go over these limits when using our HTTP
# based APIs, including Incoming Webhooks, Slack will start returning a HTTP 429 Too Many
# Requests error, a JSON object containing the number of calls you have been making, and a
# Retry-After header containing the number of seconds until you can retry." The Web API's
# JSON is {"ok": false, "error": "ratelimited"} (https://docs.slack.dev/reference/methods,
# common errors). Response URLs are incoming webhooks to the same limits.
RATE_LIMITED = {"ok": False, "error": "ratelimited"}
# The parts of Slack that `down` can take away: the Web API, the response URLs, the file host.
PARTS = ("api", "response", "files")
# Methods and the arguments Slack requires, with the error each gives when one is missing
# (each method's page on https://docs.slack.dev/reference/methods/, "Required arguments" and
# "Errors"); `invalid_arguments` is Slack's common error where a page names no specific one.
REQUIRED_ARGUMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "chat.postMessage": (("channel", "channel_not_found"),),
    "chat.postEphemeral": (("channel", "channel_not_found"), ("user", "user_not_in_channel")),
    "conversations.open": (("users", "invalid_arguments"),),
    "files.info": (("file", "file_not_found"),),
    "files.getUploadURLExternal": (
        ("filename", "invalid_arguments"),
        ("length", "invalid_arguments"),
    ),
    "files.completeUploadExternal": (("files", "invalid_arguments"),),
    "views.publish": (("user_id", "invalid_arguments"), ("view", "invalid_arguments")),
}


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
    # The size the file object reports, when a test wants it to differ from the bytes.
    reported_size: int | None = None


@dataclass
class FakeSlack:
    """State and recordings; the HTTP server below reads and writes it.

    Switches for the variants a test wants: `download_content_type` (one of
    DOWNLOAD_CONTENT_TYPES), `redirect_downloads` ("same-host" or "cross-host"),
    `files_read_scope` (False: the token may not read files), `delay` (seconds before each
    Web API and response_url answer).

    Failures: `rate_limit[kind] = n` answers the next n calls of that method (or "response"
    for response URLs) with 429 and `Retry-After: retry_after`; `server_errors[kind] = n`
    answers them with HTTP 503; a part named in `down` ("api", "response", "files") drops
    each connection without an answer, as an unreachable host does to a client.
    """

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    files: dict[str, SlackFile] = field(default_factory=dict)
    not_member: set[str] = field(default_factory=set)
    rate_limited_once: set[str] = field(default_factory=set)
    all_methods: set[str] = field(default_factory=set)
    download_content_type: str = "mimetype"
    redirect_downloads: str | None = None
    files_read_scope: bool = True
    delay: float = 0.0
    rate_limit: dict[str, int] = field(default_factory=dict)
    retry_after: int = 1
    server_errors: dict[str, int] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    # Uploaded file id -> the conversations it was shared into (empty: the bot's alone).
    uploads: dict[str, set[str]] = field(default_factory=dict)
    response_uses: dict[str, list[float]] = field(default_factory=dict)
    # Where apps.connections.open sends Socket Mode clients (a local websocket server).
    socket_url: str = ""
    # Sign in with Slack: the app's client, its Redirect URLs, who signs in next.
    oidc: SlackOidc = field(default_factory=lambda: SlackOidc(TEAM_ID))
    _condition: threading.Condition = field(default_factory=threading.Condition)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def other_host_url(self) -> str:
        """The same server under another host name: a different host to `requests`."""
        return self.url.replace("127.0.0.1", "localhost")

    def response_url(self, name: str) -> str:
        return f"{self.url}/response/{name}"

    def reset(self) -> None:
        with self._condition:
            self.requests.clear()
            self.files.clear()
            self.not_member.clear()
            self.rate_limited_once.clear()
            self.uploads.clear()
            self.response_uses.clear()
            self.download_content_type = "mimetype"
            self.redirect_downloads = None
            self.files_read_scope = True
            self.delay = 0.0
            self.rate_limit.clear()
            self.retry_after = 1
            self.server_errors.clear()
            self.down.clear()
            self.oidc.reset()

    def add_file(
        self, name: str, content: bytes, mimetype: str = "image/png", **extra: Any
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
            "size": (
                len(slack_file.content)
                if slack_file.reported_size is None
                else slack_file.reported_size
            ),
            "mode": "hosted",
            "url_private": f"{base}/{slack_file.name}",
            "url_private_download": f"{base}/download/{slack_file.name}",
        }

    def take_failure(self, kind: str) -> tuple[int, dict[str, str]] | None:
        """The failure switched on for the next `kind` call, if any: (status, headers)."""
        with self._condition:
            if self.rate_limit.get(kind, 0) > 0:
                self.rate_limit[kind] -= 1
                return 429, {"Retry-After": str(self.retry_after)}
            if self.server_errors.get(kind, 0) > 0:
                self.server_errors[kind] -= 1
                return 503, {}
        return None

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
        timeout: float = CEILING_SECONDS,
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
        if segments[0] in ("files-pri", "files-cdn") and "files" in fake.down:
            self._drop()
            return
        if segments[0] == "files-pri" and len(segments) >= 2:
            self._download(fake, segments[1].split("-", 1)[-1], parts.path, headers)
        elif segments[0] == "files-cdn" and len(segments) >= 2:
            # Where a cross-host redirect lands: a signed CDN link that needs no token.
            fake.record(Recorded("cdn", parts.path, {"file": segments[1]}, headers))
            self._send_file(fake, segments[1])
        elif segments[0] == "signin":
            fake.record(Recorded("signin", parts.path, {}, headers))
            self._send(200, SIGN_IN_PAGE, "text/html; charset=utf-8")
        elif parts.path == "/openid/connect/authorize":
            query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            fake.record(Recorded("authorize", parts.path, query, headers))
            status, where = fake.oidc.authorize(query)
            if status == 302:
                self._redirect(where)
            else:
                self._send(status, where.encode(), "text/plain")
        elif parts.path == "/openid/connect/keys":
            fake.record(Recorded("keys", parts.path, {}, headers))
            self._send_json(fake.oidc.keys())
        else:
            self._send(404, b"not found", "text/plain")

    def _download(self, fake: FakeSlack, file_id: str, path: str, headers: dict[str, str]) -> None:
        """url_private(_download): the file's bytes for the bot token with files:read.

        https://api.slack.com/types/file#auth: these URLs need "an Authorization header
        with a token that has the files:read scope". Without it Slack answers with its
        sign-in page, not an error status (slackapi/bolt-js#2585, and
        https://gist.github.com/ErikKalkoken/f3ab28617d5099531ded865d111dbac1 "you get a
        HTML asking you to login"), reached by a 302 redirect to the workspace sign-in page.
        """
        fake.record(Recorded("download", path, {"file": file_id}, headers))
        if file_id not in fake.files:
            self._send(404, b"not found", "text/plain")
            return
        authorized = headers.get("Authorization") == f"Bearer {BOT_TOKEN}"
        if not authorized or not fake.files_read_scope:
            self._redirect(f"{fake.url}/signin?redir={quote(path)}")
            return
        # Slack may redirect a file download to where the bytes are served (openclaw/openclaw
        # #63588 describes a redirect from files.slack.com to Slack's CDN); `requests` keeps
        # the Authorization header on the same host and drops it on another
        # (requests.sessions.SessionRedirectMixin.should_strip_auth).
        if fake.redirect_downloads == "same-host" and not path.endswith("/moved"):
            self._redirect(f"{fake.url}{path}/moved")
        elif fake.redirect_downloads == "cross-host":
            self._redirect(f"{fake.other_host_url}/files-cdn/{file_id}")
        else:
            self._send_file(fake, file_id)

    def _send_file(self, fake: FakeSlack, file_id: str) -> None:
        slack_file = fake.files.get(file_id)
        if slack_file is None:
            self._send(404, b"not found", "text/plain")
            return
        content_type = fake.download_content_type
        if content_type == "mimetype":
            content_type = slack_file.mimetype
        self._send(200, slack_file.content, content_type)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = dict(self.headers.items())
        segments = parts.path.strip("/").split("/")
        if segments[0] == "upload" and "api" not in fake.down:
            fake.record(Recorded("upload", parts.path, {"file": segments[-1]}, headers, body))
            self._send(200, f"OK - {len(body)}".encode(), "text/plain")
            return
        part = {"api": "api", "response": "response", "upload": "api"}.get(segments[0])
        if part in fake.down:
            fake.record(Recorded(f"{part}-down", parts.path, {}, headers, body))
            self._drop()
            return
        if fake.delay:
            time.sleep(fake.delay)  # a slow Slack, not synchronization
        if segments[0] == "response":
            self._response_url(fake, segments[-1], parts.path, headers, body)
            return
        if segments[0] != "api" or len(segments) != 2:
            self._send(404, b"not found", "text/plain")
            return
        method = segments[1]
        params = _params(parts.query, headers.get("Content-Type", ""), body)
        failure = fake.take_failure(method)
        if failure is not None:
            status, extra = failure
            fake.record(Recorded(f"{method}-{status}", parts.path, params, headers, body))
            refusal = RATE_LIMITED if status == 429 else {"ok": False, "error": "fatal_error"}
            self._send_json(refusal, status, extra)
            return
        fake.record(Recorded(method, parts.path, params, headers, body))
        if method in OIDC_METHODS:
            self._send_json(_oidc_answer(fake, method, params, headers))
            return
        if method in fake.rate_limited_once:
            # RATE_LIMITED above: HTTP 429 with a Retry-After header.
            fake.rate_limited_once.discard(method)
            self._send_json(RATE_LIMITED, 429, {"Retry-After": "1"})
            return
        self._send_json(_authenticated_answer(fake, method, params, headers))

    def _response_url(
        self, fake: FakeSlack, name: str, path: str, headers: dict[str, str], body: bytes
    ) -> None:
        """A response_url: up to 5 posts in 30 minutes; a payload with blocks Slack refuses
        gets HTTP 400 and the body `invalid_blocks` (slackapi/java-slack-sdk#1017,
        sourcegraph/sourcegraph-public-snapshot#49979: "400 Bad Request with body
        invalid_blocks"). Slack's docs give the limit but not the refusal's shape once it is
        used up; this answers 404 `expired_url`, and the bot only logs the body anyway."""
        params = json.loads(body or b"{}")
        failure = fake.take_failure("response")
        if failure is not None:
            status, extra = failure
            fake.record(Recorded(f"response-{status}", path, params, headers, body))
            text = b"rate_limited" if status == 429 else b"service_unavailable"
            self._send(status, text, "text/plain", extra)
            return
        now = time.monotonic()
        with fake._condition:
            uses = fake.response_uses.setdefault(name, [])
            fresh = not uses or now - uses[0] <= RESPONSE_URL_SECONDS
            allowed = fresh and len(uses) < RESPONSE_URL_USES
            if allowed:
                uses.append(now)
        if not allowed:
            fake.record(Recorded("response-refused", path, params, headers, body))
            self._send(404, b"expired_url", "text/plain")
            return
        if _block_errors(fake, params):
            fake.record(Recorded("response-refused", path, params, headers, body))
            self._send(400, b"invalid_blocks", "text/plain")
            return
        fake.record(Recorded("response", path, params, headers, body))
        self._send(200, b"ok", "text/plain")

    def _drop(self) -> None:
        """Close the connection without a word: the client sees it reset, as when Slack's
        host cannot be reached."""
        self.close_connection = True
        with contextlib.suppress(OSError):  # already gone
            self.connection.shutdown(socket.SHUT_RDWR)

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


def _oidc_answer(
    fake: FakeSlack, method: str, params: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """The client's credentials (the token method) or the person's access token (userInfo)
    authenticate these, never the bot token."""
    authorization = headers.get("Authorization", "")
    if method == "openid.connect.token":
        return fake.oidc.token(fake.url, params, authorization)
    return fake.oidc.userinfo(authorization, params)


def _authenticated_answer(
    fake: FakeSlack, method: str, params: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """https://docs.slack.dev/reference/methods (common errors): no token at all is
    `not_authed`; a token Slack does not know is `invalid_auth`."""
    authorization = headers.get("Authorization") or (
        f"Bearer {params['token']}" if params.get("token") else None
    )
    if authorization is None:
        return {"ok": False, "error": "not_authed"}
    if method == "apps.connections.open":
        # Called with the app-level token (https://docs.slack.dev/reference/methods/
        # apps.connections.open): {"ok": true, "url": "wss://…"}, here a local ws:// server.
        if authorization != f"Bearer {APP_TOKEN}":
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": fake.socket_url}
    if authorization != f"Bearer {BOT_TOKEN}":
        return {"ok": False, "error": "invalid_auth"}
    for argument, error in REQUIRED_ARGUMENTS.get(method, ()):
        if params.get(argument) in (None, "", []):
            return {"ok": False, "error": error}
    if method in {"chat.postMessage", "chat.postEphemeral"}:
        # chat.postMessage: "no_text: No message text provided" when neither text, blocks
        # nor attachments is given (https://docs.slack.dev/reference/methods/chat.postMessage).
        if not any(params.get(key) for key in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        errors = _block_errors(fake, params)
        if errors:
            # The shape Slack gives (slackapi/bolt-python#1016, #1251):
            # {"ok": false, "error": "invalid_blocks", "errors": ["… [json-pointer:…]"]}
            return {"ok": False, "error": "invalid_blocks", "errors": errors}
    if method == "views.publish":
        errors = view_errors(params["view"])
        if errors:
            return {"ok": False, "error": "invalid_arguments", "errors": errors}
    return _answer(fake, method, params)


def _block_errors(fake: FakeSlack, message: dict[str, Any]) -> list[str]:
    """Block Kit rules, plus the two checks Slack makes on a picture's source.

    - slack_file: "the user posting these blocks must have access to this file"
      (https://docs.slack.dev/reference/block-kit/composition-objects/slack-file-object); a
      file uploaded without a channel is the uploader's alone, and Slack refuses it with
      "invalid slack file [json-pointer:/blocks/0/slack_file]" (slackapi/bolt-python#1251).
      The stand-in holds the bot to the stricter rule that the file is shared somewhere.
    - image_url: Slack fetches the picture when the message is posted and refuses the whole
      message when it cannot (issue 7's trials; the refusal names the block the same way).
    """
    errors = message_errors(message)
    for index, block in enumerate(message.get("blocks") or []):
        if block.get("type") != "image":
            continue
        slack_file = block.get("slack_file") or {}
        if "id" in slack_file and not fake.uploads.get(slack_file["id"]):
            errors.append(f"invalid slack file [json-pointer:/blocks/{index}/slack_file]")
        if "image_url" in block and not _fetches_as_image(block["image_url"]):
            errors.append(f"downloading image failed [json-pointer:/blocks/{index}/image_url]")
    return errors


def _fetches_as_image(url: str) -> bool:
    try:
        response = requests.get(url, timeout=10)
    except requests.RequestException:
        return False
    return response.status_code == 200 and response.headers.get("Content-Type", "").startswith(
        "image/"
    )


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
        case "conversations.open":
            # The bot's direct message with that person: https://docs.slack.dev/reference/
            # methods/conversations.open ("users": one user id opens a 1:1 DM).
            return {"ok": True, "channel": {"id": "D" + str(params["users"]).lstrip("UW")}}
        case "files.getUploadURLExternal":
            file_id = f"FUP{next(fake._ids):06d}"
            return {"ok": True, "upload_url": f"{fake.url}/upload/{file_id}", "file_id": file_id}
        case "files.completeUploadExternal":
            # Without channel_id the files are uploaded but shared nowhere
            # (https://docs.slack.dev/reference/methods/files.completeUploadExternal).
            files = params.get("files", [])
            with fake._condition:
                for uploaded in files:
                    shared = fake.uploads.setdefault(uploaded["id"], set())
                    if channel:
                        shared.add(channel)
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
    # The standard library listens with a backlog of 5; Slack takes bursts.
    request_queue_size = 256

    def __init__(self, fake: FakeSlack, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake


class SlackApiServer:
    """Runs a FakeSlack on 127.0.0.1 in a thread: `with SlackApiServer() as fake: ...`.

    `stop()` closes the port (connections are refused, as when Slack is unreachable) and
    `restart()` opens the same port again with the same state.
    """

    def __init__(self) -> None:
        self.fake = FakeSlack()
        self._server: _Server | None = _Server(self.fake)
        host, port = self._server.server_address[:2]
        self._port = int(port)
        self.fake.url = f"http://{host}:{port}"

    def __enter__(self) -> FakeSlack:
        self._serve()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def restart(self) -> None:
        self.stop()
        self._server = _Server(self.fake, self._port)
        self._serve()

    def _serve(self) -> None:
        assert self._server is not None
        # `shutdown()` waits for the loop's next poll: 0.5 s by default.
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
