"""The Bolt app, and running it: Socket Mode with an app token, HTTP otherwise."""

from __future__ import annotations

import errno
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import SecretStr
from slack_bolt import App, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.access import AccessPolicy, access_middleware
from bot.answers import Answers
from bot.blocks import MAX_RESULTS_PER_MESSAGE
from bot.deduplication import AnsweredOnce, once_per_event
from bot.delivery import Outbox, outbox_middleware, quiet_sdk_connection_errors
from bot.dependencies import SlackDependencies
from bot.files import SlackFiles
from bot.http import HEALTH_PATH, MAX_BODY_BYTES, QuietLog, Readiness, SlackHttpServer, signed_only
from bot.previews import (
    PREVIEW_PATH_PREFIX,
    NoPreviews,
    PreviewEndpoint,
    PreviewSigner,
    PreviewSource,
    PrivateShelves,
    SignedUrlPreviews,
    UploadedPreviews,
)
from bot.replays import SeenSignatures, once_per_signature
from bot.socket_mode import connect as socket_mode_connect
from bot.workers import AnswerWorkers
from findimage.errors import BackendUnavailableError, ConfigError
from findimage.library import open_library
from findimage.search import SearchService
from findimage.settings import Settings, parse_ids
from findimage.terminal import printable
from handlers import register_listeners

log = logging.getLogger(__name__)

# The sentences for auth.test's two failures, at start-up and when sign-in asks for the team.
TOKEN_REFUSED = "Slack refused SLACK_BOT_TOKEN: copy the bot token again from the Slack app."
SLACK_UNREACHABLE = (
    "Slack cannot be reached: check this machine's network and proxy settings "
    "(and FINDIMAGE_SLACK_API_URL)."
)

EVENTS_PATH = "/slack/events"

# Every Web API method the bot calls, with the bot scopes it needs. manifest.yml asks for
# exactly these plus SURFACE_SCOPES; a test holds both to it.
WEB_API_SCOPES: dict[str, tuple[str, ...]] = {
    # Socket Mode only, with the app-level token's connections:write, not a bot scope.
    "apps.connections.open": (),
    "auth.test": (),
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "conversations.open": ("im:write",),
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


def build_web_client(settings: Settings) -> WebClient:
    """The Web API client for FINDIMAGE_SLACK_API_URL (Slack's, GovSlack's, or a local one)."""
    token = _secret(settings.slack_bot_token)
    if token is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set: copy the bot token from the Slack app.")
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        retry_handlers=web_client_retry_handlers(),
    )


def workspace_team_id(settings: Settings) -> str:
    """The id of the workspace the bot token belongs to (auth.test), for Sign in with Slack."""
    try:
        answer = build_web_client(settings).auth_test()
    except SlackApiError as exc:
        log.debug("auth.test failed: %s", exc)
        raise ConfigError(TOKEN_REFUSED) from None
    except OSError as exc:
        log.debug("auth.test could not reach Slack: %s", exc)
        raise BackendUnavailableError(SLACK_UNREACHABLE) from None
    return str(answer["team_id"])


def web_client_retry_handlers() -> list:
    """Retry dropped connections, and rate-limited calls after the Retry-After they name."""
    return [ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(max_retry_count=2)]


def build_workers(settings: Settings) -> AnswerWorkers:
    return AnswerWorkers(settings.slack_workers, settings.slack_queue, settings.slack_queue_mb)


def build_outbox(settings: Settings) -> Outbox:
    return Outbox(settings.slack_answer_deadline_seconds)


def create_app(
    settings: Settings,
    service: SearchService,
    client: WebClient | None = None,
    workers: AnswerWorkers | None = None,
    outbox: Outbox | None = None,
) -> App:
    """The Bolt app with every listener; `client` carries the token and the Web API URL."""
    signing_secret = _secret(settings.slack_signing_secret)
    # Socket Mode's envelopes come over the app token's websocket, unsigned: only HTTP mode
    # checks signatures (https://api.slack.com/apis/socket-mode).
    if signing_secret is None and _secret(settings.slack_app_token) is None:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: copy the signing secret from the Slack app "
            "(or set SLACK_APP_TOKEN for Socket Mode, which needs none)."
        )
    client = client or build_web_client(settings)
    dependencies = SlackDependencies(
        answers=Answers(
            service,
            build_previews(settings, client),
            min_score=settings.min_score,
            duplicate_score=settings.duplicate_score,
        ),
        files=SlackFiles(client, settings.max_file_bytes, settings.max_file_mb),
        workers=workers or build_workers(settings),
        top_k=min(settings.top_k, MAX_RESULTS_PER_MESSAGE),
    )
    logging.getLogger("slack_bolt.App").addFilter(_quiet_token_unused)
    quiet_sdk_connection_errors()
    try:
        app = App(
            client=client,
            signing_secret=signing_secret,
            # Listeners run in the request thread and only ack and hand the work to the
            # bot's own workers, so an ack never waits behind a search in Bolt's small pool.
            process_before_response=True,
        )
    except BoltError as exc:
        # The sentence below is the whole story; the details only at -v.
        log.debug("auth.test failed: %s", exc)
        raise ConfigError(TOKEN_REFUSED) from None
    except OSError as exc:
        log.debug("auth.test could not reach Slack at %s: %s", client.base_url, exc)
        raise BackendUnavailableError(SLACK_UNREACHABLE) from None
    # First, so that every answer, a refusal too, goes through the outbox and names its request.
    app.use(outbox_middleware(outbox or build_outbox(settings)))
    app.use(once_per_signature(SeenSignatures()))
    # Then, so that neither the de-duplication of events nor any listener ever sees a refused
    # request.
    policy = AccessPolicy(parse_ids(settings.allowed_users), parse_ids(settings.allowed_channels))
    app.use(access_middleware(policy, dependencies.workers))
    app.use(once_per_event(AnsweredOnce()))
    register_listeners(app, dependencies)
    app.error(_unreadable_request)
    return app


