"""The App Home tab: what the index holds and how to use the bot."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.replies import publish_safely

if TYPE_CHECKING:
    from bot.dependencies import SlackDependencies

log = logging.getLogger(__name__)


def register(app: App, dependencies: SlackDependencies) -> None:
    @app.event("app_home_opened")
    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") != "home":
            return
        user_id = event["user"]

        def publish() -> None:
            publish_safely(client, user_id, dependencies.answers.home())

        # Busy: the tab keeps its previous content, and the next opening tries again.
        dependencies.workers.submit(publish, "home tab")
