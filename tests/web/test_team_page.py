"""The team page inside `findimage serve`, behind Sign in with Slack, over plain HTTP: where an
unsigned request is sent, what a forged or tampered session, a missing CSRF token or a stale
sign-in get, who is let in, and the cookie's flags. The browser tests drive the same flow in
chromium (test_team_page_browser.py)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from findimage.search import SearchService
from tests.support.pictures import draw_shape, encode
from tests.support.serve_process import ServeProcess
from tests.support.slack_api import TEAM_ID, FakeSlack, SlackApiServer
from tests.support.slack_oidc import CLIENT_ID, CLIENT_SECRET, USER_ID, SlackPerson
from tests.support.team_page import signed_in, team_page
from web.app import WebDependencies, create_app
from web.signin import COOKIE_NAME, NOT_ALLOWED, STALE, WRONG_TEAM, SignIn, SignInConfig

CARD_ID = re.compile(r'data-id="([0-9a-f]+)"')
OTHER_USER = "U0NOTLISTED"


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with SlackApiServer() as fake:
        yield fake


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, tiny_clip: Path, model_cache: Path, slack: FakeSlack
) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("team")
    # The stand-in's person and the bot's test user may come in; OTHER_USER may not.
    # At -vv, so that the test of secrets sees every debug line of a sign-in.
    with team_page(
        tmp,
        tiny_clip,
        model_cache,
        slack,
        ("-vv",),
        FINDIMAGE_ALLOWED_USERS=f"{USER_ID},U0000042",
    ) as process:
        yield process


@pytest.fixture
def url(served: ServeProcess, slack: FakeSlack) -> str:
    slack.oidc.signing_in = None
    return served.url


def test_without_a_session_the_page_sends_the_browser_to_slacks_sign_in(
    url: str, slack: FakeSlack
) -> None:
    first = requests.get(url + "/?q=sea", allow_redirects=False, timeout=60)
    assert first.status_code == 302 and first.headers["Location"] == "/signin"
    start = requests.get(url + "/signin", cookies=first.cookies, allow_redirects=False, timeout=60)
    assert start.status_code == 302
    where = urlsplit(start.headers["Location"])
    assert f"{where.scheme}://{where.netloc}{where.path}" == slack.url + "/openid/connect/authorize"
    asked = {key: values[0] for key, values in parse_qs(where.query).items()}
    assert asked["client_id"] == CLIENT_ID
    assert asked["response_type"] == "code"
    assert asked["scope"] == "openid profile"
    assert asked["redirect_uri"] == url + "/signin/callback"
    assert asked["team"] == TEAM_ID
    assert asked["state"] and asked["nonce"]


def test_signed_in_the_page_searches_and_comes_back_to_what_was_asked(url: str) -> None:
    session = requests.Session()
    page = session.get(url + "/?q=a+red+circle", timeout=300)
    assert page.status_code == 200 and page.url == url + "/?q=a+red+circle"
    assert len(CARD_ID.findall(page.text)) == 50
    assert "Sign out" in page.text and "Ada" in page.text
    thumbnail = session.get(f"{url}/thumbnails/{CARD_ID.findall(page.text)[0]}/320.jpg", timeout=60)
    assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\xff\xd8")


def test_the_session_cookie_is_httponly_samesite_lax_and_not_secure_over_http(
    url: str,
) -> None:
    session = requests.Session()
    session.get(url + "/", timeout=120)
    cookie = next(c for c in session.cookies if c.name == COOKIE_NAME)
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Lax"
    assert not cookie.secure


def test_a_tampered_session_cookie_is_a_new_sign_in(url: str) -> None:
    session, _ = signed_in(url)
    value = session.cookies[COOKIE_NAME]
    flipped = value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]
    answer = requests.get(
        url + "/", cookies={COOKIE_NAME: flipped}, allow_redirects=False, timeout=60
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/signin"


def test_a_session_signed_with_another_key_is_a_new_sign_in(url: str) -> None:
    forger = Flask("forger")
    forger.secret_key = "not the page's key"
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    forged = serializer.dumps({"user": USER_ID, "team": TEAM_ID, "name": "Ada", "csrf": "x"})
    answer = requests.get(
        url + "/", cookies={COOKIE_NAME: forged}, allow_redirects=False, timeout=60
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/signin"


def test_a_post_without_the_sessions_csrf_token_is_refused(url: str) -> None:
    session, token = signed_in(url)
    photo = {"photo": ("p.png", encode(draw_shape("red", "circle"), "PNG"), "image/png")}
    missing = session.post(url + "/results/photo", files=photo, timeout=120)
    wrong = session.post(
        url + "/results/photo", files=photo, headers={"X-CSRF-Token": "x" * 43}, timeout=120
    )
    right = session.post(
        url + "/results/photo", files=photo, headers={"X-CSRF-Token": token}, timeout=300
    )
    assert (missing.status_code, wrong.status_code, right.status_code) == (403, 403, 200)
    # Another session's token is as wrong as a made-up one.
    _, other_token = signed_in(url)
    crossed = session.post(
        url + "/results/photo", files=photo, headers={"X-CSRF-Token": other_token}, timeout=120
    )
    assert crossed.status_code == 403


def test_signing_out_takes_the_csrf_token_and_ends_the_session(url: str) -> None:
    session, token = signed_in(url)
    refused = session.post(url + "/signout", allow_redirects=False, timeout=60)
    assert refused.status_code == 403
    assert session.get(url + "/", allow_redirects=False, timeout=60).status_code == 200
    out = session.post(
        url + "/signout", data={"csrf_token": token}, allow_redirects=False, timeout=60
    )
    assert out.status_code == 303 and out.headers["Location"] == "/signedout"
    again = session.get(url + "/", allow_redirects=False, timeout=60)
    assert again.status_code == 302 and again.headers["Location"] == "/signin"


def _code_and_state(session: requests.Session, url: str) -> tuple[str, str]:
    """Start signing in and let the stand-in consent: the code and state it sends back."""
    start = session.get(url + "/signin", allow_redirects=False, timeout=60)
    consent = requests.get(start.headers["Location"], allow_redirects=False, timeout=60)
    back = parse_qs(urlsplit(consent.headers["Location"]).query)
    return back["code"][0], back["state"][0]


def test_a_callback_whose_state_this_browser_did_not_start_is_refused(
    url: str, slack: FakeSlack
) -> None:
    session = requests.Session()
    code, state = _code_and_state(session, url)
    other = session.get(
        url + "/signin/callback", params={"code": code, "state": state[:-1] + "x"}, timeout=60
    )
    assert other.status_code == 400 and STALE in other.text
    # Nor does another browser (no session at all) get anywhere with the real state.
    stranger = requests.get(
        url + "/signin/callback", params={"code": code, "state": state}, timeout=60
    )
    assert stranger.status_code == 400 and STALE in stranger.text
    assert not slack.calls("openid.connect.token", lambda r: r.params.get("code") == code)


def test_a_callback_is_used_once(url: str) -> None:
    session = requests.Session()
    code, state = _code_and_state(session, url)
    callback = url + "/signin/callback"
    first = session.get(callback, params={"code": code, "state": state}, allow_redirects=False)
    assert first.status_code == 302 and first.headers["Location"] == "/"
    replayed = requests.get(callback, params={"code": code, "state": state}, timeout=60)
    assert replayed.status_code == 400


@pytest.mark.parametrize(
    ("person", "sentence"),
    [
        (SlackPerson(OTHER_USER, TEAM_ID), NOT_ALLOWED),
        (SlackPerson(USER_ID, "T0THERTEAM"), WRONG_TEAM),
    ],
)
def test_who_may_not_come_in_gets_one_sentence_and_no_session(
    url: str, slack: FakeSlack, person: SlackPerson, sentence: str
) -> None:
    slack.oidc.signing_in = person
    session = requests.Session()
    answer = session.get(url + "/", timeout=120)
    assert answer.status_code == 403
    shown = re.findall(r'role="alert" id="sentence">([^<]*)</p>', answer.text)
    assert [html.unescape(text) for text in shown] == [sentence]
    slack.oidc.signing_in = None
    assert session.get(url + "/", allow_redirects=False, timeout=60).status_code == 302


def test_an_id_token_slack_did_not_sign_is_refused(url: str, slack: FakeSlack) -> None:
    from joserfc.jwk import RSAKey

    slack.oidc.signing_key = RSAKey.generate_key(2048, parameters={"kid": "findimage-test-key"})
    try:
        answer = requests.Session().get(url + "/", timeout=120)
    finally:
        slack.oidc.reset()
        slack.oidc.redirect_urls.add(url + "/signin/callback")
    assert answer.status_code == 403
    assert "Slack did not sign you in" in answer.text


def test_without_sign_in_set_up_serve_has_no_page(
    tmp_path: Path, tiny_clip: Path, model_cache: Path, slack: FakeSlack
) -> None:
    with team_page(
        tmp_path, tiny_clip, model_cache, slack, SLACK_CLIENT_ID="", SLACK_CLIENT_SECRET=""
    ) as bare:
        assert "search page" not in bare.first_line
        for path in ("/", "/?q=sea", "/signin", "/results?q=sea", "/static/findimage.js"):
            answer = requests.get(bare.url + path, allow_redirects=False, timeout=60)
            assert answer.status_code == 404, path


def _in_process(public_url: str, allowed: frozenset[str] = frozenset()) -> Flask:
    """The page behind sign-in, in this process: for what needs no search and no Slack."""
    config = SignInConfig(
        client_id=CLIENT_ID,
        client_secret="secret",
        public_url=public_url,
        team_id=TEAM_ID,
        allowed_users=allowed,
        slack_api_url="https://slack.com/api/",
    )
    dependencies = WebDependencies(
        service=cast(SearchService, None),  # never reached: nothing is searched before sign-in
        library=None,
        thumbnails=None,
        max_file_bytes=1024,
        host_names=None,
    )
    return create_app(dependencies, SignIn(config))


def test_behind_https_the_session_cookie_is_secure_too() -> None:
    client = _in_process("https://find.example").test_client()
    start = client.get("/signin")
    assert start.status_code == 302
    assert start.headers["Location"].startswith("https://slack.com/openid/connect/authorize?")
    [cookie] = start.headers.getlist("Set-Cookie")
    flags = {part.strip().split("=")[0] for part in cookie.split(";")[1:]}
    assert {"Secure", "HttpOnly", "SameSite"} <= flags
    assert "SameSite=Lax" in cookie


def test_signing_in_logs_no_secret_at_debug_level(
    served: ServeProcess, url: str, slack: FakeSlack
) -> None:
    session, token = signed_in(url)
    session.post(url + "/signout", data={"csrf_token": token}, timeout=60)
    printed = []
    while not served.lines.empty():
        printed.append(served.lines.get())
    text = "".join(printed)
    assert "openid.connect.token" in text  # the debug lines are there, and were read
    secrets = [CLIENT_SECRET, token, *slack.oidc.tokens, *slack.oidc.codes]
    assert [secret for secret in secrets if secret in text] == []
    assert "id_token" not in text and "Traceback" not in text


def test_a_session_of_someone_taken_off_the_list_leads_to_slack_not_round_in_circles() -> None:
    """A person signed in, then taken off FINDIMAGE_ALLOWED_USERS (and the bot restarted):
    their still-valid cookie is sent to sign in again, and signing in goes to Slack."""
    app = _in_process("http://find.example", allowed=frozenset({"U0STILLIN"}))
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert serializer is not None
    cookie = serializer.dumps({"user": USER_ID, "team": TEAM_ID, "name": "Ada", "csrf": "x"})
    client = app.test_client()
    client.set_cookie(COOKIE_NAME, cookie)
    page = client.get("/")
    assert page.status_code == 302 and page.headers["Location"] == "/signin"
    start = client.get("/signin")
    assert start.status_code == 302
    assert start.headers["Location"].startswith("https://slack.com/openid/connect/authorize?")
