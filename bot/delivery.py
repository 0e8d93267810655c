"""The outbox: every answer owed to a person goes out through here, and keeps trying.

An answer (a response_url post, chat.postMessage, chat.postEphemeral, views.publish) is
tried at once on the thread that built it. When Slack cannot be reached, answers 5xx, or
rate-limits the call (429, honouring its Retry-After), the answer is handed to the outbox's
own scheduler and tried again with back-off until the answer's own deadline: 30 minutes for
a response_url (Slack keeps one valid that long), FINDIMAGE_SLACK_ANSWER_DEADLINE_SECONDS for
the rest. The workers that answer new requests never wait for a retry. A message Slack
refuses as it is falls back a step (without its pictures) instead of failing. What could not
be delivered by its deadline is logged once, with the id of the request it answers.
"""

from __future__ import annotations

import contextvars
import heapq
import http.client
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.answers import failure_message
from bot.blocks import Message, sentence_message, without_images

log = logging.getLogger(__name__)

# https://api.slack.com/interactivity/handling#message_responses: "You can use response_url
# up to five times within 30 minutes" of the interaction.
RESPONSE_URL_SECONDS = 30 * 60
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# Web API errors that say "later" rather than "no" (https://docs.slack.dev/reference/
# methods, common errors: ratelimited, fatal_error, internal_error, service_unavailable,
# request_timeout).
TRANSIENT_ERRORS = {
    "ratelimited",
    "fatal_error",
    "internal_error",
    "service_unavailable",
    "request_timeout",
}
# Conversations the bot cannot post into: no retry helps, the person is told in a DM.
NOT_THERE = {"not_in_channel", "channel_not_found", "is_archived"}

# The request being answered, set by `request_identity` for the request's thread and carried
# to the answering worker (bot.workers copies the context): logs name it, deadlines start
# from when it arrived.
REQUEST_ID: ContextVar[str] = ContextVar("findimage_request_id", default="-")
RECEIVED_AT: ContextVar[float | None] = ContextVar("findimage_received_at", default=None)


def not_in_channel_sentence(channel_id: str) -> str:
    return (
        f"I couldn't answer you in <#{channel_id}> because I'm not a member of it: invite me "
        "with `/invite @findimage`, or send me the photo here. My answer is below."
    )


# slack_sdk logs each connection failure at ERROR before raising it; the outbox logs its own
# line for the same failure (a retry at INFO, an answer given up at ERROR), once.
SDK_CONNECTION_LOGGERS = ("slack_sdk.web.base_client", "slack_sdk.webhook.client")
SDK_CONNECTION_FAILURE = "Failed to send a request to Slack API server"


def quiet_sdk_connection_errors() -> None:
    for name in SDK_CONNECTION_LOGGERS:
        logger = logging.getLogger(name)
        if _drop_sdk_connection_failure not in logger.filters:
            logger.addFilter(_drop_sdk_connection_failure)


def _drop_sdk_connection_failure(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(SDK_CONNECTION_FAILURE)


class Later(Exception):
    """Slack could not take it now: try again after `after` seconds (None: back off)."""

    def __init__(self, reason: str, after: float | None = None):
        super().__init__(reason)
        self.after = after


class Refused(Exception):
    """Slack refused it for good (an expired response_url, a conversation the bot is not in)."""


def retry_after(exc: BaseException) -> float | bool:
    """Seconds to wait before trying again after `exc`; True: after the outbox's own back-off;
    False: trying again is useless."""
    if isinstance(exc, Later):
        return exc.after if exc.after is not None else True
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 200)
        if status == 429:
            return _header_seconds(getattr(response, "headers", {}) or {})
        error = response.get("error") if hasattr(response, "get") else None
        return status >= 500 or error in TRANSIENT_ERRORS
    # Connection refused or reset, DNS, timeouts (urllib's URLError and every requests
    # exception are OSErrors), and a connection dropped mid-answer.
    return isinstance(exc, OSError | http.client.HTTPException)


def _header_seconds(headers: dict[str, Any]) -> float | bool:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return True
    return True


REQUEST_USER: ContextVar[str | None] = ContextVar("findimage_request_user", default=None)
OUTBOX: ContextVar[Outbox | None] = ContextVar("findimage_outbox", default=None)


def outbox_middleware(outbox: Outbox) -> Callable[..., None]:
    """Bolt middleware, first of all: name the request for the logs, start its answer's clock,
    and hand its answers (bot.replies) the app's outbox."""

    def middleware(body: dict[str, Any], context: BoltContext, next: Callable[[], None]) -> None:
        REQUEST_ID.set(
            str(body.get("event_id") or body.get("trigger_id") or f"req-{next_serial()}")
        )
        RECEIVED_AT.set(time.monotonic())
        REQUEST_USER.set(context.user_id)
        OUTBOX.set(outbox)
        next()

    return middleware


