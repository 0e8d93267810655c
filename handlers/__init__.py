"""The Slack surfaces, one module each: thin listeners that parse, ack, hand off and render."""

from __future__ import annotations

from slack_bolt import App

from bot.dependencies import SlackDependencies
from handlers import actions, commands, events, home


def register_listeners(app: App, dependencies: SlackDependencies) -> None:
    """Every listener of the bot, as in Bolt's starter template (`listeners/__init__.py`)."""
    commands.register(app, dependencies)
    actions.register(app, dependencies)
    events.register(app, dependencies)
    home.register(app, dependencies)
