"""Sign in with Slack, as the Slack stand-in (tests/support/slack_api.py) answers it.

Slack's OpenID Connect endpoints, each as documented:
- GET /openid/connect/authorize: Slack asks the person, then sends the browser back to the
  redirect URL with `code` and `state` (https://docs.slack.dev/authentication/sign-in-with-
  slack/, "Implementing the flow"). Here the person is `SlackOidc.signing_in`, who consents
  at once. An unknown client or a redirect URL the app does not list is an error page, no
  redirect (the app's Redirect URLs, https://docs.slack.dev/authentication/installing-with-
  oauth, "redirect_uri ... must match").
- POST /api/openid.connect.token: the code, with the client's id and secret in the form or
  in Basic auth (Slack's discovery document, https://slack.com/.well-known/openid-
  configuration: token_endpoint_auth_methods_supported client_secret_post and
  client_secret_basic), for {"ok": true, "access_token", "token_type": "Bearer",
  "id_token"} (https://docs.slack.dev/reference/methods/openid.connect.token). Failures are
  HTTP 200 with {"ok": false, "error": ...}, as every Web API method: `invalid_code` for a
  code unknown, used or older than ten minutes (OAuth codes "expire after ten minutes" and
  are single-use, https://docs.slack.dev/authentication/installing-with-oauth),
  `invalid_client_id`, `bad_client_secret`, `bad_redirect_uri` (the errors oauth.v2.access
  and openid.connect.token share).
- The id_token: RS256 (the discovery document's only algorithm), signed with a key of
  /openid/connect/keys, with the claims of Slack's example: iss, sub, aud, exp, iat,
  auth_time, nonce, at_hash, https://slack.com/team_id and /user_id, name.
- POST /api/openid.connect.userInfo with the access token as a Bearer header: the person
  (https://docs.slack.dev/reference/methods/openid.connect.userInfo, "Response"); a token
  Slack does not know is `invalid_auth` (https://docs.slack.dev/reference/methods, common
  errors).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "1000000001.2000000002"
CLIENT_SECRET = "client-secret-fake"
USER_ID = "U0SIGNIN1"
USER_NAME = "Ada"
CODE_SECONDS = 10 * 60
ID_TOKEN_SECONDS = 5 * 60
KEY_ID = "findimage-test-key"
# One key for the whole run: a 2048-bit key takes a moment to make.
SIGNING_KEY = RSAKey.generate_key(2048, parameters={"kid": KEY_ID, "use": "sig", "alg": "RS256"})


@dataclass(frozen=True)
class SlackPerson:
    user_id: str
    team_id: str
    name: str = USER_NAME


@dataclass
class Grant:
    person: SlackPerson
    client_id: str
    redirect_uri: str
    nonce: str | None
    issued: float = field(default_factory=time.monotonic)
    used: bool = False


@dataclass
class SlackOidc:
    """The app's client, its Redirect URLs, who signs in next, and the codes and tokens
    handed out. `signing_key` signs id_tokens: a test swaps it for one Slack never published."""

    team_id: str
    signing_in: SlackPerson | None = None
    redirect_urls: set[str] = field(default_factory=set)
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, SlackPerson] = field(default_factory=dict)
    signing_key: RSAKey = field(default_factory=lambda: SIGNING_KEY)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def person(self) -> SlackPerson:
        return self.signing_in or SlackPerson(USER_ID, self.team_id)

    def reset(self) -> None:
        with self._lock:
            self.signing_in = None
            self.redirect_urls.clear()
            self.codes.clear()
            self.tokens.clear()
            self.signing_key = SIGNING_KEY

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """(302, where the browser goes next) or (400, the error Slack's page shows)."""
        if query.get("client_id") != CLIENT_ID:
            return 400, "invalid_client_id"
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in self.redirect_urls:
            return 400, "bad_redirect_uri"
        if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
            return 400, "invalid_scope"
        code = f"{next(self._ids)}.{secrets.token_hex(16)}"
        with self._lock:
            self.codes[code] = Grant(self.person(), CLIENT_ID, redirect_uri, query.get("nonce"))
        back = {"code": code}
        if "state" in query:
            back["state"] = query["state"]
        return 302, f"{redirect_uri}?{urlencode(back)}"

    def token(self, issuer: str, params: dict[str, Any], authorization: str) -> dict[str, Any]:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != CLIENT_ID:
            return {"ok": False, "error": "invalid_client_id"}
        if client_secret != CLIENT_SECRET:
            return {"ok": False, "error": "bad_client_secret"}
        with self._lock:
            grant = self.codes.get(str(params.get("code")))
            fresh = grant is not None and time.monotonic() - grant.issued <= CODE_SECONDS
            if grant is None or grant.used or not fresh:
                return {"ok": False, "error": "invalid_code"}
            grant.used = True
            if params.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
                return {"ok": False, "error": "bad_redirect_uri"}
            access_token = f"xoxp-{next(self._ids)}-{secrets.token_hex(8)}"
            self.tokens[access_token] = grant.person
        return {
            "ok": True,
            "access_token": access_token,
            "token_type": "Bearer",
            "id_token": self.id_token(issuer, grant, access_token),
        }

    def id_token(self, issuer: str, grant: Grant, access_token: str) -> str:
        now = int(time.time())
        person = grant.person
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": person.user_id,
            "aud": grant.client_id,
            "exp": now + ID_TOKEN_SECONDS,
            "iat": now,
            "auth_time": now,
            "at_hash": _at_hash(access_token),
            "https://slack.com/team_id": person.team_id,
            "https://slack.com/user_id": person.user_id,
            "name": person.name,
            "locale": "en-US",
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        header = {"alg": "RS256", "kid": self.signing_key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.signing_key)

    def userinfo(self, authorization: str, params: dict[str, Any]) -> dict[str, Any]:
        token = authorization.removeprefix("Bearer ") if authorization else params.get("token")
        if not token:
            return {"ok": False, "error": "not_authed"}
        with self._lock:
            person = self.tokens.get(token)
        if person is None:
            return {"ok": False, "error": "invalid_auth"}
        return {
            "ok": True,
            "sub": person.user_id,
            "https://slack.com/user_id": person.user_id,
            "https://slack.com/team_id": person.team_id,
            "name": person.name,
            "locale": "en-US",
        }

    @staticmethod
    def keys() -> dict[str, Any]:
        """/openid/connect/keys: the published key, never the one a test swapped in."""
        return {"keys": [SIGNING_KEY.as_dict(private=False)]}


def _at_hash(access_token: str) -> str:
    """OpenID Connect Core 3.1.3.6: the left half of the token's SHA-256, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
