"""The search page in a real browser: Debian's headless chromium, driven by Selenium, against
`findimage web` run as a user runs it. Marked slow: each starts a browser and a server."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import WAIT_SECONDS, cards, search, thumbnails_painted
from tests.support.pictures import draw_shape, encode, make_library
from tests.support.web_page import WebProcess, index_library, web_environment, web_process

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = os.environ.get("FINDIMAGE_SCREENSHOTS_DIR")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web(
    tmp_path_factory: pytest.TempPathFactory, tiny_clip: Path, model_cache: Path
) -> Iterator[WebProcess]:
    """`findimage web` on 60 pictures, half with file dates in 2020 and half in 2024."""
    tmp = tmp_path_factory.mktemp("web")
    paths = make_library(tmp / "library", 60)
    for index, path in enumerate(paths):
        start = 1577836800 if index % 2 else 1704067200  # 2020-01-01, 2024-01-01 UTC
        os.utime(path, (start + 2_592_000, start + 2_592_000))
    env = web_environment(tmp, tiny_clip, model_cache)
    index_library(tmp / "library", env, tmp)
    with web_process(env, tmp) as served:
        yield served


def _shot(browser: WebDriver, tmp_path: Path, name: str) -> None:
    """Every browser test keeps what it saw; FINDIMAGE_SCREENSHOTS_DIR refreshes docs/."""
    browser.save_screenshot(str(tmp_path / name))
    if SCREENSHOTS:
        shutil.copy(tmp_path / name, Path(SCREENSHOTS) / name)


def test_a_query_shows_a_grid_whose_thumbnails_load(
    browser: WebDriver, web: WebProcess, tmp_path: Path
) -> None:
    search(browser, web.url, "a red circle")
    ids = cards(browser, 50)
    thumbnails_painted(browser, 8)
    assert browser.find_element(By.ID, "heading").text == "Pictures for “a red circle”"
    assert browser.current_url.endswith("/?q=a+red+circle")
    assert len(set(ids)) == 50


def test_scrolling_loads_the_next_page_without_repeats(browser: WebDriver, web: WebProcess) -> None:
    search(browser, web.url, "a red circle")
    cards(browser, 50)
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    ids = cards(browser, 60)
    assert len(set(ids)) == 60


def test_a_next_page_arriving_after_a_new_search_is_not_mixed_into_it(
    browser: WebDriver, web: WebProcess
) -> None:
    """The person scrolls (page 2 is asked for), then searches again before it arrives: the
    late page 2 of the old search must not be appended to the new grid."""
    search(browser, web.url, "a red circle")
    cards(browser, 50)
    # The browser's network is the far edge: every next-page answer is held until released.
    # The page's `show` is counted (not replaced) so the test knows when an answer was handled.
    browser.execute_script(
        """
        const realFetch = window.fetch;
        window.heldPages = [];
        window.fetch = (url, options) => {
          if (!String(url).includes("offset=")) return realFetch(url, options);
          return new Promise(go => window.heldPages.push(() => go(realFetch(url, options))));
        };
        const realShow = window.show;
        window.handled = 0;
        window.show = async (...args) => { await realShow(...args); window.handled += 1; };
        window.scrollTo(0, document.body.scrollHeight);
        """
    )
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.execute_script("return window.heldPages.length") == 1
    )
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys("a blue square", Keys.ENTER)
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.execute_script("return window.handled") == 1
    )
    assert "a blue square" in browser.find_element(By.ID, "heading").text
    new_ids = cards(browser, 50)
    browser.execute_script("window.heldPages[0]()")
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.execute_script("return window.handled") == 2
    )
    assert cards(browser, 50) == new_ids


def test_a_dropped_photo_comes_first_then_pictures_like_it(
    browser: WebDriver, web: WebProcess
) -> None:
    browser.get(web.url + "/")
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
    first = browser.find_element(By.CSS_SELECTOR, "#grid li:first-child")
    assert "own" in (first.get_attribute("class") or "")
    assert first.find_element(By.TAG_NAME, "img").get_attribute("alt") == "Your photo"
    assert browser.find_element(By.ID, "heading").text == "Pictures like your photo"


def test_a_photo_chosen_with_the_file_picker_is_searched(
    browser: WebDriver, web: WebProcess, tmp_path: Path
) -> None:
    chosen = tmp_path / "chosen.png"
    chosen.write_bytes(encode(draw_shape("blue", "square"), "PNG"))
    browser.get(web.url + "/")
    browser.find_element(By.ID, "photo").send_keys(str(chosen))
    cards(browser, 50)
    assert browser.find_element(By.ID, "heading").text == "Pictures like your photo"


def test_a_bad_photo_is_one_sentence_on_the_page(
    browser: WebDriver, web: WebProcess, tmp_path: Path
) -> None:
    chosen = tmp_path / "broken.png"
    chosen.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    browser.get(web.url + "/")
    browser.find_element(By.ID, "photo").send_keys(str(chosen))
    alert = WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "[role=alert]")
    )
    assert alert[0].text.startswith("That picture cannot be used")


def test_a_picture_opened_large_leads_to_more_like_it(
    browser: WebDriver, web: WebProcess, tmp_path: Path
) -> None:
    search(browser, web.url, "a red circle")
    first = cards(browser, 50)[0]
    browser.find_element(By.CSS_SELECTOR, f"#grid button.open[data-id='{first}']").click()
    dialog = WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: (
            b.find_element(By.ID, "viewer")
            if b.find_elements(By.CSS_SELECTOR, "#viewer[open] .like")
            else None
        )
    )
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: b.execute_script(
            "const i = document.querySelector('#viewer img');"
            "return i.complete && i.naturalWidth > 0"
        )
    )
    assert dialog.find_element(By.CSS_SELECTOR, ".path").text
    dialog.find_element(By.CSS_SELECTOR, "a.like").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: "like:" in b.find_element(By.ID, "heading").text
    )
    assert first not in cards(browser, 50)


def test_the_date_filter_keeps_the_pictures_of_those_dates(
    browser: WebDriver, web: WebProcess
) -> None:
    browser.get(web.url + "/")
    browser.find_element(By.CSS_SELECTOR, "#filters summary").click()
    browser.find_element(By.NAME, "after").send_keys("2024")
    box = browser.find_element(By.ID, "q")
    box.send_keys("a red circle", Keys.ENTER)
    cards(browser, 30)
    assert "after 2024-01-01" in browser.find_element(By.ID, "heading").text


def test_the_grid_folds_to_two_columns_at_a_phones_width(
    browser: WebDriver, web: WebProcess
) -> None:
    browser.set_window_size(390, 844)
    try:
        search(browser, web.url, "a red circle")
        cards(browser, 50)
        columns = browser.execute_script(
            "return getComputedStyle(document.getElementById('grid'))"
            ".gridTemplateColumns.split(' ').length"
        )
        assert columns == 2
    finally:
        browser.set_window_size(1280, 900)


def test_the_readmes_samples_answer_a_red_circle_with_the_red_circle(
    browser: WebDriver, tmp_path: Path, trained_clip: Path, model_cache: Path
) -> None:
    env = web_environment(tmp_path, trained_clip, model_cache)
    index_library(ROOT / "samples", env, tmp_path)
    with web_process(env, tmp_path) as served:
        search(browser, served.url, "a red circle")
        cards(browser, 6)
        thumbnails_painted(browser, 6)
        first = browser.find_element(By.CSS_SELECTOR, "#grid img")
        assert (first.get_attribute("alt") or "").startswith("red-circle.png")
        _shot(browser, tmp_path, "web-grid.png")
        first.click()
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda b: b.execute_script(
                "const i = document.querySelector('#viewer[open] img');"
                "return i !== null && i.complete && i.naturalWidth > 0"
            )
        )
        _shot(browser, tmp_path, "web-picture.png")
