"""The Elasticsearch client built from the settings, and its failures turned into plain sentences.

Every call findimage makes to Elasticsearch runs inside `translate_errors`, so the user
sees one sentence naming what to fix, and the logs get the details; credentials never
appear in either.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import elastic_transport
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    UnsupportedProductError,
)
from elasticsearch import ConnectionError as EsConnectionError
from elasticsearch import ConnectionTimeout as EsConnectionTimeout

from findimage.errors import BackendUnavailableError, ConfigError, FindImageError
from findimage.settings import Settings
from findimage.stores.elasticsearch.versions import (
    Version,
    VersionedElasticsearch,
    oldest_supported,
)

log = logging.getLogger(__name__)

# One quick retry covers a dropped keep-alive connection; more would only delay the message
# a user waits for while Elasticsearch is down.
CONNECTION_RETRIES = 1


class Connection:
    """The client, and what messages say about the cluster.

    The first use of `client` asks the cluster its version (see versions.py), so every call
    after it carries the compatibility headers that cluster accepts.
    """

    def __init__(
        self, client: VersionedElasticsearch, location: str, timeout: float, oldest: Version
    ):
        self._client = client
        self.location = location
        self.timeout = timeout
        self.oldest = oldest

    @property
    def client(self) -> VersionedElasticsearch:
        self._client.ensure_version(self.location, self.oldest)
        return self._client

    def close(self) -> None:
        self._client.close()


def connect(settings: Settings) -> Connection:
    """A client for the configured cluster; nothing is sent until the first call."""
    if settings.es_url and urlsplit(settings.es_url).scheme not in {"http", "https"}:
        raise ConfigError(
            f"FINDIMAGE_ES_URL must start with http:// or https://, not "
            f"{safe_url(settings.es_url)}."
        )
    if not settings.es_url and not settings.es_cloud_id:
        raise ConfigError(
            "FINDIMAGE_BACKEND is elasticsearch but no cluster is named: "
            "set FINDIMAGE_ES_URL (or FINDIMAGE_ES_CLOUD_ID)."
        )
    if settings.es_user and settings.es_password is None:
        raise ConfigError("FINDIMAGE_ES_USER is set without FINDIMAGE_ES_PASSWORD: set both.")
    if settings.es_ca_certs is not None and not settings.es_ca_certs.is_file():
        raise ConfigError(
            f"FINDIMAGE_ES_CA_CERTS names {settings.es_ca_certs}, which is not a file: "
            "point it at the CA certificate of the cluster."
        )
    options: dict[str, object] = {
        "request_timeout": settings.es_timeout,
        "max_retries": CONNECTION_RETRIES,
        "retry_on_timeout": False,
        "verify_certs": settings.es_verify_certs,
    }
    if settings.es_cloud_id:
        options["cloud_id"] = settings.es_cloud_id
        location = "the Elastic Cloud deployment in FINDIMAGE_ES_CLOUD_ID"
    else:
        options["hosts"] = [settings.es_url]
        location = safe_url(settings.es_url or "")
    if settings.es_api_key is not None:
        options["api_key"] = settings.es_api_key.get_secret_value()
    elif settings.es_user and settings.es_password is not None:
        options["basic_auth"] = (settings.es_user, settings.es_password.get_secret_value())
    if settings.es_ca_certs is not None:
        options["ca_certs"] = str(settings.es_ca_certs)
    if not settings.es_verify_certs:
        options["ssl_show_warn"] = False
    try:
        client = VersionedElasticsearch(**options)
    except ValueError as exc:
        raise ConfigError(
            f"The Elasticsearch settings are not usable ({exc}): "
            "check FINDIMAGE_ES_URL or FINDIMAGE_ES_CLOUD_ID."
        ) from None
    return Connection(
        client=client,
        location=location,
        timeout=settings.es_timeout,
        oldest=oldest_supported(settings.es_index_type),
    )


def safe_url(url: str) -> str:
    """The URL without any user or password written into it."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


