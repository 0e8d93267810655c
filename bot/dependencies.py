"""What the Slack listeners are given: built by the app, passed to `register_listeners`."""

from __future__ import annotations

from dataclasses import dataclass

from bot.answers import Answers
from bot.files import SlackFiles
from bot.workers import AnswerWorkers


@dataclass(frozen=True)
class SlackDependencies:
    """The answers, the file downloads, the bot's own workers and the page size."""

    answers: Answers
    files: SlackFiles
    workers: AnswerWorkers
    top_k: int
