"""The model server's settings: one typed class read from ``PRICECAST_*`` once per process.

Store and S3 fields are not repeated here: they belong to :class:`pricecast.settings.Settings`
(``PRICECAST_STORE_URL``, ``PRICECAST_S3_*``), which the server reads through
:func:`pricecast.settings.get_settings`. ``pricecast serve`` turns its options into these
environment variables, so every uvicorn worker process reads the same configuration.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pricecast.settings import Settings, get_settings


class ServerSettings(BaseSettings):
    """Server, limits and (test-only) fault injection. Every field maps to ``PRICECAST_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="PRICECAST_", extra="ignore", protected_namespaces=())

    model_name: str = Field(default="pricecast", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$",
                            description="Name clients use in /v1/models/{name} and /v2/models/{name}.")
    model_version: str = Field(default="active", min_length=1,
                               description="'active' (the registry's pointer at start-up) or a pinned version.")
    track: Literal["stable", "canary"] = Field(default="stable",
                                               description="Delivery track, a label on every metric.")
    host: str = Field(default="0.0.0.0", description="Bind address (tests use 127.0.0.1).")
    port: int = Field(default=8080, ge=0, le=65535, description="Bind port.")
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes.")
    max_batch: int = Field(default=1024, ge=1, le=1_000_000, description="Most instances in one request.")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024,
                                description="Largest request body accepted; larger ones get 413.")
    load_retry_s: float = Field(default=30.0, ge=0,
                                description="While not ready, retry loading the model this often (0: never).")
    graceful_timeout_s: float = Field(default=25.0, gt=0,
                                      description="On SIGTERM, wait this long for in-flight requests.")
    access_log: bool = Field(default=False, description="uvicorn access log (one line per request).")
    drift_window: int = Field(default=1000, ge=0, le=1_000_000,
                              description="Live drift: PSI over the last N input rows per worker (0: off).")
    drift_every: int = Field(default=100, ge=1, description="Live drift: recompute the PSI every N rows.")

    # Test-only fault injection (canary analysis and reliability tests). Never set in production.
    fault_latency_ms: float = Field(default=0.0, ge=0, le=60_000,
                                    description="TEST ONLY: added latency per predict request.")
    fault_error_rate: float = Field(default=0.0, ge=0, le=1,
                                    description="TEST ONLY: fraction of predicts answered 500, spread evenly.")

    @property
    def store(self) -> Settings:
        """Store URL and S3 options, shared with the CLI and the pipeline."""
        return get_settings()


@lru_cache(maxsize=1)
def get_server_settings() -> ServerSettings:
    """The process-wide server settings, read once."""
    return ServerSettings()
