"""Driving the search page in chromium: a query typed, the grid's cards, its thumbnails."""

from __future__ import annotations

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

# A busy machine slows the page; these are ceilings for a broken run, not expectations.
WAIT_SECONDS = 120


def waiting(browser: WebDriver) -> WebDriverWait:
    """A wait whose condition is asked again when the page replaced an element between the
    condition finding it and reading it (the results replace the heading and the grid whole);
    Selenium's documented way for pages that re-render."""
    return WebDriverWait(
        browser, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,)
    )


def search(browser: WebDriver, url: str, text: str) -> None:
    browser.get(url + "/")
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys(text, Keys.ENTER)


def cards(browser: WebDriver, count: int) -> list[str]:
    """The ids of the grid's results once there are `count` of them, read in one script so
    that a grid the page replaces meanwhile cannot leave the test holding removed elements."""
    ids: list[str] = waiting(browser).until(
        lambda b: b.execute_script(
            "const ids = [...document.querySelectorAll('#grid button.open')]"
            ".map(b => b.dataset.id);"
            "return ids.length === arguments[0] ? ids : null",
            count,
        )
    )
    return ids


def thumbnails_painted(browser: WebDriver, first: int) -> None:
    waiting(browser).until(
        lambda b: b.execute_script(
            "return [...document.querySelectorAll('#grid img')].slice(0, arguments[0])"
            ".every(i => i.complete && i.naturalWidth > 0)",
            first,
        )
    )