@contextmanager
def translate_errors(connection: Connection, action: str) -> Iterator[None]:
    """Turn a client failure while doing `action` ("search the index") into a FindImageError."""
    try:
        yield
    except FindImageError:
        raise
    except Exception as exc:
        error = describe_failure(exc, connection, action)
        if error is None:
            raise
        log.info("Elasticsearch failed to %s: %r", action, exc)
        raise error from None


def describe_failure(
    exc: BaseException, connection: Connection, action: str
) -> FindImageError | None:
    where = connection.location
    if isinstance(exc, EsConnectionTimeout):
        return BackendUnavailableError(
            f"Elasticsearch at {where} did not answer within {connection.timeout:g} seconds: "
            "check that it is up, or raise FINDIMAGE_ES_TIMEOUT."
        )
    if isinstance(exc, elastic_transport.TlsError) and not _certificate_refused(exc):
        return ConfigError(
            f"Elasticsearch at {where} did not complete a TLS handshake "
            f"({_tls_reason(exc)}): if it serves plain HTTP, use http:// in FINDIMAGE_ES_URL."
        )
    if isinstance(exc, elastic_transport.TlsError):
        return ConfigError(
            f"The TLS certificate of Elasticsearch at {where} could not be verified: "
            "set FINDIMAGE_ES_CA_CERTS to the cluster's CA certificate."
        )
    if isinstance(exc, EsConnectionError):
        return BackendUnavailableError(
            f"Cannot reach Elasticsearch at {where}: check that it is running and that "
            "FINDIMAGE_ES_URL is right."
        )
    if isinstance(exc, UnsupportedProductError):
        return ConfigError(f"{where} is not Elasticsearch: check FINDIMAGE_ES_URL.")
    if isinstance(exc, AuthenticationException):
        return ConfigError(
            f"Elasticsearch at {where} refused the credentials: check FINDIMAGE_ES_API_KEY, "
            "or FINDIMAGE_ES_USER and FINDIMAGE_ES_PASSWORD."
        )
    if isinstance(exc, AuthorizationException):
        return ConfigError(
            f"The Elasticsearch user may not {action} ({error_reason(exc)}): "
            "grant it the privileges listed in docs/elasticsearch.md."
        )
    if isinstance(exc, ApiError):
        return BackendUnavailableError(
            f"Elasticsearch at {where} could not {action}: {error_reason(exc)}."
        )
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps, as elastic_transport and urllib3 chain them."""
    found: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if current in found:
            continue
        found.append(current)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        pending.extend(e for e in getattr(current, "errors", ()) if isinstance(e, BaseException))
        pending.extend(e for e in current.args if isinstance(e, BaseException))
    return found


def _certificate_refused(exc: BaseException) -> bool:
    return any(isinstance(e, ssl.SSLCertVerificationError) for e in _causes(exc))


def _tls_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError) and cause.reason:
            return str(cause.reason).lower().replace("_", " ")
    return "TLS error"


def error_type(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    return str(error.get("type", "")) if isinstance(error, dict) else ""


def error_reason(exc: ApiError) -> str:
    """Elasticsearch's own reason for an error answer, as one short line."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if isinstance(error, dict):
        reason = error.get("reason") or error.get("type") or str(exc.message)
        return str(reason).strip().rstrip(".")
    if isinstance(error, str):
        return error.rstrip(".")
    return f"HTTP {exc.status_code}"


def item_error(info: dict) -> str:
    """The reason Elasticsearch gave for one failed bulk item."""
    error = info.get("error")
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}".rstrip(": ")
        caused_by = error.get("caused_by")
        if isinstance(caused_by, dict) and caused_by.get("reason"):
            text += f" ({caused_by['reason']})"
    else:
        text = str(error or f"HTTP {info.get('status')}")
    return f"Elasticsearch refused it ({text})"
