"""`findimage serve` with its team page behind Sign in with Slack, against the Slack stand-in;
and a requests session signed in to it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support.pictures import make_library
from tests.support.s3 import free_port
from tests.support.serve_process import ServeProcess, launch_serve
from tests.support.slack_api import BOT_TOKEN, FakeSlack
from tests.support.slack_oidc import CLIENT_ID, CLIENT_SECRET
from tests.support.slack_requests import SIGNING_SECRET
from tests.support.web_page import index_library, web_environment

PICTURES = 60
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


@contextmanager
def team_page(
    tmp: Path,
    model: Path,
    model_cache: Path,
    fake: FakeSlack,
    options: tuple[str, ...] = (),
    **settings: str,
) -> Iterator[ServeProcess]:
    """`serve` on a free port, its public address registered as the app's redirect URL, the
    team page signed in to through `fake`; `settings` added to (or replacing) its own, and
    `options` (`-vv`) before the command."""
    make_library(tmp / "library", PICTURES)
    env = web_environment(tmp, model, model_cache)
    index_library(tmp / "library", env, tmp)
    port = free_port()
    public = settings.get("FINDIMAGE_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    fake.oidc.redirect_urls.add(public + "/signin/callback")
    env.update(
        FINDIMAGE_PORT=str(port),
        FINDIMAGE_SLACK_API_URL=fake.api_url,
        FINDIMAGE_PUBLIC_BASE_URL=public,
        FINDIMAGE_PREVIEW_SECRET="preview-secret-for-tests",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_CLIENT_ID=CLIENT_ID,
        SLACK_CLIENT_SECRET=CLIENT_SECRET,
    )
    env.update(settings)
    served = launch_serve(env, tmp, *options)
    try:
        yield served
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(timeout=60)


def signed_in(url: str) -> tuple[requests.Session, str]:
    """A session that went through Sign in with Slack as the stand-in's person, and the
    page's CSRF token."""
    session = requests.Session()
    page = session.get(url + "/", timeout=120)
    assert page.status_code == 200 and page.url == url + "/", (page.status_code, page.url)
    found = CSRF_META.search(page.text)
    assert found is not None
    return session, found.group(1)
