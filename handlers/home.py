"""The App Home tab: what the index holds and how to use the bot."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.replies import publish_safely

if TYPE_CHECKING:
    from bot.dependencies import SlackDependencies

log = logging.getLogger(__name__)


class HomeTab:
    """The Home tab's listener, with what it needs to publish the tab."""

    def __init__(self, dependencies: SlackDependencies):
        self._answers = dependencies.answers
        self._workers = dependencies.workers

    def publish_home(self, event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") != "home":
            return
        # Busy: the tab keeps its previous content, and the next opening tries again.
        self._workers.submit(partial(self._publish, event["user"], client), "home tab")

    def _publish(self, user_id: str, client: WebClient) -> None:
        publish_safely(client, user_id, self._answers.home())


def register(app: App, dependencies: SlackDependencies) -> None:
    app.event("app_home_opened")(HomeTab(dependencies).publish_home)
