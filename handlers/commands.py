"""The `/findimage` slash command: usage, or a search answered through the response URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, Respond

from bot.answers import safely
from bot.blocks import COMMAND, MAX_QUERY_CHARS, MAX_RESULTS_PER_MESSAGE, Page, usage_message

if TYPE_CHECKING:
    from bot.slack_app import BotOptions

_OPTION = re.compile(r"(?:^|\s)(k|in):(\S*)", re.IGNORECASE)
_HELP_WORDS = {"", "help", "?", "-h", "--help"}


@dataclass(frozen=True)
class CommandText:
    """The words to search for and the options written among them."""

    text: str
    k: int | None = None
    folder: str | None = None
    problem: str | None = None


def parse_command_text(raw: str) -> CommandText:
    """`k:10 in:marketing/2024 snowy mountain` -> text, k and folder, in any order."""
    k: int | None = None
    folder: str | None = None
    problem: str | None = None
    for name, value in _OPTION.findall(raw):
        if name.lower() == "k":
            if value.isdigit() and 1 <= int(value) <= MAX_RESULTS_PER_MESSAGE:
                k = int(value)
            else:
                problem = f"k: takes a number from 1 to {MAX_RESULTS_PER_MESSAGE}, like k:10."
        elif value.strip("/"):
            folder = value.strip("/")[:MAX_QUERY_CHARS]
        else:
            problem = "in: takes a folder of the library, like in:marketing/2024."
    text = " ".join(_OPTION.sub(" ", raw).split())[:MAX_QUERY_CHARS]
    return CommandText(text=text, k=k, folder=folder, problem=problem)


def register(app: App, options: BotOptions) -> None:
    @app.command(COMMAND)
    def find_images(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        parsed = parse_command_text(command.get("text", ""))
        if parsed.problem:
            ack(response_type="ephemeral", text=parsed.problem)
            return
        if parsed.text.lower() in _HELP_WORDS:
            ack(response_type="ephemeral", **usage_message())
            return
        ack()
        page = Page(k=parsed.k or options.top_k, text=parsed.text, folder=parsed.folder)
        message = safely(
            lambda: options.answers.for_page(page, command["channel_id"]), "slash command search"
        )
        respond(response_type="ephemeral", replace_original=False, **message)
