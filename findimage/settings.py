"""Every setting findimage reads: FINDIMAGE_* environment variables and an optional .env."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from platformdirs import user_cache_path, user_data_path
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from findimage.errors import ConfigError

DEFAULT_IMAGE_MODEL = "clip-ViT-B-32"
DEFAULT_TEXT_MODEL = "sentence-transformers/clip-ViT-B-32-multilingual-v1"


def default_data_dir() -> Path:
    """One index per user wherever findimage runs from: ~/.local/share/findimage on Linux."""
    return user_data_path("findimage", appauthor=False)


def default_model_cache() -> Path:
    """Exported models, shared by every index of the user: ~/.cache/findimage/models on Linux.

    A cache, not data: it can be deleted and is made again (once) when a model is next used.
    """
    return user_cache_path("findimage", appauthor=False) / "models"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FINDIMAGE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # The library (the folder of pictures) and its index. FINDIMAGE_LIBRARY is its
    # environment name; FINDIMAGE_STORE, its name before 0.5, still works (the new name wins
    # when both are set).
    # A folder, or s3://bucket/prefix for an S3-compatible object store (MinIO, Ceph too,
    # through s3_endpoint_url).
    library: Path | str | None = Field(
        default=None, validation_alias=AliasChoices("FINDIMAGE_LIBRARY", "FINDIMAGE_STORE")
    )
    s3_endpoint_url: str | None = None
    backend: Literal["embedded", "elasticsearch"] = "embedded"
    data_dir: Path = Field(default_factory=default_data_dir)

    # Models and inference.
    image_model: str = DEFAULT_IMAGE_MODEL
    text_model: str = DEFAULT_TEXT_MODEL
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # What runs the models (docs/speed.md): ONNX Runtime int8 measured fastest on CPU with
    # vectors agreeing with PyTorch fp32; torch is the one that uses a GPU.
    engine: Literal["torch", "onnx"] = "onnx"
    precision: Literal["fp32", "int8"] = "int8"
    # Cores the process computes on: how many model runs go at once (default: the usable cores).
    threads: int | None = Field(default=None, ge=1, le=256)
    # Where exported models are kept; default: the user's cache folder, shared by every
    # index (FINDIMAGE_DATA_DIR) of that user.
    model_cache: Path | None = None
    batch_size: int = Field(default=32, ge=1, le=1024)
    # With FINDIMAGE_DEVICE=cuda: pictures per batch on the GPU, which runs a large batch in
    # little more time than a small one (bench/bench_gpu.py measures 32 to 256).
    cuda_batch_size: int = Field(default=256, ge=1, le=4096)
    # Threads reading and decoding pictures while the engine runs; default: one per core
    # (measured best beside an engine using every core, BENCHMARKS.md).
    decode_workers: int | None = Field(default=None, ge=1, le=64)

    # Watch mode: how long a burst of changes is gathered before it is indexed, how often
    # a quiet watcher rescans anyway (for changes no event announced), and polling instead of
    # events (network shares).
    watch_debounce_ms: int = Field(default=1000, ge=50, le=60_000)
    watch_rescan_seconds: float = Field(default=300.0, ge=5, le=86_400)
    watch_polling: bool = False

    # What indexing leaves out besides hidden files: comma-separated gitignore patterns (a
    # name alone matches at any depth), plus a .findimageignore file at the library's root.
    # The default skips NAS, OS and tool litter (Synology's @eaDir thumbnails, #recycle).
    exclude: str = "@eaDir,#recycle,.git,node_modules,__MACOSX,.thumbnails"

    # Search.
    top_k: int = Field(default=5, ge=1, le=100)
    max_file_mb: float = Field(default=50, gt=0)
    min_score: float = Field(default=0.0, ge=0, le=1)
    duplicate_score: float = Field(default=0.97, ge=0, le=1)

    # Elasticsearch.
    es_url: str | None = None
    es_cloud_id: str | None = None
    es_api_key: SecretStr | None = None
    es_user: str | None = None
    es_password: SecretStr | None = None
    es_ca_certs: Path | None = None
    es_verify_certs: bool = True
    es_index: str = "findimage-images"
    es_timeout: float = Field(default=10.0, gt=0)
    es_text_model_id: str | None = None
    text_vectors: Literal["query_vector_builder", "infer"] = "query_vector_builder"
    es_num_candidates_factor: int = Field(default=10, ge=1, le=100)
    es_index_type: Literal["hnsw", "int8_hnsw", "bbq_hnsw"] = "hnsw"
    es_hnsw_m: int = Field(default=16, ge=2, le=512)
    es_hnsw_ef_construction: int = Field(default=100, ge=2, le=3200)

    # Slack, under the names Slack itself uses.
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret"),
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token")
    )
    port: int = Field(default=3000, ge=0, le=65535)  # 0: any free port, printed at start
    public_base_url: str | None = None
    preview_secret: SecretStr | None = None
    preview_ttl_seconds: int = Field(default=3600, ge=60)

    # The Slack bot under load (issue 7): where the Web API is, how much work runs at once,
    # and the HTTP server's sizes. Kept together so the Slack side's settings read as one block.
    slack_api_url: str = "https://slack.com/api/"
    slack_workers: int = Field(default=4, ge=1, le=64)
    slack_queue: int = Field(default=32, ge=0, le=10_000)
    http_threads: int = Field(default=8, ge=1, le=256)
    http_backlog: int = Field(default=1024, ge=1, le=65_535)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=600)
    # Text requests wait in line up to this much memory (bot.workers); FINDIMAGE_SLACK_QUEUE
    # bounds the photos waiting. An answer Slack cannot take yet is retried until its
    # deadline: 30 minutes for a response_url (Slack's own), this long for the others.
    slack_queue_mb: float = Field(default=64.0, gt=0, le=4096)
    slack_answer_deadline_seconds: float = Field(default=1800.0, ge=0, le=86_400)

    # Who may use the bot: comma-separated Slack ids (U…, C…/G…/D…); empty means everyone.
    allowed_users: str = ""
    allowed_channels: str = ""

    # The search page (`findimage web`): loopback only unless Sign in with Slack is set up.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8765, ge=0, le=65535)  # 0: any free port, printed at start
    # Sign in with Slack for the page (docs/slack.md): the app's client id and secret, under
    # Slack's names, and the workspace whose members may sign in (default: the bot token's,
    # from auth.test).
    slack_client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_CLIENT_ID", "slack_client_id")
    )
    slack_client_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SLACK_CLIENT_SECRET", "slack_client_secret"),
    )
    slack_team_id: str | None = None

    @field_validator("slack_api_url")
    @classmethod
    def _web_api_base(cls, value: str) -> str:
        """An http(s) URL ending in a slash, as slack_sdk joins method names onto it."""
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https://, like https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("es_url", "s3_endpoint_url", "public_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        """A URL whose host and port can be read: a bad one is this setting's error here, not
        an unexpected one in a client later. The message never repeats the value, which may
        hold a password (http://user:password@host)."""
        if value is None or value == "":
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - reading it is the check: a port that is not a number raises
        except ValueError:
            raise ValueError(
                "is not a URL that can be used: its port must be a number from 0 to 65535, "
                "like http://localhost:9200"
            ) from None
        if parts.scheme in {"http", "https"} and not parts.hostname:
            raise ValueError("is not a URL that can be used: it names no host")
        return value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # A relative folder would change meaning with the working directory.
        return value.expanduser().absolute()

    @field_validator("library", mode="before")
    @classmethod
    def _folder_or_bucket(cls, value: object) -> Path | str | None:
        """An s3:// URL stays a URL (a Path would fold its '//'); anything else is a folder."""
        if value is None or value == "":
            return None
        # The scheme findimage.library reads (not imported: settings load before any picture code).
        if isinstance(value, str) and value.startswith("s3://"):
            return value.rstrip("/")
        return Path(str(value)).expanduser().absolute()

    @property
    def exclude_patterns(self) -> list[str]:
        return [pattern.strip() for pattern in self.exclude.split(",") if pattern.strip()]

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def compute_threads(self) -> int:
        """The process's thread budget: FINDIMAGE_THREADS, else the cores it may run on."""
        if self.threads:
            return self.threads
        if hasattr(os, "sched_getaffinity"):  # Linux: the cores this process may run on
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1

    @property
    def decode_threads(self) -> int:
        return self.decode_workers or self.compute_threads

    @property
    def model_cache_dir(self) -> Path:
        return (self.model_cache or default_model_cache()).expanduser().absolute()

    def require_library(self) -> Path | str:
        if self.library is None:
            raise ConfigError(
                "No library is set: pass a folder or set FINDIMAGE_LIBRARY to the library's root."
            )
        if isinstance(self.library, str):
            return self.library
        if not self.library.is_dir():
            raise ConfigError(
                f"The library {self.library} is not a folder: check FINDIMAGE_LIBRARY."
            )
        return self.library


def parse_ids(value: str) -> frozenset[str]:
    """A list of Slack ids as FINDIMAGE_ALLOWED_USERS holds it: `U1, U2 ,U3` -> {"U1", "U2",
    "U3"}; blanks are ignored. The bot and the team page read the same lists."""
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning a bad value into one plain ConfigError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            # A validator's own sentence, without pydantic's "Value error, " before it.
            f"{_env_name(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"Invalid settings: {problems}.") from None


def _env_name(location: tuple[int | str, ...]) -> str:
    field = str(location[0]) if location else "?"
    if field.startswith(("SLACK_", "FINDIMAGE_")):
        return field
    return f"FINDIMAGE_{field.upper()}"
