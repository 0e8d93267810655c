"""The search page: a Flask app over the search service, rendered on the server.

Every query form of the command line works here: text in any language, the combined syntax
(`2:beach + like:3f2a - people`), a photo sent from the page, `like:` from any result, and
the folder, date and place filters. Results come as a grid of thumbnails, 50 at a time; the
next page is asked for as the person scrolls (the same offsets as Slack's More results).
"""

from __future__ import annotations

import hmac
import logging
import mimetypes
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, abort, render_template, request

from findimage.errors import FindImageError, NotFoundError
from findimage.filters import picture_date
from findimage.library import Library, OutsideLibraryError
from findimage.search import SearchService
from findimage.thumbnails import ThumbnailCache
from web.searching import PAGE_SIZE, WebQuery, run_search
from web.signin import SignIn

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 320
LARGE_SIDE = 1280
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# A photo sent from the page: the largest Slack accepts is 1 GB, but a query photo is read
# whole into memory, so the page takes what the indexer takes (FINDIMAGE_MAX_FILE_MB).


@dataclass(frozen=True)
class WebDependencies:
    """What the page needs: the search service, the library for originals and thumbnails,
    and the names it answers to (a request's Host header must name one of them, with the
    port it came in on; None behind Sign in with Slack, see create_app)."""

    service: SearchService
    library: Library | None
    thumbnails: ThumbnailCache | None
    max_file_bytes: int
    host_names: frozenset[str] | None


def create_app(dependencies: WebDependencies, sign_in: SignIn | None = None) -> Flask:
    """The page; behind `sign_in` when given (the team page of `serve`, or `web` on an
    address other than loopback), open to whoever reaches it otherwise (loopback only)."""
    app = Flask(__name__)
    # Photos are read whole: refuse larger bodies before reading them (Werkzeug answers 413).
    app.config["MAX_CONTENT_LENGTH"] = dependencies.max_file_bytes + 64 * 1024
    page_token = secrets.token_urlsafe(32)
    service = dependencies.service
    app.jinja_env.globals["shown_size"] = shown_size
    app.jinja_env.globals["picture_date"] = picture_date

    def csrf_token() -> str:
        return sign_in.csrf_token() if sign_in else page_token

    @app.before_request
    def refuse_other_hosts() -> None:
        # A page on 127.0.0.1 is still reachable from any web site through DNS rebinding (a
        # name that resolves to 127.0.0.1): answering only our own Host names stops that.
        # Behind sign-in there is no such list (a proxy in front names the host as it likes):
        # a rebinding site gets no session cookie, its requests only the way to sign in.
        if dependencies.host_names is None:
            return
        name, _, port = request.host.lower().rpartition(":")
        if name not in dependencies.host_names or port != request.environ.get("SERVER_PORT"):
            abort(400)

    if sign_in is not None:
        sign_in.install(app)

    @app.before_request
    def require_csrf_token() -> None:
        """Every POST carries the page's token, in a header (the page's script) or a form
        field (the sign-out button): another site's form cannot know it."""
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
        if not hmac.compare_digest(sent.encode(), csrf_token().encode()):
            abort(403)

    @app.context_processor
    def signed_in() -> dict[str, Any]:
        return {
            "csrf_token": csrf_token(),
            "signed_in": sign_in.signed_in() if sign_in else None,
        }

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.get("/")
    def page() -> str:
        query = WebQuery.from_form(request.args)
        context: dict[str, Any] = {"query": query}
        if query.text:
            try:
                context["results"] = _results_context(service, query, None)
            except FindImageError as exc:
                context["problem"] = str(exc)
        return render_template("page.html", **context)

    @app.get("/results")
    def results() -> tuple[str, int]:
        query = WebQuery.from_form(request.args)
        return _results_fragment(service, query, None)

    @app.post("/results/photo")
    def photo_results() -> tuple[str, int]:
        upload = request.files.get("photo")
        if upload is None:
            return render_template("problem.html", sentence="Choose a photo to search with."), 400
        query = WebQuery.from_form(request.form)
        return _results_fragment(service, query, upload.read())

    @app.get("/details/<doc_id>")
    def details(doc_id: str) -> str:
        document = service.document(doc_id)
        if document is None:
            abort(404)
        return render_template("details.html", document=document)

    @app.get("/thumbnails/<doc_id>/<int:side>.jpg")
    def thumbnail(doc_id: str, side: int) -> Response:
        if side not in (THUMBNAIL_SIDE, LARGE_SIDE) or dependencies.thumbnails is None:
            abort(404)
        document = service.document(doc_id)
        if document is None:
            abort(404)
        try:
            data = dependencies.thumbnails.get(document, side)
        except OutsideLibraryError:
            abort(403)
        except Exception:
            # Whatever one picture raises, the grid shows the rest: logged, one 404.
            log.warning("no thumbnail for %s", document.path, exc_info=True)
            abort(404)
        response = Response(data, mimetype="image/jpeg")
        response.headers["Cache-Control"] = "private, max-age=86400, immutable"
        return response

    @app.get("/pictures/<doc_id>")
    def original(doc_id: str) -> Response:
        document = service.document(doc_id)
        if document is None or dependencies.library is None:
            abort(404)
        presigned = dependencies.library.presigned_url(document.path, 300)
        if presigned is not None:
            return Response(status=302, headers={"Location": presigned})
        try:
            data = dependencies.library.read(document.path, dependencies.max_file_bytes)
        except OutsideLibraryError:
            abort(403)
        except FindImageError:
            abort(404)
        response = Response(data, mimetype=_mimetype(document.name))
        quoted = document.name.replace('"', "")
        response.headers["Content-Disposition"] = f'inline; filename="{quoted}"'
        return response

    return app


def _results_fragment(
    service: SearchService, query: WebQuery, photo: bytes | None
) -> tuple[str, int]:
    try:
        context = _results_context(service, query, photo)
    except FindImageError as exc:
        status = 404 if isinstance(exc, NotFoundError) else 400
        return render_template("problem.html", sentence=str(exc)), status
    return render_template("results.html", **context), 200


def _results_context(
    service: SearchService, query: WebQuery, photo: bytes | None
) -> dict[str, Any]:
    """The hits of one page, and the address of the next when this one was full."""
    found = run_search(service, query, photo)
    following = None
    if len(found.hits) == PAGE_SIZE and photo is None:
        following = "/results?" + urlencode(query.with_offset(query.offset + PAGE_SIZE).form())
    elif len(found.hits) == PAGE_SIZE:
        following = str(query.offset + PAGE_SIZE)
    return {"found": found, "following": following, "query": query, "side": THUMBNAIL_SIDE}


def shown_size(width: int, height: int, side: int) -> tuple[int, int]:
    """A picture's size fitted into a `side` square, so the grid keeps its place for each
    thumbnail before it loads."""
    longest = max(width, height, 1)
    return max(1, side * width // longest), max(1, side * height // longest)


def _mimetype(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
