"""All settings in one typed class, read from the environment (``PRICECAST_*``) once.

The same variables configure the CLI, every pipeline component (in a subprocess, a container
or a KFP pod, where a Kubernetes secret supplies the S3 credentials) and the model server.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """pricecast's configuration. Every field maps to ``PRICECAST_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="PRICECAST_", extra="ignore")

    store_url: str = Field(
        default="file://./.pricecast/store",
        description="Root of the model store and checkpoints: file:// path or s3://bucket/prefix.",
    )
    log_dir: Path = Field(default=Path("logs"), description="Directory of rotating per-task logs.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    log_max_bytes: int = Field(default=5_000_000, ge=10_000, description="Rotate a task log at this size.")
    log_backups: int = Field(default=3, ge=0, description="Rotated task logs kept.")

    # S3-compatible object store (SeaweedFS, MinIO, AWS S3). Empty endpoint means AWS.
    s3_endpoint_url: str = Field(default="", description="S3 endpoint, e.g. http://seaweedfs:8333.")
    s3_access_key_id: str = Field(default="", description="S3 access key (from a secret).")
    s3_secret_access_key: str = Field(default="", description="S3 secret key (from a secret).")
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    storage_retries: int = Field(default=3, ge=0, le=10, description="Retries of transient store errors.")
    storage_connect_timeout_s: float = Field(default=5.0, gt=0, description="Object store connect timeout.")

    # HTTP sources.
    http_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one HTTP source request.")
    http_retries: int = Field(default=3, ge=0, le=10, description="Retries after the first HTTP try.")
    http_backoff_initial_s: float = Field(default=0.5, ge=0, description="First backoff; doubles each retry.")

    # Alerts (monitoring issue): optional webhook.
    alert_webhook_url: str = Field(default="", description="POST alerts here as JSON when set.")

    @field_validator("store_url")
    @classmethod
    def _store_url_has_scheme(cls, value: str) -> str:
        return absolute_store_url(value)

    def storage_options(self, url: str | None = None) -> dict[str, Any]:
        """fsspec options for ``url`` (the store by default): S3 endpoint and credentials."""
        scheme = (url or self.store_url).split("://", 1)[0]
        if scheme != "s3":
            return {}
        options: dict[str, Any] = {
            "client_kwargs": {"region_name": self.s3_region},
            "config_kwargs": {
                "connect_timeout": self.storage_connect_timeout_s,
                "read_timeout": 60,
                # botocore retries transient errors itself; we add ours on top for whole writes.
                "retries": {"max_attempts": 2, "mode": "standard"},
                "s3": {"addressing_style": "path"},
            },
        }
        if self.s3_endpoint_url:
            options["client_kwargs"]["endpoint_url"] = self.s3_endpoint_url
        if self.s3_access_key_id:
            options["key"] = self.s3_access_key_id
            options["secret"] = self.s3_secret_access_key
        return options


def absolute_store_url(value: str) -> str:
    """A store URL with its scheme and, for a local store, an absolute path.

    A relative store (the default ``file://./.pricecast/store``) is resolved against the working
    directory once, here: every message then names the directory actually used, and a command
    run from elsewhere says which store it read instead of showing another, empty one.

    Raises:
        ValueError: A scheme other than file://, s3:// or memory://.
    """
    value = value.strip()
    if "://" not in value:
        # A bare path is the commonest mistake; accept it as a local directory.
        value = "file://" + value
    scheme, path = value.split("://", 1)
    if scheme not in {"file", "s3", "memory"}:
        raise ValueError(
            f"store_url scheme {scheme!r} is not supported; use file://PATH or s3://BUCKET/PREFIX."
        )
    if scheme == "file":
        value = "file://" + str(Path(path or ".").absolute())
    return value.rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def reload_settings() -> Settings:
    """Forget the cached settings (tests and the CLI after changing the environment)."""
    get_settings.cache_clear()
    return get_settings()


Track = Literal["stable", "canary"]
