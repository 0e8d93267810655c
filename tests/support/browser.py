"""Driving the search page in chromium: a query typed, the grid's cards, its thumbnails."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

# A busy machine slows the page; these are ceilings for a broken run, not expectations.
WAIT_SECONDS = 120


def search(browser: WebDriver, url: str, text: str) -> None:
    browser.get(url + "/")
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys(text, Keys.ENTER)


def cards(browser: WebDriver, count: int) -> list[str]:
    """The ids of the grid's results once there are `count` of them, read in one script so
    that a grid the page replaces meanwhile cannot leave the test holding removed elements."""
    ids: list[str] = WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.execute_script(
            "const ids = [...document.querySelectorAll('#grid button.open')]"
            ".map(b => b.dataset.id);"
            "return ids.length === arguments[0] ? ids : null",
            count,
        )
    )
    return ids


def thumbnails_painted(browser: WebDriver, first: int) -> None:
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.execute_script(
            "return [...document.querySelectorAll('#grid img')].slice(0, arguments[0])"
            ".every(i => i.complete && i.naturalWidth > 0)",
            first,
        )
    )
