"""The team page of `findimage serve` in a real browser, signing in with Slack through the
Slack stand-in: sent to sign in, signed in and searching, signed out and sent again, and who is
refused. Marked slow: a browser and a serve process."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import WAIT_SECONDS, cards, search, thumbnails_painted
from tests.support.pictures import draw_shape, encode
from tests.support.serve_process import ServeProcess
from tests.support.slack_api import TEAM_ID, FakeSlack, SlackApiServer
from tests.support.slack_oidc import USER_ID, USER_NAME, SlackPerson
from tests.support.team_page import team_page
from web.signin import NOT_ALLOWED, WRONG_TEAM

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with SlackApiServer() as fake:
        yield fake


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, tiny_clip: Path, model_cache: Path, slack: FakeSlack
) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("team-browser")
    with team_page(tmp, tiny_clip, model_cache, slack, FINDIMAGE_ALLOWED_USERS=USER_ID) as process:
        yield process


@pytest.fixture
def url(served: ServeProcess, slack: FakeSlack, browser: WebDriver) -> str:
    """The page's address, with a browser that holds no session yet."""
    slack.oidc.signing_in = None
    browser.delete_all_cookies()
    return served.url


def _sent_to_slack(slack: FakeSlack) -> int:
    return len(slack.calls("authorize"))


def _on_the_page(browser: WebDriver, url: str) -> None:
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.current_url.startswith(url + "/") and b.find_elements(By.ID, "q")
    )


def test_opening_the_page_signs_in_with_slack_then_a_search_shows_the_grid(
    browser: WebDriver, url: str, slack: FakeSlack
) -> None:
    before = _sent_to_slack(slack)
    browser.get(url + "/")
    _on_the_page(browser, url)
    assert _sent_to_slack(slack) == before + 1
    assert browser.find_element(By.CSS_SELECTOR, "#signout .who").text == USER_NAME
    search(browser, url, "a red circle")
    ids = cards(browser, 50)
    thumbnails_painted(browser, 8)
    assert len(set(ids)) == 50


def test_a_photo_sent_from_the_signed_in_page_carries_its_token(
    browser: WebDriver, url: str
) -> None:
    browser.get(url + "/")
    _on_the_page(browser, url)
    photo = base64.b64encode(encode(draw_shape("red", "circle"), "PNG")).decode()
    browser.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const file = new File([bytes], "mine.png", {type: "image/png"});
        const data = new DataTransfer();
        data.items.add(file);
        document.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        """,
        photo,
    )
    cards(browser, 50)
    assert browser.find_element(By.ID, "heading").text == "Pictures like your photo"


def test_signing_out_ends_the_session_and_the_page_asks_to_sign_in_again(
    browser: WebDriver, url: str, slack: FakeSlack
) -> None:
    browser.get(url + "/")
    _on_the_page(browser, url)
    browser.find_element(By.CSS_SELECTOR, "#signout button").click()
    WebDriverWait(browser, WAIT_SECONDS).until(lambda b: b.current_url == url + "/signedout")
    assert browser.find_element(By.ID, "sentence").text == "You signed out."
    before = _sent_to_slack(slack)
    browser.get(url + "/")
    _on_the_page(browser, url)
    assert _sent_to_slack(slack) == before + 1


@pytest.mark.parametrize(
    ("person", "sentence"),
    [
        (SlackPerson("U0NOTLISTED", TEAM_ID), NOT_ALLOWED),
        (SlackPerson(USER_ID, "T0THER"), WRONG_TEAM),
    ],
)
def test_who_may_not_come_in_sees_one_sentence_and_no_library(
    browser: WebDriver, url: str, slack: FakeSlack, person: SlackPerson, sentence: str
) -> None:
    slack.oidc.signing_in = person
    browser.get(url + "/")
    shown = WebDriverWait(browser, WAIT_SECONDS).until(lambda b: b.find_elements(By.ID, "sentence"))
    assert [element.text for element in shown] == [sentence]
    assert not browser.find_elements(By.ID, "q")
    assert not browser.find_elements(By.CSS_SELECTOR, "#grid img")
