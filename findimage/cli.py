"""The `findimage` command line: index, search, status, serve."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from findimage.errors import ConfigError, FindImageError, ImageError
from findimage.notices import notices
from findimage.settings import Settings, load_settings
from findimage.terminal import printable

if TYPE_CHECKING:
    from findimage.documents import IndexReport, SearchHit
    from findimage.filters import Filters
    from findimage.images import DecodedImage
    from findimage.query import Term
    from findimage.search import SearchQuery, SearchService
    from findimage.stores.base import VectorStore

log = logging.getLogger("findimage")

EXIT_OK = 0
EXIT_FAILURE = 1


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
        "FINDIMAGE_STORE, else the library the index was built from)",
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
        "goes before a colon, like:ID names an indexed picture and a picture file "
        'stands for itself: "2:golden retriever" + ./pool.jpg - fruit',
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
        "an HTTP server for /slack/events on FINDIMAGE_PORT. See docs/slack.md.",
    )
    serve.add_argument("--host", default="0.0.0.0", help="HTTP address (default: 0.0.0.0)")
    serve.add_argument(
        "--watch",
        action="store_true",
        help="keep the index in line with the library beside the bot, as `index --watch`",
    )
    serve.set_defaults(handler=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "index" and args.watch:
        others = [name for name in ("dry_run", "rebuild", "replace", "json") if getattr(args, name)]
        if others:
            args.usage_error(f"--watch cannot go with --{others[0].replace('_', '-')}")
    if args.command == "search":
        given = [bool(args.text), args.image is not None, args.like is not None]
        if given.count(True) != 1:
            args.usage_error("give a description, --image FILE or --like ID (one of them)")
    _configure_logging(args.verbose)
    try:
        settings = load_settings()
        return args.handler(args, settings)
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
            f"findimage: unexpected {type(exc).__name__}: {exc}. Run again with -v for details.",
            file=sys.stderr,
        )
        if args.verbose:
            log.error("details", exc_info=True)
        return EXIT_FAILURE


def _index(args: argparse.Namespace, settings: Settings) -> int:
    from findimage.factory import build_indexer, build_store
    from findimage.presenters import report_output
    from findimage.stores.base import check_model_names

    if args.watch:
        return _watch(args.path, settings)
    with closing(build_store(settings, repair=not args.dry_run)) as store:
        path = _library_path(args.path, settings, store)
        if args.rebuild:
            path = _whole_library(path, store, args.replace)
        else:
            # Said at once, even on a run that turns out to need no model.
            check_model_names(store.models(), settings.image_model, settings.text_model)
        with _index_target(store, args.rebuild, settings) as target:
            report = build_indexer(settings, target).run(
                path, dry_run=args.dry_run, progress=not args.json, replace=args.replace
            )
    print(report_output(report, args.json))
    return EXIT_OK


def _watch(given: Path | str | None, settings: Settings) -> int:
    """Index, then follow the library's changes until Ctrl-C, one line per applied burst."""
    from findimage.factory import build_indexer, build_store, watch_settings
    from findimage.stores.base import check_model_names
    from indexer.watch import LibraryWatcher, burst_line

    def report(report: IndexReport, folder: str) -> None:
        if line := burst_line(report, folder):
            print(f"{datetime.now():%H:%M:%S} {printable(line)}", flush=True)

    with closing(build_store(settings, repair=True)) as store:
        path = _folder_to_watch(_library_path(given, settings, store))
        check_model_names(store.models(), settings.image_model, settings.text_model)
        watcher = LibraryWatcher(
            build_indexer(settings, store),
            path,
            watch_settings(settings),
            report,
            ignore=[settings.data_dir],
        )
        print(f"findimage: watching {path}; Ctrl-C stops.", file=sys.stderr, flush=True)
        watcher.run(progress=True)
    print("findimage: stopped watching.", file=sys.stderr)
    return EXIT_OK


