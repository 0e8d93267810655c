"""manifest.yml asks for exactly the scopes and events the bot's code uses."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.app import EVENT_SCOPES, WEB_API_SCOPES, required_scopes
from bot.blocks import COMMAND
from web.signin import CALLBACK_PATH, SCOPES

MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"


def load_manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def test_the_manifest_asks_for_every_scope_the_code_uses_and_no_other() -> None:
    scopes = load_manifest()["oauth_config"]["scopes"]["bot"]

    assert len(scopes) == len(set(scopes))
    assert set(scopes) == required_scopes()
    for method in ("chat.postMessage", "files.completeUploadExternal", "files.info"):
        assert set(WEB_API_SCOPES[method]) <= set(scopes)


def test_the_manifest_subscribes_to_exactly_the_events_the_bot_listens_to() -> None:
    events = load_manifest()["settings"]["event_subscriptions"]["bot_events"]

    assert sorted(events) == sorted(EVENT_SCOPES)


def test_the_manifest_declares_the_command_home_tab_interactivity_and_socket_mode() -> None:
    manifest = load_manifest()
    features, settings = manifest["features"], manifest["settings"]

    assert manifest["display_information"]["name"] == "findimage"
    assert features["bot_user"]["display_name"] == "findimage"
    [command] = features["slash_commands"]
    assert command["command"] == COMMAND
    assert command["usage_hint"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is False
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True


def test_the_manifest_asks_for_sign_in_with_slacks_scopes_and_the_pages_redirect_url() -> None:
    oauth = load_manifest()["oauth_config"]

    assert oauth["scopes"]["user"] == SCOPES.split() == ["openid", "profile"]
    [redirect] = oauth["redirect_urls"]
    assert redirect.startswith("https://") and redirect.endswith(CALLBACK_PATH)