_unreadable = QuietLog()


def _unreadable_request(error: Exception) -> BoltResponse:
    """A listener that raises could not read its request (a button value that is not ours,
    a payload missing a field): 400, one log line a minute, no traceback. The answers
    themselves run on the workers, whose failures become a sentence for the user."""
    _unreadable.warning("unreadable payload", f"{type(error).__name__}: {error}"[:200])
    return BoltResponse(status=400, body="unreadable request")


def _secret(value: SecretStr | None) -> str | None:
    """A secret's text; None when unset or blank (an empty variable is a mistake, not a key)."""
    if value is None or not value.get_secret_value().strip():
        return None
    return value.get_secret_value()


def _quiet_token_unused(record: logging.LogRecord) -> bool:
    """Bolt warns that SLACK_BOT_TOKEN is unused when it is set and a client is given: it is
    used, by that client."""
    return record.getMessage() != warning_client_prioritized_and_token_skipped()


def build_previews(settings: Settings, client: WebClient) -> PreviewSource:
    if settings.library is None:
        return NoPreviews()
    library = open_library(settings.library, settings.s3_endpoint_url)
    if settings.public_base_url:
        return SignedUrlPreviews(settings.public_base_url, preview_signer(settings), library)
    return UploadedPreviews(client, library, settings.max_file_bytes, PrivateShelves(client))


def preview_signer(settings: Settings) -> PreviewSigner:
    if settings.preview_secret is None:
        raise ConfigError(
            "FINDIMAGE_PUBLIC_BASE_URL is set but FINDIMAGE_PREVIEW_SECRET is not: "
            "set it to a long random string."
        )
    return PreviewSigner(settings.preview_secret.get_secret_value(), settings.preview_ttl_seconds)