def _location(written: str) -> Path | str:
    """A folder, or an object store's s3:// URL (which a Path would fold to s3:/)."""
    return written.rstrip("/") if written.startswith("s3://") else Path(written)


def _folder_to_watch(location: Path | str) -> Path:
    if isinstance(location, str):
        raise ConfigError(
            "Watch mode follows folders of this machine; for a library in object storage, run "
            "`findimage index` on a schedule instead (it lists the bucket and reads only "
            "what changed)."
        )
    return location


def _library_path(given: Path | str | None, settings: Settings, store: VectorStore) -> Path | str:
    """The folder (or s3:// URL) to index: the one given, else FINDIMAGE_STORE, else the
    indexed library."""
    from findimage.library import is_object_store

    if isinstance(given, str) or (given is None and isinstance(settings.library, str)):
        return given or settings.require_library()
    if given is None and settings.library is None and is_object_store(store.library_root()):
        return str(store.library_root())
    if given is not None:
        if not given.is_dir():
            raise ConfigError(f"{given} is not a folder: give the folder of pictures to index.")
        return given
    if settings.library is None and (recorded := store.library_root()) is not None:
        if not Path(recorded).is_dir():
            raise ConfigError(
                f"The library this index was built from, {recorded}, is not a folder any more: "
                "give its new place with `findimage index FOLDER --replace`."
            )
        return Path(recorded)
    return settings.require_library()


def _whole_library(path: Path | str, store: VectorStore, replace: bool) -> Path | str:
    """A rebuild embeds the whole library again; a folder inside it would drop the rest."""
    from indexer.indexer import library_scope

    scope = library_scope(path, store.library_root(), replace, store.location_setting)
    if scope.folder:
        raise ConfigError(
            f"--rebuild embeds the whole library again: run it on {scope.root}, "
            "not on a folder inside it."
        )
    return scope.root


def _index_target(
    store: VectorStore, rebuild: bool, settings: Settings
) -> AbstractContextManager[VectorStore]:
    """The store itself, or with --rebuild a new Elasticsearch index that replaces it at the end."""
    if not rebuild:
        return nullcontext(store)
    from findimage.stores.elasticsearch.store import ElasticsearchStore

    if not isinstance(store, ElasticsearchStore):
        raise ConfigError(
            "--rebuild is for FINDIMAGE_BACKEND=elasticsearch; to rebuild the embedded index, "
            f"delete {settings.data_dir} and run `findimage index` again."
        )
    return store.rebuilding(settings.image_model, settings.text_model)


def _search_folder(written: str | None) -> str | None:
    """--in names a folder inside the library, from its root; never a path of this machine."""
    from findimage.search import OUTSIDE_FOLDER, library_folder

    if written is None:
        return None
    if Path(written).is_absolute():
        raise ConfigError(OUTSIDE_FOLDER)
    return library_folder(written) or None


def _search(args: argparse.Namespace, settings: Settings) -> int:
    from findimage.factory import build_search_service
    from findimage.presenters import results_output
    from findimage.search import SearchQuery
    from findimage.terminal import supports_hyperlinks

    k = args.k if args.k is not None else settings.top_k
    if k < 1:
        raise ConfigError("-k must be at least 1.")
    query = SearchQuery(k=k, folder=_search_folder(args.folder), filters=_search_filters(args))
    # The query is read, and a bad query picture found, before the index is opened or a
    # model loaded.
    terms = _query_terms(args)
    pictures = {
        term.value: _query_picture(Path(term.value), settings)
        for term in terms
        if term.kind == "picture"
    }
    with build_search_service(settings) as service:
        hits, title = _find(service, args, terms, query, pictures)
        root = service.library_root()
    links = supports_hyperlinks(sys.stdout, os.environ)
    print(results_output(hits, root, title, args.json, links))
    return EXIT_OK


def _search_filters(args: argparse.Namespace) -> Filters:
    from findimage.filters import Filters, checked, parse_date, parse_place

    return checked(
        Filters(
            after=parse_date(args.after, "--after") if args.after else None,
            before=parse_date(args.before, "--before") if args.before else None,
            near=parse_place(args.near, "--near") if args.near else None,
        )
    )


