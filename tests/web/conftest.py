"""An indexed library of 60 pictures and the search page on it, shared by a module's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from findimage.cli import main
from findimage.settings import load_settings
from tests.support.pictures import make_library
from tests.support.web_page import served_page

PICTURES = 60
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Debian's headless chromium, driven by Selenium, shared by a module's tests."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        missing = "Debian's chromium and chromium-driver are not installed (apt-get install)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    # Selenium Manager would otherwise look for a driver online and send usage statistics.
    os.environ["SE_AVOID_STATS"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def web_library(findimage_env: dict[str, str], tmp_path: Path) -> Path:
    root = tmp_path / "library"
    paths = make_library(root, PICTURES)
    # Half the pictures' file dates in 2020, half in 2024: the date filter splits them.
    for index, path in enumerate(paths):
        year_start = 1577836800 if index % 2 else 1704067200  # 2020-01-01, 2024-01-01 UTC
        os.utime(path, (year_start + 86400 * 30, year_start + 86400 * 30))
    assert main(["index", str(root)]) == 0
    return root


@pytest.fixture
def page(web_library: Path) -> Iterator[str]:
    with served_page(load_settings()) as url:
        yield url
