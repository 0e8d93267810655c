"""The App Home tab: index status and usage, published with views.publish."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.block_kit import check_home
from tests.support.slack_answers import home_opened
from tests.support.slack_api import FakeSlack
from tests.support.slack_bot import LIBRARY_SIZE, Bot, IndexedLibrary
from tests.support.slack_requests import USER_ID


def test_opening_the_home_tab_publishes_status_and_usage(
    bot: Bot, slack_library: IndexedLibrary, fake_slack: FakeSlack
) -> None:
    assert bot.sender.event(home_opened()).status_code == 200

    [published] = fake_slack.wait_for("views.publish")
    assert published.params["user_id"] == USER_ID
    view = published.params["view"]
    check_home(view)
    text = json.dumps(view)
    assert f"*Pictures*\\n{LIBRARY_SIZE}" in text
    assert "*Backend*\\nembedded" in text
    model_folder = Path(slack_library.image_encoder.model_name)
    assert f"*Image model*\\n{model_folder.name}" in text
    assert str(model_folder.parent) not in text, "the server's own paths are no one's business"
    assert "/findimage snowy mountain" in text
