"""The Bolt app, and running it: Socket Mode with an app token, HTTP otherwise."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.answers import Answers
from bot.blocks import MAX_RESULTS_PER_MESSAGE
from bot.errors import BackendUnavailableError, ConfigError
from bot.previews import (
    PREVIEW_PATH_PREFIX,
    NoPreviews,
    PreviewEndpoint,
    PreviewSigner,
    PreviewSource,
    SignedUrlPreviews,
    UploadedPreviews,
)
from bot.search import SearchService
from bot.settings import Settings
from bot.slack_files import SlackFiles
from handlers import actions, commands, events, home

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"

# Every Web API method the bot calls, with the bot scopes it needs. manifest.yml asks for
# exactly these plus SURFACE_SCOPES; a test holds both to it.
WEB_API_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "files.info": ("files:read",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "views.publish": (),
}
# The events the bot subscribes to, with the scopes Slack requires for each.
EVENT_SCOPES: dict[str, tuple[str, ...]] = {
    "app_home_opened": (),
    "app_mention": ("app_mentions:read",),
    "message.im": ("im:history",),
}
SURFACE_SCOPES: dict[str, tuple[str, ...]] = {
    "slash command /findimage": ("commands",),
    "downloading url_private_download": ("files:read",),
}


def required_scopes() -> set[str]:
    tables = (WEB_API_SCOPES, EVENT_SCOPES, SURFACE_SCOPES)
    return {scope for table in tables for scopes in table.values() for scope in scopes}


@dataclass(frozen=True)
class BotOptions:
    """What the listeners need besides the app: the answers and the limits from the settings."""

    answers: Answers
    files: SlackFiles
    top_k: int


def build_web_client(settings: Settings) -> WebClient:
    if settings.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set: copy the bot token from the Slack app.")
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        retry_handlers=web_client_retry_handlers(),
    )


def web_client_retry_handlers() -> list:
    """Retry dropped connections, and rate-limited calls after the Retry-After they name."""
    return [ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(max_retry_count=2)]


def create_app(settings: Settings, service: SearchService, client: WebClient | None = None) -> App:
    """The Bolt app with every listener; `client` carries the token (and a base_url in tests)."""
    if settings.slack_signing_secret is None:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: copy the signing secret from the Slack app."
        )
    client = client or build_web_client(settings)
    options = BotOptions(
        answers=Answers(
            service,
            build_previews(settings, client),
            min_score=settings.min_score,
            duplicate_score=settings.duplicate_score,
        ),
        files=SlackFiles(client, settings.max_file_bytes, settings.max_file_mb),
        top_k=min(settings.top_k, MAX_RESULTS_PER_MESSAGE),
    )
    try:
        app = App(
            client=client,
            signing_secret=settings.slack_signing_secret.get_secret_value(),
            # Listeners ack first and answer afterwards on Bolt's thread pool, so Slack gets
            # its acknowledgement within 3 seconds however long the model or backend takes.
            process_before_response=False,
        )
    except BoltError as exc:
        log.error("auth.test failed: %s", exc)
        raise ConfigError(
            "Slack refused SLACK_BOT_TOKEN: copy the bot token again from the Slack app."
        ) from None
    except OSError as exc:
        log.error("auth.test could not reach Slack: %s", exc)
        raise BackendUnavailableError(
            "Slack cannot be reached: check this machine's network and proxy settings."
        ) from None
    app.use(ignore_retries)
    commands.register(app, options)
    actions.register(app, options)
    events.register(app, options)
    home.register(app, service)
    return app


def ignore_retries(request: BoltRequest, next: Callable[[], None]) -> BoltResponse | None:
    """Slack redelivers when it thinks an event was lost; the first delivery is answered."""
    retry = request.headers.get("x-slack-retry-num")
    if retry:
        reason = request.headers.get("x-slack-retry-reason", ["?"])[0]
        log.info("ignoring Slack retry %s (%s)", retry[0], reason)
        return BoltResponse(status=200, body="")
    return next()


def build_previews(settings: Settings, client: WebClient) -> PreviewSource:
    if settings.store is None:
        return NoPreviews()
    if settings.public_base_url:
        return SignedUrlPreviews(settings.public_base_url, preview_signer(settings))
    return UploadedPreviews(client, settings.store, settings.max_file_bytes)


def preview_signer(settings: Settings) -> PreviewSigner:
    if settings.preview_secret is None:
        raise ConfigError(
            "FINDIMAGE_PUBLIC_BASE_URL is set but FINDIMAGE_PREVIEW_SECRET is not: "
            "set it to a long random string."
        )
    return PreviewSigner(settings.preview_secret.get_secret_value(), settings.preview_ttl_seconds)


def build_wsgi_app(settings: Settings, service: SearchService, app: App | None) -> Callable:
    """One WSGI app for `/slack/events` (when `app` is given) and the signed `/images/<id>`.

    Bolt's own `app.start()` serves only its events path, so both routes go through Bolt's
    WSGI adapter and a plain wsgiref server instead.
    """
    previews = None
    if settings.public_base_url and settings.store is not None:

        def lookup_path(doc_id: str) -> str | None:
            found = service.store.get(doc_id)
            return found[0].path if found else None

        previews = PreviewEndpoint(
            lookup_path,
            settings.store,
            preview_signer(settings),
            settings.max_file_bytes,
            cache_seconds=settings.preview_ttl_seconds,
        )
    events_handler = SlackRequestHandler(app, path=EVENTS_PATH) if app else None

    def route(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if events_handler and path == EVENTS_PATH:
            return events_handler(environ, start_response)
        if previews and path.startswith(PREVIEW_PATH_PREFIX):
            return previews(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found\n"]

    return route


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _LoggingRequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def make_http_server(wsgi_app: Callable, host: str, port: int) -> ThreadingWSGIServer:
    return make_server(
        host,
        port,
        wsgi_app,
        server_class=ThreadingWSGIServer,
        handler_class=_LoggingRequestHandler,
    )


def serve(settings: Settings, service: SearchService, host: str = "0.0.0.0") -> None:
    """Run until interrupted: Socket Mode when SLACK_APP_TOKEN is set, HTTP mode otherwise."""
    app = create_app(settings, service)
    if settings.slack_app_token is not None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        if settings.public_base_url:
            # Socket Mode needs no public URL for Slack, but signed previews still do.
            server = make_http_server(build_wsgi_app(settings, service, None), host, settings.port)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            log.info("serving previews on port %s", settings.port)
        log.info("connecting to Slack in Socket Mode")
        SocketModeHandler(app, settings.slack_app_token.get_secret_value()).start()
        return
    server = make_http_server(build_wsgi_app(settings, service, app), host, settings.port)
    log.info("listening for Slack on http://%s:%s%s", host, settings.port, EVENTS_PATH)
    try:
        server.serve_forever()
    finally:
        server.server_close()
