"""The App Home tab: what the index holds and how to use the bot."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.blocks import home_view
from bot.errors import FindImageError
from bot.search import SearchService

log = logging.getLogger(__name__)


def register(app: App, service: SearchService) -> None:
    @app.event("app_home_opened")
    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") != "home":
            return
        try:
            view = home_view(service.status(), problem=service.text_model_problem())
        except FindImageError as exc:
            log.warning("index status for the Home tab: %s", exc)
            view = home_view(None, problem=str(exc))
        client.views_publish(user_id=event["user"], view=view)