def current_outbox() -> Outbox:
    """The outbox of the app whose request is being answered."""
    outbox = OUTBOX.get()
    if outbox is None:
        raise RuntimeError("an answer was sent outside a Slack request (no outbox in context)")
    return outbox


_serials = itertools.count(1)


def next_serial() -> int:
    return next(_serials)


@dataclass(order=True)
class _Delivery:
    due: float
    serial: int
    send: Callable[[], object] = field(compare=False)
    what: str = field(compare=False)
    request_id: str = field(compare=False)
    deadline: float = field(compare=False)
    # The context it was sent from (its request's id, its outbox), for its retries.
    context: contextvars.Context = field(default_factory=contextvars.copy_context, compare=False)
    tries: int = field(default=1, compare=False)


class Outbox:
    """Answers that Slack could not take yet, tried again until their deadlines."""

    def __init__(
        self,
        deadline_seconds: float,
        retry_threads: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._deadline_seconds = deadline_seconds
        self._clock = clock
        self._waiting: list[_Delivery] = []
        self._running = 0
        self._closed = False
        self._condition = threading.Condition()
        self._pool = ThreadPoolExecutor(retry_threads, thread_name_prefix="outbox")
        self._scheduler = threading.Thread(target=self._schedule, name="outbox", daemon=True)
        self._scheduler.start()

    # What the listeners call.

    def respond(self, respond: Respond, message: Message, **options: Any) -> None:
        """Post to the response URL; a message Slack refuses goes again without pictures."""
        steps = _steps(message)

        def send() -> None:
            while True:
                sent = respond(**options, **steps[0])
                if sent.status_code == 200:
                    return
                if sent.status_code == 429:
                    raise Later("response_url rate-limited", _header_seconds(sent.headers or {}))
                if sent.status_code >= 500:
                    raise Later(f"response_url gave HTTP {sent.status_code}")
                log.warning(
                    "Slack refused a response_url post: HTTP %s %s", sent.status_code, sent.body
                )
                if len(steps) == 1 or sent.status_code != 400:
                    raise Refused(f"HTTP {sent.status_code} {sent.body}")
                steps.pop(0)

        self.deliver(send, "response_url answer", _received() + RESPONSE_URL_SECONDS)

    def post(self, client: WebClient, user_id: str | None = None, **message: Any) -> None:
        """chat.postMessage; without pictures when Slack refuses them; a DM to `user_id` saying
        why when the bot cannot post in that conversation."""
        user_id = user_id or REQUEST_USER.get()
        self._chat(client, client.chat_postMessage, "chat.postMessage", user_id, message)

    def post_ephemeral(self, client: WebClient, **message: Any) -> None:
        """chat.postEphemeral to `user` in `channel`; a DM saying why when the bot is not there."""
        user_id = message["user"]
        self._chat(client, client.chat_postEphemeral, "chat.postEphemeral", user_id, message)

    def publish(self, client: WebClient, user_id: str, view: dict[str, Any]) -> None:
        self.deliver(
            lambda: client.views_publish(user_id=user_id, view=view),
            "views.publish",
            _received() + self._deadline_seconds,
        )

    def answer_later(
        self, compute: Callable[[], Message], deliver: Callable[[Message], None], what: str
    ) -> None:
        """Build an answer that needs Slack (a photo to download) and hand it to `deliver`;
        while Slack cannot be reached the building itself is tried again, off the workers.
        Any other failure becomes one plain sentence, delivered the same way."""

        def build_and_deliver() -> None:
            try:
                message = compute()
            except Exception as exc:
                if retry_after(exc) is not False:
                    raise
                message = failure_message(exc, what)
            deliver(message)

        self.deliver(build_and_deliver, what, _received() + self._deadline_seconds)

    def deliver(self, send: Callable[[], object], what: str, deadline: float) -> None:
        """Try `send` now; when Slack says "later", again with back-off until `deadline`."""
        delivery = _Delivery(0.0, next_serial(), send, what, REQUEST_ID.get(), deadline)
        self._attempt(delivery)

    # Waiting and stopping.

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing waits for a retry; False after `timeout`."""
        with self._condition:
            return self._condition.wait_for(
                lambda: not self._waiting and not self._running, timeout
            )

    def shutdown(self, timeout: float) -> bool:
        """Give waiting answers until `timeout` to go out; log the rest, once each."""
        finished = self.wait_idle(timeout)
        with self._condition:
            self._closed = True
            left, self._waiting = self._waiting, []
            self._condition.notify_all()
        for delivery in left:
            log.error(
                "stopped before %s for request %s could be delivered (tried %d times)",
                delivery.what,
                delivery.request_id,
                delivery.tries,
            )
        self._pool.shutdown(wait=False, cancel_futures=True)
        return finished and not left

    # The machinery.

    def _chat(
        self,
        client: WebClient,
        method: Callable[..., Any],
        name: str,
        user_id: str | None,
        message: dict[str, Any],
    ) -> None:
        steps = _steps(message)

        def send() -> None:
            while True:
                try:
                    method(**steps[0])
                    return
                except SlackApiError as exc:
                    if retry_after(exc) is not False:
                        raise
                    error = exc.response.get("error")
                    log.warning(
                        "%s to %s refused: %s %s",
                        name,
                        message.get("channel"),
                        error,
                        exc.response.get("errors", ""),
                    )
                    if error in NOT_THERE:
                        if user_id and not str(message.get("channel", "")).startswith("D"):
                            self._tell_in_dm(client, user_id, str(message["channel"]), steps[0])
                        return
                    if len(steps) == 1:
                        raise Refused(str(error)) from None
                    steps.pop(0)

        self.deliver(send, name, _received() + self._deadline_seconds)

    def _tell_in_dm(
        self, client: WebClient, user_id: str, channel_id: str, answer: Message
    ) -> None:
        """The answer in the person's DM with the bot, after a sentence saying why it is there."""
        why = sentence_message(not_in_channel_sentence(channel_id))
        bare = without_images(answer)
        blocks = [*why["blocks"], *bare.get("blocks", [])][:50]
        text = why["text"]

        def send() -> None:
            dm = client.conversations_open(users=user_id)["channel"]["id"]
            client.chat_postMessage(channel=dm, text=text, blocks=blocks)

        deadline = _received() + self._deadline_seconds
        self.deliver(send, "DM about a conversation the bot is not in", deadline)

    def _attempt(self, delivery: _Delivery) -> None:
        try:
            delivery.send()
            return
        except Exception as exc:
            wait = retry_after(exc)
            reason = _reason(exc)
        if wait is False:
            log.error(
                "could not deliver %s for request %s: %s",
                delivery.what,
                delivery.request_id,
                reason,
            )
            return
        pause = _backoff(delivery.tries) if wait is True else float(wait)
        now = self._clock()
        if now + pause > delivery.deadline:
            log.error(
                "gave up on %s for request %s after %d tries: its deadline passed (%s)",
                delivery.what,
                delivery.request_id,
                delivery.tries,
                reason,
            )
            return
        log.info(
            "%s for request %s: Slack said later (%s); try %d in %.1f s",
            delivery.what,
            delivery.request_id,
            reason,
            delivery.tries + 1,
            pause,
        )
        delivery.due = now + pause
        delivery.tries += 1
        with self._condition:
            if self._closed:
                log.error(
                    "stopped before %s for request %s could be delivered",
                    delivery.what,
                    delivery.request_id,
                )
                return
            heapq.heappush(self._waiting, delivery)
            self._condition.notify_all()

    def _schedule(self) -> None:
        while True:
            with self._condition:
                while not self._closed and (
                    not self._waiting or self._waiting[0].due > self._clock()
                ):
                    timeout = self._waiting[0].due - self._clock() if self._waiting else None
                    self._condition.wait(timeout)
                if self._closed:
                    return
                delivery = heapq.heappop(self._waiting)
                self._running += 1
            try:
                self._pool.submit(self._retry, delivery)
            except RuntimeError:  # shut down meanwhile
                self._finished()

    def _retry(self, delivery: _Delivery) -> None:
        try:
            delivery.context.run(self._attempt, delivery)
        finally:
            self._finished()

    def _finished(self) -> None:
        with self._condition:
            self._running -= 1
            self._condition.notify_all()


def _steps(message: Message) -> list[Message]:
    """The message, then the same without pictures when it has some."""
    bare = without_images(message)
    return [message] if bare == message else [message, bare]


def _received() -> float:
    received = RECEIVED_AT.get()
    return received if received is not None else time.monotonic()


def _backoff(tries: int) -> float:
    """1, 2, 4 … 30 s, each with up to a quarter more, so retries of many answers spread."""
    base = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (tries - 1))
    return base * (1 + random.random() / 4)


def _reason(exc: BaseException) -> str:
    """One line for the log: Slack's error, or the connection problem, never a traceback."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        return f"HTTP {getattr(response, 'status_code', '?')} {response.get('error')}"
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
