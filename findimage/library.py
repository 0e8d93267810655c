"""Where the pictures are: a folder of this machine, or a prefix of an S3-compatible bucket.

Both read a picture by its path relative to the library, never anything outside it, and
say whether it is there now. An object store also lists its objects (by pages) with what
tells a changed one, and hands out presigned links to them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from findimage.errors import BackendUnavailableError, ConfigError, FindImageError, NotFoundError

log = logging.getLogger(__name__)

S3_SCHEME = "s3://"


class OutsideLibraryError(NotFoundError):
    """A document path that resolves outside the library root (a symlink, `..`)."""


class Library(Protocol):
    @property
    def location(self) -> str:
        """What the index records as the library: an absolute folder or an s3:// URL."""
        ...

    def read(self, relative_path: str, max_bytes: int) -> bytes:
        """The picture's bytes; NotFoundError when it is not there (or outside the library),
        ImageError when it is over `max_bytes`."""
        ...

    def exists(self, relative_path: str) -> bool: ...

    def presigned_url(self, relative_path: str, expires_seconds: int) -> str | None:
        """A link that fetches the picture without credentials, where the library has them."""
        ...


def is_object_store(location: str | Path | None) -> bool:
    return isinstance(location, str) and location.startswith(S3_SCHEME)


def joined(location: str, relative_path: str) -> str:
    """The picture's full location, for people: /lib/a/b.jpg or s3://bucket/prefix/a/b.jpg."""
    if is_object_store(location):
        return f"{location.rstrip('/')}/{relative_path}"
    return str(Path(location) / relative_path)


def shown_path(on_disk: str) -> str:
    """A relative path as the index keeps and shows it: the file system's own name, with each
    byte that is not UTF-8 (which Python reads as a lone surrogate) written as \\xNN, so ids,
    SQLite, JSON and terminals all take it."""
    return on_disk.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def disk_path(shown: str) -> str:
    """The file system's name for a path `shown_path` wrote (the reverse of it)."""
    if "\\x" not in shown:
        return shown
    return _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), shown)


# What backslashreplace writes for a byte that is not UTF-8 (0x80 to 0xff).
_ESCAPED_BYTE = re.compile(r"\\x([89a-f][0-9a-f])")


def open_library(location: str | Path, s3_endpoint_url: str | None = None) -> Library:
    if is_object_store(location):
        return ObjectStoreLibrary(str(location), s3_endpoint_url)
    return LocalFolder(Path(location))


class LocalFolder:
    def __init__(self, root: Path):
        self._root = root.resolve()

    @property
    def location(self) -> str:
        return str(self._root)

    def read(self, relative_path: str, max_bytes: int) -> bytes:
        from findimage.images import check_size

        path = self._inside(relative_path)
        try:
            check_size(path.stat().st_size, max_bytes)
            return path.read_bytes()
        except OSError as exc:
            raise NotFoundError(f"{relative_path} cannot be read from the library.") from exc

    def exists(self, relative_path: str) -> bool:
        try:
            return self._inside(relative_path).is_file()
        except OutsideLibraryError:
            return False

    def presigned_url(self, relative_path: str, expires_seconds: int) -> str | None:
        return None

    def _inside(self, relative_path: str) -> Path:
        path = (self._root / relative_path).resolve()
        if not path.exists() and (on_disk := disk_path(relative_path)) != relative_path:
            # A name with bytes that are not UTF-8, as the index spells it.
            path = (self._root / on_disk).resolve()
        if not path.is_relative_to(self._root):
            raise OutsideLibraryError(f"{relative_path} is not inside the library.")
        return path


@dataclass(frozen=True)
class StoredObject:
    """One object under the library's prefix, as a listing gives it."""

    relative_path: str
    size: int
    last_modified: float
    etag: str