def build_wsgi_app(
    settings: Settings,
    service: SearchService,
    app: App | None,
    page: Callable | None = None,
    readiness: Readiness | None = None,
) -> Callable:
    """One WSGI app for `/slack/events` (when `app` is given), the signed `/images/<id>`,
    `/healthz` (when `readiness` is given: 200 once the models are loaded, 503 before), and
    every other path to `page` when given (404 without it)."""
    previews = None
    if settings.public_base_url and settings.library is not None:

        def lookup_path(doc_id: str) -> str | None:
            found = service.document(doc_id)
            return found.path if found else None

        previews = PreviewEndpoint(
            lookup_path,
            open_library(settings.library, settings.s3_endpoint_url),
            preview_signer(settings),
            settings.max_file_bytes,
            cache_seconds=settings.preview_ttl_seconds,
        )
    events_handler = None
    if app is not None:
        # Checked cheaply first: size and signature before Bolt parses anything.
        signing_secret = _secret(settings.slack_signing_secret)
        assert signing_secret is not None, "create_app refuses to build an app without it"
        events_handler = signed_only(SlackRequestHandler(app, path=EVENTS_PATH), signing_secret)

    def route(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if events_handler and path == EVENTS_PATH:
            return events_handler(environ, start_response)
        if previews and path.startswith(PREVIEW_PATH_PREFIX):
            return previews(environ, start_response)
        if readiness is not None and path == HEALTH_PATH:
            return readiness(environ, start_response)
        if page is not None:
            return page(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found\n"]

    return route


def make_http_server(
    wsgi_app: Callable, host: str, port: int, settings: Settings, max_body: int = MAX_BODY_BYTES
) -> SlackHttpServer:
    try:
        return SlackHttpServer(
            wsgi_app, host, port, settings.http_threads, settings.http_backlog, max_body
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"Port {port} is in use by another program: set FINDIMAGE_PORT to a free port."
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"Port {port} needs privileges this user lacks: set FINDIMAGE_PORT to one "
                "above 1023."
            ) from None
        raise


def warm_up(service: SearchService, readiness: Readiness | None = None) -> threading.Thread:
    """Load both models in the background, so the first answers need not wait for them;
    requests arriving meanwhile are acked at once and answered when the models are ready.
    `readiness` is told how it went."""

    def load() -> None:
        try:
            service.load_models()
            log.info("models loaded")
        except Exception as exc:
            log.warning("loading the models at start failed (answers will say why): %s", exc)
            if readiness is not None:
                readiness.failed()
            return
        if readiness is not None:
            readiness.loaded()

    thread = threading.Thread(target=load, name="warm-up", daemon=True)
    thread.start()
    return thread


def serve(
    settings: Settings,
    service: SearchService,
    host: str = "0.0.0.0",
    page: Callable | None = None,
) -> None:
    """Run until SIGTERM or Ctrl-C: Socket Mode with SLACK_APP_TOKEN, HTTP mode otherwise.

    `page`: a WSGI app answering every path the bot does not (the team's search page, made
    by the composition root behind its own sign-in), served by the same HTTP server.

    On a stop, no new request is taken and the answers already under way are finished
    (for up to FINDIMAGE_SHUTDOWN_GRACE_SECONDS) before returning.
    """
    workers = build_workers(settings)
    outbox = build_outbox(settings)
    app = create_app(settings, service, workers=workers, outbox=outbox)
    app_token = _secret(settings.slack_app_token)
    if settings.slack_app_token is not None and app_token is None:
        raise ConfigError("SLACK_APP_TOKEN is empty: copy the app-level token from the Slack app.")
    # The port is taken before anything starts, so a busy one is the only line printed.
    server: SlackHttpServer | None = None
    # The page takes photos as large as the indexer reads; the bot's own requests stay
    # bounded by signed_only's limit whatever the server's is.
    max_body = max(MAX_BODY_BYTES, settings.max_file_bytes + 64 * 1024) if page else MAX_BODY_BYTES
    readiness = Readiness()
    if app_token is None:
        server = make_http_server(
            build_wsgi_app(settings, service, app, page, readiness),
            host,
            settings.port,
            settings,
            max_body,
        )
    elif settings.public_base_url or page is not None:
        # Socket Mode needs no public URL for Slack, but signed previews and the page do.
        server = make_http_server(
            build_wsgi_app(settings, service, None, page, readiness),
            host,
            settings.port,
            settings,
            max_body,
        )
    stopping = threading.Event()
    previous_handlers = _on_stop_signals(stopping)
    socket_mode = None
    warming: threading.Thread | None = None
    try:
        # The server runs in its own thread and the main thread only waits: a stop signal
        # then sets an event instead of raising inside waitress's socket work, which catches
        # and logs exceptions there (a stop raised mid-write was swallowed).
        if server is not None:
            server.start()
        if app_token is not None:
            # Connected first: a refused token or socket is the one line printed.
            socket_mode = socket_mode_connect(app, app_token)
            warming = warm_up(service, readiness)
            _say(
                f"connected to Slack in Socket Mode; {previews_from(settings)}; "
                f"{page_at(settings, page)}Ctrl-C stops."
            )
        else:
            assert server is not None
            warming = warm_up(service, readiness)
            _say(
                f"listening for Slack on http://{host}:{server.port}{EVENTS_PATH}; "
                f"{previews_from(settings)}; {page_at(settings, page)}Ctrl-C stops."
            )
        stopping.wait()
    except KeyboardInterrupt:
        pass  # serve() run from a thread other than the main one has no handlers of its own
    finally:
        if socket_mode is not None:
            socket_mode.close()
        if server is not None:
            server.stop()
        grace_ends = time.monotonic() + settings.shutdown_grace_seconds
        finished = workers.shutdown(timeout=settings.shutdown_grace_seconds)
        # Answers waiting for Slack to come back get what is left of the grace.
        finished = outbox.shutdown(max(0.0, grace_ends - time.monotonic())) and finished
        # A model still loading (or exporting) is native work that must not be torn down
        # mid-call by the interpreter's exit: that aborts the process. It gets the same grace.
        if warming is not None:
            warming.join(timeout=settings.shutdown_grace_seconds)
        log.info("stopped; %s", "all answers sent" if finished else "some answers were dropped")
        # The process's own handlers again: a stop signal after serve() returns (a command
        # that runs on, a test in the same process) is no longer the bot's.
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    _say("stopped." if finished else "stopped before every answer was sent (see the log).")


def page_at(settings: Settings, page: Callable | None) -> str:
    """Where the team's search page is, for the start-up line ("" when it is not served)."""
    if page is None:
        return ""
    return f"the search page at {(settings.public_base_url or '').rstrip('/')}/; "


def previews_from(settings: Settings) -> str:
    """Where the pictures the answers show come from, for the start-up line."""
    if settings.library is None:
        return "no previews (no library is set and the index records none)"
    return f"previews from {printable(str(settings.library))}"


def _on_stop_signals(stopping: threading.Event) -> dict[int, Any]:
    """SIGTERM (docker stop, systemd) and SIGINT stop the bot the same graceful way; the
    handlers they had before, to put back when the bot stops."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    return {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}


def _say(line: str) -> None:
    print(f"findimage: {line}", file=sys.stderr, flush=True)
