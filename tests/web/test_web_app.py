"""The search page's HTTP side, over HTTP to a real waitress server: results, paging, photos,
thumbnails, and what it refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from findimage.settings import load_settings
from tests.support.pictures import draw_shape, encode
from tests.web.conftest import PICTURES

CARD_ID = re.compile(r'data-id="([0-9a-f]+)"')


def _ids(html: str) -> list[str]:
    return CARD_ID.findall(html)


def _token(page: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', requests.get(page, timeout=60).text)
    assert found is not None
    return found.group(1)


def test_the_page_answers_a_query_with_a_grid_of_thumbnails_that_load(page: str) -> None:
    html = requests.get(page, params={"q": "a red circle"}, timeout=120).text
    ids = _ids(html)
    assert len(ids) == 50
    thumbnail = requests.get(f"{page}/thumbnails/{ids[0]}/320.jpg", timeout=60)
    assert thumbnail.status_code == 200
    assert thumbnail.headers["Content-Type"] == "image/jpeg"
    assert thumbnail.content.startswith(b"\xff\xd8")


def test_pages_follow_one_another_without_repeats_until_the_last(page: str) -> None:
    first = requests.get(f"{page}/results", params={"q": "a red circle"}, timeout=120).text
    following = re.search(r'data-following="([^"]+)"', first)
    assert following is not None
    second = requests.get(page + following.group(1).replace("&amp;", "&"), timeout=60).text
    assert "data-following" not in second  # 60 pictures: the second page is the last
    ids = _ids(first) + _ids(second)
    assert len(ids) == PICTURES == len(set(ids))


def test_the_date_filter_keeps_only_pictures_of_those_dates(page: str, web_library: Path) -> None:
    html = requests.get(page, params={"q": "a red circle", "after": "2024"}, timeout=120).text
    # The 30 pictures with even numbers have their file date in 2024.
    assert len(_ids(html)) == 30
    assert "after 2024-01-01" in html


def test_a_mistake_in_the_form_is_the_command_lines_sentence(page: str) -> None:
    answer = requests.get(f"{page}/results", params={"q": "sea", "after": "June"}, timeout=60)
    assert answer.status_code == 400
    assert "after: " in answer.text and 'role="alert"' in answer.text
    whole = requests.get(page, params={"q": "sea", "after": "June"}, timeout=60)
    assert whole.status_code == 200 and 'role="alert"' in whole.text


def test_a_photo_finds_pictures_like_it_and_needs_the_pages_token(page: str) -> None:
    photo = encode(draw_shape("red", "circle"), "PNG")
    files = {"photo": ("red.png", photo, "image/png")}
    refused = requests.post(f"{page}/results/photo", files=files, timeout=60)
    assert refused.status_code == 403
    forged = requests.post(
        f"{page}/results/photo", files=files, headers={"X-CSRF-Token": "guess"}, timeout=60
    )
    assert forged.status_code == 403
    answer = requests.post(
        f"{page}/results/photo",
        files=files,
        headers={"X-CSRF-Token": _token(page)},
        timeout=120,
    )
    assert answer.status_code == 200
    assert len(_ids(answer.text)) == 50


def test_a_bad_photo_is_one_sentence_not_a_server_error(page: str) -> None:
    answer = requests.post(
        f"{page}/results/photo",
        files={"photo": ("notes.png", b"not a picture at all", "image/png")},
        headers={"X-CSRF-Token": _token(page)},
        timeout=60,
    )
    assert answer.status_code == 400
    assert "That picture cannot be used" in answer.text


def test_another_host_name_is_refused_so_no_web_site_can_rebind_to_the_page(page: str) -> None:
    port = page.rsplit(":", 1)[1]
    answer = requests.get(page, headers={"Host": f"attacker.example:{port}"}, timeout=60)
    assert answer.status_code == 400
    assert requests.get(page, headers={"Host": f"localhost:{port}"}, timeout=60).ok


def test_thumbnails_are_made_once_and_kept(page: str, web_library: Path) -> None:
    ids = _ids(requests.get(page, params={"q": "a red circle"}, timeout=120).text)
    details = requests.get(f"{page}/details/{ids[0]}", timeout=60).text
    path = re.search(r'<p class="path">([^<]+)</p>', details)
    assert path is not None
    assert requests.get(f"{page}/thumbnails/{ids[0]}/320.jpg", timeout=60).ok
    kept = list((load_settings().data_dir / "thumbnails").glob("*-320.jpg"))
    assert len(kept) == 1
    # The original gone from the library: its kept thumbnail still shows, the original not.
    (web_library / path.group(1)).unlink()
    assert requests.get(f"{page}/thumbnails/{ids[0]}/320.jpg", timeout=60).ok
    assert requests.get(f"{page}/pictures/{ids[0]}", timeout=60).status_code == 404
    # One whose original is gone and was never shown: a 404 for it alone.
    (web_library / _path(page, ids[1])).unlink()
    assert requests.get(f"{page}/thumbnails/{ids[1]}/320.jpg", timeout=60).status_code == 404
    assert requests.get(f"{page}/thumbnails/{ids[2]}/320.jpg", timeout=60).ok


def test_a_picture_opened_shows_its_path_more_like_this_and_the_original(
    page: str, web_library: Path
) -> None:
    ids = _ids(requests.get(page, params={"q": "a red circle"}, timeout=120).text)
    path = _path(page, ids[0])
    details = requests.get(f"{page}/details/{ids[0]}", timeout=60).text
    assert f'href="/?q=like:{ids[0][:12]}"' in details
    original = requests.get(f"{page}/pictures/{ids[0]}", timeout=60)
    assert original.content == (web_library / path).read_bytes()
    like = requests.get(page, params={"q": f"like:{ids[0][:12]}"}, timeout=120).text
    assert ids[0] not in _ids(like) and len(_ids(like)) == 50
    assert requests.get(f"{page}/details/ffffffffffff", timeout=60).status_code == 404


@pytest.mark.parametrize("side", [100, 321, 1279])
def test_only_the_pages_two_thumbnail_sizes_are_made(page: str, side: int) -> None:
    ids = _ids(requests.get(page, params={"q": "a red circle"}, timeout=120).text)
    assert requests.get(f"{page}/thumbnails/{ids[0]}/{side}.jpg", timeout=60).status_code == 404


def _path(page: str, doc_id: str) -> str:
    details = requests.get(f"{page}/details/{doc_id}", timeout=60).text
    found = re.search(r'<p class="path">([^<]+)</p>', details)
    assert found is not None
    return found.group(1)