class ObjectStoreLibrary:
    """A library under `s3://bucket/prefix` of any S3-compatible service, through s3fs.

    Credentials come the usual AWS ways (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a
    profile, an instance role: botocore's chain); `endpoint_url` (FINDIMAGE_S3_ENDPOINT_URL)
    points at MinIO, Ceph or another service, and botocore also reads AWS_ENDPOINT_URL.
    """

    def __init__(self, url: str, endpoint_url: str | None = None):
        rest = url[len(S3_SCHEME) :].strip("/")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ConfigError(
                f"{url} names no bucket: write it as s3://bucket or s3://bucket/prefix."
            )
        self._bucket, self._prefix = bucket, prefix.strip("/")
        self._endpoint_url = endpoint_url
        self._fs: Any = None

    @property
    def location(self) -> str:
        return f"{S3_SCHEME}{self._bucket}/{self._prefix}".rstrip("/")

    def objects(self, folder: str = "") -> Iterator[StoredObject]:
        """Every object under the prefix (or its `folder`), by key, from listings of a
        thousand keys a page: no object is read."""
        base = self._key("")
        start = self._key(folder) if folder else base
        with self._explained(f"list {self.location}"):
            found = self._filesystem().find(start, detail=True, withdirs=False)
        for key, info in sorted(found.items()):
            relative = key[len(base) :].lstrip("/") if base else key.partition("/")[2]
            if not relative or relative.endswith("/"):
                continue
            modified = info.get("LastModified")
            yield StoredObject(
                relative_path=relative,
                size=int(info.get("size", info.get("Size", 0))),
                last_modified=modified.timestamp() if modified is not None else 0.0,
                etag=str(info.get("ETag", "")).strip('"'),
            )

    def read(self, relative_path: str, max_bytes: int) -> bytes:
        # Imported here: the command line reads locations through this module at start-up,
        # before any picture code is needed.
        from findimage.images import check_size

        key = self._key(self._checked(relative_path))
        with (
            self._explained(f"read {relative_path}", missing=relative_path),
            self._filesystem().open(key, "rb") as stream,
        ):
            check_size(int(stream.size), max_bytes)
            # Bounded whatever the object became since it was listed.
            data = stream.read(max_bytes + 1)
        check_size(len(data), max_bytes)
        return data

    def exists(self, relative_path: str) -> bool:
        try:
            key = self._key(self._checked(relative_path))
            with self._explained(f"look for {relative_path}"):
                return bool(self._filesystem().isfile(key))
        except FindImageError as exc:
            log.warning("%s", exc)
            return False

    def presigned_url(self, relative_path: str, expires_seconds: int) -> str | None:
        key = self._key(self._checked(relative_path))
        with self._explained(f"sign a link to {relative_path}"):
            return str(self._filesystem().url(key, expires=expires_seconds))

    def _key(self, relative_path: str) -> str:
        return "/".join(part for part in (self._bucket, self._prefix, relative_path) if part)

    def _checked(self, relative_path: str) -> str:
        parts = relative_path.split("/")
        if not relative_path or relative_path.startswith("/") or ".." in parts:
            raise OutsideLibraryError(f"{relative_path} is not inside the library.")
        return relative_path

    def _filesystem(self) -> Any:
        if self._fs is None:
            try:
                import s3fs
            except ImportError:
                raise ConfigError(
                    f"{self.location} is in object storage, which needs the s3 extra: "
                    "pip install 'findimage[s3]'."
                ) from None

            client_kwargs = {"endpoint_url": self._endpoint_url} if self._endpoint_url else {}
            # No listing cache: the indexer must see objects changed since the last run.
            self._fs = s3fs.S3FileSystem(client_kwargs=client_kwargs, use_listings_cache=False)
        return self._fs

    @contextmanager
    def _explained(self, action: str, missing: str | None = None) -> Iterator[None]:
        """One sentence for what goes wrong with the store; the details go to the log, and no
        secret is in either (botocore's messages name no key)."""
        try:
            yield
        except FindImageError:
            raise
        except FileNotFoundError as exc:
            if missing is not None:
                raise NotFoundError(f"{missing} cannot be read from the library.") from exc
            raise ConfigError(
                f"The bucket {self._bucket} does not exist at this S3 endpoint: check "
                "FINDIMAGE_LIBRARY (and FINDIMAGE_S3_ENDPOINT_URL for MinIO or Ceph)."
            ) from exc
        except PermissionError as exc:
            # The details are the operator's (-v); the user gets the one sentence below.
            log.info("could not %s: %s", action, exc)
            if not _credentials_found():
                # s3fs then asks anonymously, and a private bucket refuses that.
                raise BackendUnavailableError(_no_credentials(self.location)) from None
            raise BackendUnavailableError(_refused(_error_code(exc), self.location)) from None
        except Exception as exc:
            log.info("could not %s: %r", action, exc)
            if _error_code(exc) == "InvalidBucketName" or "Invalid bucket name" in str(exc):
                raise ConfigError(
                    f"{self._bucket} is not a valid bucket name (S3 bucket names are 3 to 63 "
                    "lowercase letters, digits, dots and hyphens): check the s3:// location."
                ) from None
            raise BackendUnavailableError(_unreachable(exc, self.location)) from None


def _error_code(exc: BaseException) -> str | None:
    """S3's error code (AccessDenied, SignatureDoesNotMatch...) from botocore's ClientError,
    which s3fs keeps as the cause of the OSError it raises."""
    for error in (exc, exc.__cause__, exc.__context__):
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", "")) or None
    return None


def _refused(code: str | None, location: str) -> str:
    """The sentence for a request S3 refused (403), by what S3 says was wrong
    (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList)."""
    if code == "SignatureDoesNotMatch":
        return (
            f"The S3 service refused the credentials for {location}: the secret key does not "
            "go with the access key; check AWS_SECRET_ACCESS_KEY."
        )
    if code == "InvalidAccessKeyId":
        return (
            f"The S3 service does not know the access key used for {location}: check "
            "AWS_ACCESS_KEY_ID (or AWS_PROFILE)."
        )
    return (
        f"Access to {location} was denied: give these credentials the right to list and read "
        "it (s3:ListBucket, s3:GetObject)."
    )


def _credentials_found() -> bool:
    """Whether botocore's chain (variables, files, roles) finds any credentials."""
    import botocore.session

    return botocore.session.get_session().get_credentials() is not None


def _no_credentials(location: str) -> str:
    return (
        f"No credentials to read {location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "(or AWS_PROFILE)."
    )


def _unreachable(exc: Exception, location: str) -> str:
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return _no_credentials(location)
    return (
        f"Could not {'reach' if 'Connect' in name or 'Endpoint' in name else 'use'} the S3 "
        f"service for {location} ({name}): check FINDIMAGE_S3_ENDPOINT_URL and the network."
    )