def _query_terms(args: argparse.Namespace) -> list[Term]:
    """The terms of the query, whichever way it was given."""
    from findimage.query import Term, parse_query

    if args.image is not None:
        return [Term("picture", str(args.image))]
    if args.like is not None:
        return [Term("like", args.like.strip().lower())]
    return parse_query(" ".join(args.text), is_picture=_names_a_picture)


def _names_a_picture(term: str) -> bool:
    """A term is a picture file when it looks like a path to one and the file is there: a
    word that happens to name a file in the current folder stays a word."""
    from findimage.images import IMAGE_EXTENSIONS
    from findimage.raw import RAW_EXTENSIONS

    path = Path(term).expanduser()
    looks_like_a_path = "/" in term or os.sep in term or term.startswith("~")
    suffix = path.suffix.lower()
    return (looks_like_a_path or suffix in IMAGE_EXTENSIONS | RAW_EXTENSIONS) and path.is_file()


def _find(
    service: SearchService,
    args: argparse.Namespace,
    terms: list[Term],
    query: SearchQuery,
    pictures: dict[str, DecodedImage],
) -> tuple[list[SearchHit], str]:
    """The hits for the query, and the title that says what was searched."""
    from findimage.query import is_plain_text
    from findimage.search import cut_note

    # The search comes first: it refuses a missing index before any model loads.
    hits = service.by_terms(terms, query, pictures)
    if args.image is not None:
        title = f"Pictures like {args.image}, best first:"
    elif args.like is not None:
        title = f"Pictures like {args.like}, best first:"
    elif is_plain_text(terms):
        fitted = service.fit_text(terms[0].value)
        if fitted.cut:
            print(f"findimage: note: {cut_note(fitted)}", file=sys.stderr)
        title = f'Pictures for "{fitted.text}", best first:'
    else:
        title = f'Pictures for "{" ".join(args.text)}", best first:'
    if query.filters:
        title = title.replace(", best first:", f", {query.filters.describe()}, best first:")
    return hits, title


def _query_picture(path: Path, settings: Settings) -> DecodedImage:
    """The picture to search with; any problem with it is one sentence naming the file."""
    from findimage.images import decode_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Cannot read the picture {path}: {exc.strerror or exc}.") from None
    try:
        return decode_image(data, settings.max_file_bytes)
    except ImageError as exc:
        raise ConfigError(f"The picture {path} cannot be used: {exc}.") from None


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

    # The bot runs unattended and loads its models in the background: what a terminal
    # command would say about a slow load is an INFO log record here (shown with -v).
    notices.handlers.clear()
    notices.setLevel(logging.NOTSET)
    notices.propagate = True
    with build_search_service(settings) as service:
        if problem := service.text_model_problem():
            log.warning("%s", problem)
        with _watching_beside(settings) if args.watch else nullcontext():
            serve(settings, service, host=args.host)
    return EXIT_OK


@contextmanager
def _watching_beside(settings: Settings) -> Iterator[None]:
    """Watch mode on a thread of the bot's process, with its own store; stopped with the bot.

    Its lines go to the log; a failure stops the watching, not the bot.
    """
    from findimage.factory import build_indexer, build_store, watch_settings
    from indexer.watch import LibraryWatcher, burst_line

    def report(report: IndexReport, folder: str) -> None:
        if line := burst_line(report, folder):
            log.info("watch: %s", line)

    store = build_store(settings)
    path = _folder_to_watch(_library_path(None, settings, store))
    watcher = LibraryWatcher(
        build_indexer(settings, store), path, watch_settings(settings), report, [settings.data_dir]
    )

    def follow() -> None:
        try:
            watcher.run()
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

        tqdm.write(self.format(record), file=sys.stderr)


def _configure_logging(verbosity: int) -> None:
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
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
