"""The `/findimage` slash command: usage, or a search answered through the response URL."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot.answers import safely
from bot.blocks import (
    COMMAND,
    MAX_QUERY_CHARS,
    MAX_RESULTS_PER_MESSAGE,
    sentence_message,
    usage_message,
)
from bot.payloads import Page
from bot.replies import respond_safely
from bot.workers import BUSY
from findimage.errors import ConfigError
from findimage.filters import Filters, Place, checked, parse_date, parse_place
from findimage.search import library_folder

if TYPE_CHECKING:
    from bot.dependencies import SlackDependencies

# A value runs to the next space, or is quoted ("…", '…' or the curly quotes Slack's
# composer may put in) so that folder names can hold spaces.
_OPEN, _CLOSE = "\"'\u201c\u2018", "\"'\u201d\u2019"
_QUOTED = "|".join(f"{a}[^{b}]*{b}" for a, b in zip(_OPEN, _CLOSE, strict=True))
_OPTION = re.compile(rf"(?:^|\s)(k|in|after|before|near):({_QUOTED}|\S*)", re.IGNORECASE)
_QUOTES = _OPEN + _CLOSE
_HELP_WORDS = {"", "help", "?", "-h", "--help"}


@dataclass(frozen=True)
class CommandText:
    """The words to search for and the options written among them."""

    text: str
    k: int | None = None
    folder: str | None = None
    filters: Filters = field(default_factory=Filters)
    problem: str | None = None


def parse_command_text(raw: str) -> CommandText:
    """`k:10 in:marketing/2024 after:2024-06 snowy mountain` -> text, k, folder and filters,
    in any order."""
    k: int | None = None
    folder: str | None = None
    dates: dict[str, datetime] = {}
    near: Place | None = None
    problem: str | None = None
    for name, value in _OPTION.findall(raw):
        option = name.lower()
        if option in ("after", "before"):
            try:
                dates[option] = parse_date(value.strip(_QUOTES), f"{option}:")
            except ConfigError as exc:
                problem = str(exc)
        elif option == "near":
            try:
                near = parse_place(value.strip(_QUOTES))
            except ConfigError as exc:
                problem = str(exc)
        elif option == "k":
            if value.isdigit() and 1 <= int(value) <= MAX_RESULTS_PER_MESSAGE:
                k = int(value)
            else:
                problem = f"k: takes a number from 1 to {MAX_RESULTS_PER_MESSAGE}, like k:10."
        elif written := value.strip(_QUOTES).strip().strip("/"):
            try:
                folder = library_folder(written[:MAX_QUERY_CHARS]) or None
            except ConfigError as exc:
                problem = str(exc)
        else:
            problem = "in: takes a folder of the library, like in:marketing/2024."
    text = " ".join(_OPTION.sub(" ", raw).split())[:MAX_QUERY_CHARS]
    filters = Filters(after=dates.get("after"), before=dates.get("before"), near=near)
    if problem is None:
        try:
            filters = checked(filters)
        except ConfigError as exc:
            problem = str(exc)
    return CommandText(text=text, k=k, folder=folder, filters=filters, problem=problem)


class SlashCommand:
    """`/findimage`, with what it needs to answer."""

    def __init__(self, dependencies: SlackDependencies):
        self._dependencies = dependencies

    def find_images(self, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        """Acks in the request thread; the search runs on the bot's own workers."""
        parsed = parse_command_text(command.get("text", ""))
        if parsed.problem:
            ack(response_type="ephemeral", text=parsed.problem)
            return
        if parsed.text.lower() in _HELP_WORDS:
            ack(response_type="ephemeral", **usage_message())
            return
        page = Page(
            k=parsed.k or self._dependencies.top_k,
            text=parsed.text,
            folder=parsed.folder,
            filters=parsed.filters,
        )
        answer = partial(self._answer, page, command["user_id"], respond)
        if self._dependencies.workers.submit(answer, "slash command search"):
            ack()
        else:
            ack(response_type="ephemeral", **sentence_message(BUSY))

    def _answer(self, page: Page, user_id: str, respond: Respond) -> None:
        message = safely(
            lambda: self._dependencies.answers.for_page(page, user_id), "slash command search"
        )
        respond_safely(respond, message, response_type="ephemeral", replace_original=False)


def register(app: App, dependencies: SlackDependencies) -> None:
    app.command(COMMAND)(SlashCommand(dependencies).find_images)
