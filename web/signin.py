"""Sign in with Slack for the page: OpenID Connect against the team's workspace.

Slack's flow (https://docs.slack.dev/authentication/sign-in-with-slack/): the browser goes to
/openid/connect/authorize with the `openid` and `profile` scopes, comes back to the redirect
URL with a code, and the code is exchanged with openid.connect.token for an access token and
an id_token, whose signature is checked against Slack's keys (its discovery document,
https://slack.com/.well-known/openid-configuration, names RS256 and /openid/connect/keys).
openid.connect.userInfo then says who signed in. Authlib keeps the state and nonce in the
session and checks the id_token (issuer, audience, expiry, nonce, at_hash).

Who may come in: a member of the configured workspace (the `https://slack.com/team_id`
claim), and when FINDIMAGE_ALLOWED_USERS is set, only the people it names. The session is
Flask's signed cookie: HttpOnly, SameSite=Lax, Secure behind https, and valid for
SESSION_HOURS; every POST carries the session's CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, abort, redirect, render_template, request, session
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

SIGN_IN_PATH = "/signin"
CALLBACK_PATH = "/signin/callback"
SIGN_OUT_PATH = "/signout"
SIGNED_OUT_PATH = "/signedout"
# Paths open without a session: the steps of signing in, the page that says one signed out,
# and the page's own CSS and JavaScript (no data in them).
OPEN_PATHS = (SIGN_IN_PATH, CALLBACK_PATH, SIGNED_OUT_PATH)
SCOPES = "openid profile"
SESSION_HOURS = 12
COOKIE_NAME = "findimage_session"
TEAM_CLAIM = "https://slack.com/team_id"
# What the id_token is signed with: Slack's discovery document lists RS256 alone.
SIGNING_ALGORITHMS = ["RS256"]
SESSION_KEY_LABEL = b"findimage web session cookie v1"

WRONG_TEAM = "You signed in to another Slack workspace: sign in with your account in the team's."
NOT_ALLOWED = "Your Slack account is not on this page's list of people: ask its owner to add you."
STALE = "That sign-in was not started here or has expired: sign in again."
REFUSED = "Slack did not sign you in: try again."
UNREACHABLE = "Slack cannot be reached to sign you in: try again in a minute."


@dataclass(frozen=True)
class SignInConfig:
    """What signing in needs: the Slack app's client id and secret, the page's public address
    (the redirect URL is made from it), the workspace, the allow-list, and where Slack's Web
    API is (the sign-in endpoints are found beside it)."""

    client_id: str
    client_secret: str
    public_url: str
    team_id: str
    allowed_users: frozenset[str]
    slack_api_url: str

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + CALLBACK_PATH

    @property
    def secure(self) -> bool:
        return self.public_url.lower().startswith("https://")

    @property
    def issuer(self) -> str:
        """https://slack.com for https://slack.com/api/: the id_token's `iss`."""
        parts = urlsplit(self.slack_api_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def authorize_url(self) -> str:
        return urljoin(self.slack_api_url, "/openid/connect/authorize")

    @property
    def jwks_url(self) -> str:
        return urljoin(self.slack_api_url, "/openid/connect/keys")

    @property
    def token_url(self) -> str:
        return urljoin(self.slack_api_url, "openid.connect.token")

    @property
    def userinfo_url(self) -> str:
        return urljoin(self.slack_api_url, "openid.connect.userInfo")

    def session_key(self) -> bytes:
        """The key that signs session cookies, derived from the client secret: nothing more to
        set, and a new client secret (after a leak) signs everyone out."""
        return hmac.new(self.client_secret.encode(), SESSION_KEY_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True)
class SignedIn:
    user_id: str
    team_id: str
    name: str


class SignIn:
    """Installs signing in on the page's Flask app; says who is signed in, and their token."""

    def __init__(self, config: SignInConfig):
        self.config = config

    def install(self, app: Flask) -> None:
        config = self.config
        app.secret_key = config.session_key()
        app.config.update(
            SESSION_COOKIE_NAME=COOKIE_NAME,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_SECURE=config.secure,
            PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        )
        oauth = OAuth(app)
        slack: Any = oauth.register(
            "slack",
            client_id=config.client_id,
            client_secret=config.client_secret,
            authorize_url=config.authorize_url,
            access_token_url=config.token_url,
            # Slack takes the client's credentials in the form (its discovery document lists
            # client_secret_post and client_secret_basic).
            client_kwargs={"scope": SCOPES, "token_endpoint_auth_method": "client_secret_post"},
            issuer=config.issuer,
            jwks_uri=config.jwks_url,
            userinfo_endpoint=config.userinfo_url,
            id_token_signing_alg_values_supported=SIGNING_ALGORITHMS,
        )

        @app.before_request
        def require_sign_in() -> Response | None:
            if request.path in OPEN_PATHS or request.endpoint == "static":
                return None
            who = self.signed_in()
            if who is not None and self._admitted(who) is None:
                return None
            if request.method in ("GET", "HEAD"):
                session["next"] = _local(request.full_path)
                return redirect(SIGN_IN_PATH)
            abort(401)

        @app.get(SIGN_IN_PATH)
        def sign_in() -> Response | tuple[str, int]:
            who = self.signed_in()
            if who is not None and self._admitted(who) is None:
                return redirect("/")
            # A session no longer admitted (taken off the list since) goes to Slack again,
            # not back to the page that sent it here.
            try:
                # `team` sends the person straight to the team's workspace.
                response: Response = slack.authorize_redirect(
                    config.redirect_uri, team=config.team_id
                )
            except requests.RequestException as exc:
                log.warning("sign-in could not start: %s", exc)
                return self._refused(UNREACHABLE, 502)
            return response

        @app.get(CALLBACK_PATH)
        def callback() -> Response | tuple[str, int]:
            try:
                token = slack.authorize_access_token()
                claims = token.get("userinfo")
                if not claims:
                    raise OAuthError(description="no id_token in Slack's answer")
                profile = _user_info(slack, token)
            except MismatchingStateError:
                return self._refused(STALE, 400)
            except OAuthError as exc:
                log.warning("Slack refused a sign-in: %s", exc.error or exc.description)
                return self._refused(REFUSED, 403)
            except requests.RequestException as exc:
                log.warning("Slack could not be reached to sign in: %s", exc)
                return self._refused(UNREACHABLE, 502)
            except Exception as exc:  # an id_token that fails its checks: the library's own errors
                log.warning(
                    "Slack's sign-in answer did not verify: %s: %s", type(exc).__name__, exc
                )
                return self._refused(REFUSED, 403)
            if profile.get("sub") != claims.get("sub"):
                log.warning("openid.connect.userInfo named another user than the id_token")
                return self._refused(REFUSED, 403)
            who = SignedIn(
                user_id=str(claims["sub"]),
                team_id=str(claims.get(TEAM_CLAIM, "")),
                name=str(profile.get("name") or claims.get("name") or claims["sub"]),
            )
            refusal = self._admitted(who)
            if refusal is not None:
                log.warning("refused a sign-in by %s of team %s", who.user_id, who.team_id)
                return self._refused(refusal, 403)
            following = session.get("next") or "/"
            # A new session for the person signed in: nothing from before carries over.
            session.clear()
            session.permanent = True
            session.update(
                user=who.user_id,
                team=who.team_id,
                name=who.name,
                csrf=secrets.token_urlsafe(32),
            )
            log.info("%s signed in to the page", who.user_id)
            return redirect(_local(following))

        @app.post(SIGN_OUT_PATH)
        def sign_out() -> Response:
            session.clear()
            return redirect(SIGNED_OUT_PATH, code=303)

        @app.get(SIGNED_OUT_PATH)
        def signed_out() -> str:
            return render_template("signin.html", sentence="You signed out.", again=True)

    def signed_in(self) -> SignedIn | None:
        if "user" not in session:
            return None
        return SignedIn(session["user"], session.get("team", ""), session.get("name", ""))

    def csrf_token(self) -> str:
        """The session's token; a page shown before signing in gets one of its own."""
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        return str(session["csrf"])

    def _admitted(self, who: SignedIn) -> str | None:
        """Why `who` may not use the page, or None. Checked again on every request, so a name
        taken off FINDIMAGE_ALLOWED_USERS is out at the next restart, session or not."""
        if who.team_id != self.config.team_id:
            return WRONG_TEAM
        if self.config.allowed_users and who.user_id not in self.config.allowed_users:
            return NOT_ALLOWED
        return None

    def _refused(self, sentence: str, status: int) -> tuple[str, int]:
        session.clear()
        return render_template("signin.html", sentence=sentence, again=True), status


def _user_info(slack: Any, token: dict[str, Any]) -> dict[str, Any]:
    """openid.connect.userInfo with the access token; Slack's failures come as ok: false."""
    response = slack.post(slack.load_server_metadata()["userinfo_endpoint"], token=token)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    if not data.get("ok"):
        raise OAuthError(error=str(data.get("error", "userinfo refused")))
    return data


def _local(path: str) -> str:
    """Only a path on this site may be where signing in leads back to (never //other.site)."""
    path = path.rstrip("?")
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
