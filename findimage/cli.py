"""The `findimage` command line: index, search, status, serve."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager, nullcontext
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from findimage.errors import ConfigError, FindImageError, ImageError
from findimage.notices import notices
from findimage.settings import Settings, load_settings, parse_ids
from findimage.terminal import printable

if TYPE_CHECKING:
    from flask import Flask

    from findimage.documents import IndexReport, SearchHit
    from findimage.filters import Filters
    from findimage.query import PathKind, Term
    from findimage.search import SearchRequest, SearchService
    from web.signin import SignIn

log = logging.getLogger("findimage")

EXIT_OK = 0
EXIT_FAILURE = 1
# The run went to its end, but some folder or file could not be read: the index kept what
# it had for them.
EXIT_INCOMPLETE = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="findimage",
        description="Search a shared image library by text or by example picture.",
        epilog="Settings come from FINDIMAGE_* environment variables or a .env file; "
        "see the README for the full list.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more details (-vv for debug)"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('findimage')}")
    # -v after the command too; SUPPRESS keeps a subcommand from resetting the count to 0.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="log more details (-vv for debug)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    index = commands.add_parser(
        "index",
        parents=[verbose],
        help="index the library (incremental)",
        description="Bring the index in line with the library: embed new and changed "
        "pictures, drop the ones that are gone. Unchanged pictures are not embedded again. "
        "A folder inside the library refreshes only that folder.",
    )
    index.add_argument(
        "path",
        nargs="?",
        type=_location,
        help="the library's root, or a folder inside it, or s3://bucket/prefix (default: "
        "FINDIMAGE_LIBRARY, else the library the index was built from)",
    )
    index.add_argument("--dry-run", action="store_true", help="only say what would change")
    index.add_argument(
        "--replace",
        action="store_true",
        help="start over with PATH as the library, dropping the pictures of the one indexed "
        "before (vectors of identical pictures are reused)",
    )
    index.add_argument(
        "--rebuild",
        action="store_true",
        help="Elasticsearch only: embed everything into a new index, then swap the alias to it "
        "(searches keep working meanwhile)",
    )
    index.add_argument(
        "--shard",
        metavar="K/N",
        help="Elasticsearch only: be worker K of N, indexing (and deleting) only the pictures "
        "of shard K; N workers K=1..N together do what one run does",
    )
    index.add_argument(
        "--into",
        metavar="NAME",
        help="with --shard: write the new index NAME that `--rebuild --prepare` printed, "
        "instead of the live one",
    )
    index.add_argument(
        "--prepare",
        action="store_true",
        help="with --rebuild: only create the new index for --shard workers, and print its name",
    )
    index.add_argument(
        "--swap",
        metavar="NAME",
        help="with --rebuild: put the prepared index NAME live once every shard reported done",
    )
    index.add_argument("--json", action="store_true", help="print a JSON report, no progress bar")
    index.add_argument(
        "--watch",
        action="store_true",
        help="after indexing, keep following the library's changes (Ctrl-C stops): pictures "
        "copied in, changed, moved or deleted are indexed within seconds",
    )
    index.set_defaults(handler=_index, usage_error=index.error)

    search = commands.add_parser(
        "search",
        parents=[verbose],
        help="search by text, by a picture, or like an indexed picture",
        description="Find the pictures closest to a description, a picture file, "
        "or an already indexed picture.",
    )
    search.add_argument(
        "text",
        nargs="*",
        help="what to look for, in any language; terms combine with + and -, a weight "
        "goes before a colon, like:ID names an indexed picture, a picture file "
        "stands for itself and double quotes keep words whole: "
        '"2:golden retriever" + ./pool.jpg - fruit',
    )
    # The picture and the id options exclude each other; with text they are checked in main
    # (a '*' positional cannot join a mutually exclusive group that --image alone satisfies).
    example = search.add_mutually_exclusive_group()
    example.add_argument("--image", type=Path, metavar="FILE", help="find pictures like this file")
    example.add_argument(
        "--like", metavar="ID", help="find pictures like this indexed picture (id or its start)"
    )
    search.add_argument(
        "-k", type=int, metavar="N", help="how many results (default: FINDIMAGE_TOP_K)"
    )
    search.add_argument("--in", dest="folder", metavar="FOLDER", help="only this folder and below")
    search.add_argument(
        "--after",
        metavar="DATE",
        help="only pictures from this date on (2024, 2024-06 or 2024-06-03): the date they "
        "were taken (EXIF), else their file's date",
    )
    search.add_argument(
        "--before", metavar="DATE", help="only pictures from before this date (same forms)"
    )
    search.add_argument(
        "--near",
        metavar="LAT,LON,KM",
        help="only pictures taken within KM km of this point, by their EXIF GPS",
    )
    search.add_argument("--json", action="store_true", help="print JSON")
    search.add_argument(
        "-f",
        "--paths",
        action="store_true",
        help="print only the pictures' absolute paths, one per line, best first (for pipes)",
    )
    search.set_defaults(handler=_search, usage_error=search.error)

    status = commands.add_parser(
        "status",
        parents=[verbose],
        help="show the index and its models",
        description="Show what the index holds.",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_status)

    serve = commands.add_parser(
        "serve",
        parents=[verbose],
        help="run the Slack bot",
        description="Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, otherwise "
        "an HTTP server for /slack/events on FINDIMAGE_PORT. With SLACK_CLIENT_ID and "
        "SLACK_CLIENT_SECRET, the same server shows the search page at / behind Sign in with "
        "Slack. See docs/slack.md.",
    )
    serve.add_argument("--host", default="0.0.0.0", help="HTTP address (default: 0.0.0.0)")
    serve.add_argument(
        "--watch",
        action="store_true",
        help="keep the index in line with the library beside the bot, as `index --watch`",
    )
    serve.set_defaults(handler=_serve)

    web = commands.add_parser(
        "web",
        parents=[verbose],
        help="serve the search page in a browser",
        description="Serve a search page: a grid of results, a photo dropped or pasted, "
        "More like this, the folder, date and place filters. It listens on 127.0.0.1 only, "
        "unless Sign in with Slack is set up (docs/slack.md). Ctrl-C stops.",
    )
    web.add_argument("--host", help="address to listen on (default: FINDIMAGE_WEB_HOST, 127.0.0.1)")
    web.add_argument(
        "--port",
        type=int,
        help="port (default: FINDIMAGE_WEB_PORT, 8765; 0 picks a free one)",
    )
    web.add_argument("--open", action="store_true", help="open the page in the default browser")
    web.set_defaults(handler=_web)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(
        _negative_values_attached(sys.argv[1:] if argv is None else argv)
    )
    if args.command == "index":
        _check_index_options(args)
    if args.command == "search":
        given = [bool(args.text), args.image is not None, args.like is not None]
        if given.count(True) != 1:
            args.usage_error("give a description, --image FILE or --like ID (one of them)")
    _configure_logging(args.verbose)
    try:
        settings = load_settings()
        code: int = args.handler(args, settings)
        # A reader that went away (`| head -1`) shows here, not in the flush at exit.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _reader_gone()
    except FindImageError as exc:
        # One line whatever the message holds: a file name may carry a newline or an escape.
        print(f"findimage: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if getattr(args, "rebuild", False):
            print(
                "findimage: interrupted; the rebuild was abandoned and the live index left as it "
                "was: run `findimage index --rebuild` again to start it over.",
                file=sys.stderr,
            )
        else:
            print(
                "findimage: interrupted; run the same command again to carry on.", file=sys.stderr
            )
        return 130
    except Exception as exc:
        print(
            f"findimage: unexpected {type(exc).__name__}: {printable(str(exc))}. "
            "Run again with -v for details.",
            file=sys.stderr,
        )
        if args.verbose:
            log.error("details", exc_info=True)
        return EXIT_FAILURE


# An option whose value may start with a minus (the southern hemisphere, the west), which
# argparse would otherwise take for an option: `--near -33.87,151.21,10`.
_SIGNED_VALUE_OPTIONS = ("--near",)
_SIGNED_VALUE = re.compile(r"^-\s*\.?\d")


def _negative_values_attached(argv: Sequence[str]) -> list[str]:
    """argv with `--near -33.87,...` written `--near=-33.87,...`, which argparse reads as a value.

    argparse takes any word that starts with '-' and is not a plain number for an option
    (https://docs.python.org/3/library/argparse.html#arguments-containing); an abbreviation
    such as `--ne` is attached the same way. Nothing after `--` is touched.
    """
    words = list(argv)
    attached: list[str] = []
    place = 0
    while place < len(words):
        word = words[place]
        if word == "--":
            return attached + words[place:]
        value = words[place + 1] if place + 1 < len(words) else ""
        if (
            len(word) >= 3
            and any(option.startswith(word) for option in _SIGNED_VALUE_OPTIONS)
            and _SIGNED_VALUE.match(value)
        ):
            attached.append(f"{word}={value}")
            place += 2
            continue
        attached.append(word)
        place += 1
    return attached


def _reader_gone() -> int:
    """The end of a command whose output pipe was closed (`findimage search ... | head -1`):
    quietly, with the status a shell gives a command that SIGPIPE ended (128 + 13).

    stdout is pointed at /dev/null so that the flush at exit has nowhere to fail, as
    https://docs.python.org/3/library/signal.html#note-on-sigpipe advises.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


def _check_index_options(args: argparse.Namespace) -> None:
    """Options of `findimage index` that cannot go together: a usage error naming them."""
    if args.watch:
        others = [
            name
            for name in ("dry_run", "rebuild", "replace", "json", "shard")
            if getattr(args, name)
        ]
        if others:
            args.usage_error(f"--watch cannot go with --{others[0].replace('_', '-')}")
    for option in ("prepare", "swap"):
        if getattr(args, option) and not args.rebuild:
            args.usage_error(f"--{option} goes with --rebuild")
    if args.prepare and args.swap:
        args.usage_error("--prepare and --swap are two steps: run them one after the other")
    if args.into and not args.shard:
        args.usage_error("--into goes with --shard K/N")
    if args.shard and (args.rebuild or args.replace):
        args.usage_error(
            "--shard cannot go with --rebuild or --replace: for a rebuild over workers, run "
            "--rebuild --prepare, then --shard K/N --into NAME, then --rebuild --swap NAME"
        )


def _index(args: argparse.Namespace, settings: Settings) -> int:
    from findimage.factory import build_indexer, build_store, index_target, sharded_target
    from findimage.presenters import report_output
    from findimage.skips import not_said_before
    from findimage.stores.base import check_model_names
    from indexer.scope import library_to_index, whole_library
    from indexer.shards import parse_shard

    if args.watch:
        return _watch(args.path, settings)
    if args.prepare or args.swap:
        return _distributed_rebuild(args, settings)
    shard = parse_shard(args.shard) if args.shard else None
    with closing(build_store(settings, repair=not args.dry_run)) as store:
        path = library_to_index(args.path, settings, store.library_root())
        if args.rebuild or args.into:
            path = whole_library(path, store.library_root(), args.replace, store.location_setting)
        elif shard is None:
            # Said at once, even on a run that turns out to need no model.
            check_model_names(store.models(), settings.image_model, settings.text_model)
        if shard is not None:
            target, progress = sharded_target(settings, store, shard, args.into)
            report = build_indexer(settings, target).run(
                path,
                dry_run=args.dry_run,
                progress=not args.json,
                shard=shard,
                shard_progress=None if args.dry_run else progress,
            )
        else:
            with index_target(settings, store, args.rebuild) as target:
                report = build_indexer(settings, target).run(
                    path, dry_run=args.dry_run, progress=not args.json, replace=args.replace
                )
        library = store.library_root() or str(path)
    new_skips = None
    if not (args.json or args.dry_run):
        # Each skipped file is named once, not on every run that tries it again.
        new_skips = not_said_before(report.skipped, settings.data_dir, library)
    print(report_output(report, args.json, new_skips))
    return EXIT_INCOMPLETE if report.incomplete else EXIT_OK


def _distributed_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    """`--rebuild --prepare` prints the new index's name; `--rebuild --swap NAME` puts it live."""
    from findimage.factory import build_store, prepare_rebuild, swap_rebuild

    with closing(build_store(settings)) as store:
        if args.prepare:
            print(prepare_rebuild(settings, store))
        elif swap_rebuild(settings, store, args.swap):
            print(f"{args.swap} is now live behind {settings.es_index}.")
        else:
            print(f"{args.swap} was already live behind {settings.es_index}.")
    return EXIT_OK


def _watch(given: Path | str | None, settings: Settings) -> int:
    """Index, then follow the library's changes until Ctrl-C, one line per applied burst."""
    from findimage.factory import build_store, build_watcher
    from findimage.stores.base import check_model_names
    from indexer.scope import folder_to_watch, library_to_index
    from indexer.watch import burst_line

    def report(report: IndexReport, folder: str) -> None:
        if line := burst_line(report, folder):
            print(f"{datetime.now():%H:%M:%S} {printable(line)}", flush=True)

    with closing(build_store(settings, repair=True)) as store:
        path = folder_to_watch(library_to_index(given, settings, store.library_root()))
        check_model_names(store.models(), settings.image_model, settings.text_model)
        watcher = build_watcher(settings, store, path, report)
        print(
            f"findimage: watching {printable(str(path))}; Ctrl-C stops.",
            file=sys.stderr,
            flush=True,
        )
        watcher.run(progress=True)
    print("findimage: stopped watching.", file=sys.stderr)
    return EXIT_OK


def _location(written: str) -> Path | str:
    """A folder, or an object store's s3:// URL (which a Path would fold to s3:/)."""
    return written.rstrip("/") if written.startswith("s3://") else Path(written)


def _search_folder(written: str | None, root: Path | str | None) -> str | None:
    """The folder --in names, as the store names it (from the library's root).

    People type it the way their shell shows it: from the library's root (marketing/2024),
    from the current folder (cd Pictures/team; --in marketing), or as an absolute path; a
    folder of this machine counts when it lies inside the library.
    """
    from findimage.library import is_object_store
    from findimage.search import OUTSIDE_FOLDER, library_folder

    if written is None:
        return None
    if root is None or is_object_store(root):
        if Path(written).is_absolute():
            raise ConfigError(OUTSIDE_FOLDER)
        return library_folder(written) or None
    given = Path(written).expanduser()
    here = given if given.is_absolute() else Path.cwd() / given
    if given.is_absolute() or here.is_dir():
        inside = _inside(here, Path(root))
        if inside is not None:
            return inside or None
        if given.is_absolute():
            raise ConfigError(
                f"{written} is not inside the library {root}: give a folder inside it, as a "
                "path or from the library's root like marketing/2024."
            )
    return library_folder(written) or None


def _inside(folder: Path, root: Path) -> str | None:
    """`folder` from `root` ('' for the root itself), or None when it lies outside.

    Compared as written and with links resolved, so a library recorded through a link
    matches a folder given without it, and the other way round.
    """
    written = Path(os.path.abspath(folder)), Path(os.path.abspath(root))
    for candidate, base in (written, (folder.resolve(), root.resolve())):
        if candidate.is_relative_to(base):
            relative = candidate.relative_to(base).as_posix()
            return "" if relative == "." else relative
    return None


def _search(args: argparse.Namespace, settings: Settings) -> int:
    from findimage.factory import build_search_service
    from findimage.presenters import no_pictures_in_folder, results_output
    from findimage.search import SearchRequest
    from findimage.terminal import supports_hyperlinks

    k = args.k if args.k is not None else settings.top_k
    if k < 1:
        raise ConfigError("-k must be at least 1.")
    filters = _search_filters(args)
    # The query is read, and a picture file that cannot be read found, before the index is
    # opened; the search decodes the pictures before it loads any model.
    terms = _query_terms(args)
    pictures = {
        term.value: _picture_file(Path(term.value), settings.max_file_bytes)
        for term in terms
        if term.kind == "picture"
    }
    with build_search_service(settings) as service:
        root = service.library_root()
        folder = _search_folder(args.folder, root or settings.library)
        request = SearchRequest(
            tuple(terms), k=k, folder=folder, filters=filters, pictures=pictures
        )
        hits, title = _find(service, args, request)
    if args.paths:
        from findimage.library import disk_path, joined

        sys.stdout.flush()
        for hit in hits:
            # The file system's own bytes, so that `xargs` and friends open the very file.
            path = joined(root or "", disk_path(hit.document.path))
            sys.stdout.buffer.write(os.fsencode(path) + b"\n")
        sys.stdout.buffer.flush()
        return EXIT_OK
    if not hits and folder:
        # A folder the library does not have is a mistake; one with no pictures is an answer.
        _check_folder_exists(root, folder)
        if not filters and not args.json:
            print(no_pictures_in_folder(folder))
            return EXIT_OK
    links = supports_hyperlinks(sys.stdout, os.environ)
    print(results_output(hits, root, title, args.json, links))
    return EXIT_OK


def _check_folder_exists(root: str | None, folder: str) -> None:
    """No hits in --in FOLDER: say so plainly when the library has no such folder (a typo),
    rather than that no picture matched. Only a library on this machine can be looked at."""
    from findimage.library import is_object_store

    # A library that is not on this machine (an index shared through Elasticsearch) cannot be
    # looked at either.
    if root is None or is_object_store(root) or not Path(root).is_dir():
        return
    if (Path(root) / folder).is_dir():
        return
    raise ConfigError(
        f"The library {root} has no folder {folder}: give a folder inside it, written from "
        "its root like marketing/2024."
    )


def _search_filters(args: argparse.Namespace) -> Filters:
    from findimage.filters import Filters, checked, parse_date, parse_place

    return checked(
        Filters(
            after=parse_date(args.after, "--after") if args.after is not None else None,
            before=parse_date(args.before, "--before") if args.before is not None else None,
            near=parse_place(args.near, "--near") if args.near is not None else None,
        ),
        ("--after", "--before"),
    )


def _query_terms(args: argparse.Namespace) -> list[Term]:
    """The terms of the query, whichever way it was given."""
    from findimage.query import Term, like_term, parse_query

    if args.image is not None:
        return [Term("picture", str(args.image))]
    if args.like is not None:
        return [like_term(args.like)]
    return parse_query(" ".join(args.text), path_kind=_path_kind)


# The start of a term that can only be a path: ./ ../ / ~/ or ~user/.
_PATH_START = re.compile(r"^(?:\.{0,2}/|~[^\s/]*/|~$)")


def _path_kind(term: str) -> PathKind:
    """A term is a picture file when it looks like a path to one and the file is there: a
    word that happens to name a file in the current folder stays a word. A term that can
    only be a path (./, ../, /, ~, a picture's extension) and names no file is a mistake to
    report, not words to search."""
    from findimage.images import IMAGE_EXTENSIONS
    from findimage.raw import RAW_EXTENSIONS

    # os.path's expanduser leaves ~name alone when there is no such user (Path's raises).
    path = Path(os.path.expanduser(term))
    surely_a_path = bool(_PATH_START.match(term.replace(os.sep, "/"))) or (
        path.suffix.lower() in IMAGE_EXTENSIONS | RAW_EXTENSIONS
    )
    if (surely_a_path or "/" in term or os.sep in term) and path.is_file():
        return "picture"
    return "missing" if surely_a_path else "text"


def _find(
    service: SearchService, args: argparse.Namespace, request: SearchRequest
) -> tuple[list[SearchHit], str]:
    """The hits for the request, and the title that says what was searched."""
    from findimage.search import PictureError

    try:
        outcome = service.search(request)
    except PictureError as exc:
        # Several files may be in the query: the sentence names the one at fault.
        raise ConfigError(f"The picture {exc.name} cannot be used: {exc.reason}.") from None
    if outcome.cut_note:
        print(f"findimage: note: {printable(outcome.cut_note)}", file=sys.stderr)
    if args.image is not None:
        title = f"Pictures like {args.image}, best first:"
    elif args.like is not None:
        title = f"Pictures like {args.like}, best first:"
    else:
        title = f'Pictures for "{outcome.description}", best first:'
    if request.filters:
        title = title.replace(", best first:", f", {request.filters.describe()}, best first:")
    return outcome.hits, title


def _picture_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a picture to search with, read without blocking (a FIFO is refused, not
    waited on); any problem reading it is one sentence naming the file."""
    from findimage.images import read_regular_file

    path = Path(os.path.expanduser(path))
    try:
        return read_regular_file(path, max_bytes)
    except ImageError as exc:
        raise ConfigError(f"The picture {path} cannot be used: {exc}.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the picture {path}: {exc.strerror or exc}.") from None
    except Exception as exc:  # whatever else reading it raises concerns this file only
        log.info("reading %s", path, exc_info=True)
        raise ConfigError(f"Cannot read the picture {path}: {type(exc).__name__}.") from None


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from findimage.factory import build_search_service
    from findimage.presenters import status_dict, status_output

    with build_search_service(settings) as service:
        if settings.backend == "elasticsearch" and settings.es_text_model_id:
            text_vectors = f"{settings.es_text_model_id} in Elasticsearch"
            data = status_dict(service.status(), text_vectors, service.text_model_problem())
        else:
            data = status_dict(service.status())
    print(status_output(data, args.json))
    return EXIT_OK


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import serve
    from findimage.factory import build_search_service

    # Refused before the index is opened or a model loaded.
    sign_in = _sign_in(settings)
    # The bot runs unattended and loads its models in the background: what a terminal
    # command would say about a slow load is an INFO log record here (shown with -v).
    notices.handlers.clear()
    notices.setLevel(logging.NOTSET)
    notices.propagate = True
    with build_search_service(settings) as service:
        if problem := service.text_model_problem():
            log.warning("%s", problem)
        settings = _previewed_library(settings, service)
        # The team's page only behind Sign in with Slack: without it, `/` stays a 404.
        page = _page(settings, service, None, sign_in) if sign_in else None
        with _watching_beside(settings) if args.watch else nullcontext():
            serve(settings, service, host=args.host, page=page)
    return EXIT_OK


def _web(args: argparse.Namespace, settings: Settings) -> int:
    import webbrowser

    from findimage.factory import build_search_service
    from web.server import WebServer, host_names, require_loopback

    host = args.host or settings.web_host
    port = settings.web_port if args.port is None else args.port
    # Refused before the index is opened or a model loaded: another address than loopback
    # only behind Sign in with Slack.
    sign_in = _sign_in(settings)
    if sign_in is None:
        require_loopback(host)
    with build_search_service(settings) as service:
        names = None if sign_in else host_names(host)
        server = WebServer(
            _page(settings, service, names, sign_in), host, port, signed_in=sign_in is not None
        )
        print(f"findimage web: {server.url} (Ctrl-C stops)", flush=True)
        if args.open:
            webbrowser.open(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    return EXIT_OK


def _page(
    settings: Settings,
    service: SearchService,
    names: frozenset[str] | None,
    sign_in: SignIn | None,
) -> Flask:
    """The search page's WSGI app on the library the index records (or the setting's), with
    its thumbnail cache in the data dir."""
    from findimage.library import open_library
    from findimage.thumbnails import ThumbnailCache
    from web.app import WebDependencies, create_app

    root = settings.library or service.library_root()
    library = open_library(root, settings.s3_endpoint_url) if root else None
    thumbnails = (
        ThumbnailCache(settings.data_dir / "thumbnails", library, settings.max_file_bytes)
        if library is not None
        else None
    )
    dependencies = WebDependencies(
        service=service,
        library=library,
        thumbnails=thumbnails,
        max_file_bytes=settings.max_file_bytes,
        host_names=names,
    )
    return create_app(dependencies, sign_in)


def _sign_in(settings: Settings) -> SignIn | None:
    """Sign in with Slack for the page when SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set,
    else None; what else it needs missing is one sentence."""
    from web.signin import SignIn, SignInConfig

    client_id = (settings.slack_client_id or "").strip()
    secret = settings.slack_client_secret
    client_secret = secret.get_secret_value().strip() if secret is not None else ""
    if not client_id and not client_secret:
        return None
    if not client_id or not client_secret:
        missing = "SLACK_CLIENT_SECRET" if client_id else "SLACK_CLIENT_ID"
        raise ConfigError(
            f"Sign in with Slack needs {missing} too: copy it from the Slack app's Basic "
            "Information page."
        )
    if not settings.public_base_url:
        raise ConfigError(
            "Sign in with Slack needs FINDIMAGE_PUBLIC_BASE_URL: the address people open the "
            "page at, where Slack sends them back."
        )
    config = SignInConfig(
        client_id=client_id,
        client_secret=client_secret,
        public_url=settings.public_base_url,
        team_id=_team_id(settings),
        allowed_users=parse_ids(settings.allowed_users),
        slack_api_url=settings.slack_api_url,
    )
    return SignIn(config)


def _team_id(settings: Settings) -> str:
    """The workspace whose members may sign in: FINDIMAGE_SLACK_TEAM_ID, else the bot token's
    (auth.test)."""
    from bot.app import workspace_team_id

    if settings.slack_team_id and settings.slack_team_id.strip():
        return settings.slack_team_id.strip()
    if settings.slack_bot_token is None or not settings.slack_bot_token.get_secret_value():
        raise ConfigError(
            "Sign in with Slack needs the team's workspace: set FINDIMAGE_SLACK_TEAM_ID "
            "(or SLACK_BOT_TOKEN, to ask Slack)."
        )
    return workspace_team_id(settings)


def _previewed_library(settings: Settings, service: SearchService) -> Settings:
    """The settings with the library the bot previews from: the library setting, else the
    library the index records (docs/slack.md's steps set no library: `index FOLDER`, then
    `serve`)."""
    from findimage.library import is_object_store

    if settings.library is not None:
        return settings
    try:
        recorded = service.library_root()
    except Exception as exc:  # the bot still answers (with paths); its answers say what fails
        log.warning(
            "could not read which library the index was built from (%s): answers will list "
            "paths without previews until the bot is restarted",
            exc,
        )
        return settings
    if recorded is None:
        return settings
    if is_object_store(recorded):
        return settings.model_copy(update={"library": recorded})
    if not Path(recorded).is_dir():
        log.warning(
            "the library this index was built from, %s, is not a folder any more: "
            "answers will list paths without previews",
            recorded,
        )
        return settings
    return settings.model_copy(update={"library": Path(recorded)})


@contextmanager
def _watching_beside(settings: Settings) -> Iterator[None]:
    """Watch mode on a thread of the bot's process, with its own store; stopped with the bot.

    Its lines go to the log. A first run that fails (the store unreachable for a moment,
    another run writing the index) is tried again with a back-off until it succeeds; the
    watching starts after it. Nothing the watcher meets stops the bot.
    """
    from findimage.factory import build_store, build_watcher
    from indexer.scope import folder_to_watch, library_to_index
    from indexer.watch import burst_line

    def report(report: IndexReport, folder: str) -> None:
        if line := burst_line(report, folder):
            log.info("watch: %s", line)

    store = build_store(settings)
    path = folder_to_watch(library_to_index(None, settings, store.library_root()))
    watcher = build_watcher(settings, store, path, report)

    def follow() -> None:
        try:
            watcher.run(retry_catch_up=True)
        except FindImageError as exc:
            log.error("watching %s stopped: %s", path, exc)
        except Exception:
            log.exception("watching %s stopped", path)

    thread = threading.Thread(target=follow, name="findimage-watch", daemon=True)
    thread.start()
    log.info("watching %s for changes", path)
    try:
        yield
    finally:
        watcher.stop()
        thread.join()
        store.close()


class _NoticeHandler(logging.Handler):
    """Notices as bare lines on stderr, printed clear of a progress bar that may be showing."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(printable(self.format(record)), file=sys.stderr)


class _PrintableFormatter(logging.Formatter):
    """Log lines as every other line the CLI shows: a file name's control characters escaped.

    Only the message line: a traceback after it keeps its own lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def _configure_logging(verbosity: int) -> None:
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)]
    handler = logging.StreamHandler()
    handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # The picture libraries' warnings about one file (Pillow's "Corrupt EXIF data") are
    # details for -v, not lines beside the CLI's own: through logging, shown at -v.
    logging.captureWarnings(True)
    if verbosity < 1:
        logging.getLogger("py.warnings").setLevel(logging.ERROR)
    notices.handlers = [_NoticeHandler()]
    notices.setLevel(logging.INFO)
    notices.propagate = False
    if verbosity < 2:
        # The model libraries chat on stderr (weights progress, advice); keep the user's view clean.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        for name in (
            "sentence_transformers",
            "transformers",
            "huggingface_hub",
            "urllib3",
            "elastic_transport",
        ):
            logging.getLogger(name).setLevel(logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
