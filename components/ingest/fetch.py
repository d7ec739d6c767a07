"""Getting a source's bytes: HTTP(S) with retries and an incident record, or any fsspec URL.

HTTP policy (settings ``http_retries``, ``http_backoff_initial_s``, ``http_timeout_s``): the first
try plus 3 retries, waiting 0.5 s, 1 s, 2 s between them (tenacity's exponential wait). Only
failures that may heal retry: connection errors, timeouts and 5xx answers. A 4xx is the caller's
mistake (wrong URL, missing credentials) and fails at once. When the retries run out, an incident
record (source, every attempt with its error and timestamps) goes to
``<store>/incidents/<UTC timestamp>-ingest.json`` and to the log before the stage fails.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from pricecast import storage
from pricecast.errors import PricecastError, SourceError, SourceUnavailableError
from pricecast.settings import Settings, get_settings

log = logging.getLogger("components.ingest")

ACCEPT = "text/csv, application/json, application/x-ndjson, application/vnd.apache.parquet, */*;q=0.5"


@dataclasses.dataclass(frozen=True)
class Payload:
    """A source's bytes and what the transport said about them."""

    data: bytes
    name: str
    content_type: str = ""


class ServerError(Exception):
    """A 5xx answer: the server may recover, so it is retried like a connection error."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status


# ChunkedEncodingError: the connection dropped mid-body, as transient as a refused connection.
RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError, ServerError)


def redact(url: str) -> str:
    """The URL without credentials or query values, fit for logs and incident records."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    query = "&".join(f"{pair.split('=', 1)[0]}=***" for pair in parts.query.split("&") if pair)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(message: str, url: str) -> str:
    """``message`` (an exception's text, which quotes the URL) without the URL's secrets."""
    parts = urlsplit(url)
    if parts.query:
        message = message.replace(parts.query, urlsplit(redact(url)).query)
    if parts.password:
        message = message.replace(parts.password, "***")
    return message


def backoff_wait(settings: Settings) -> wait_exponential:
    """0.5 s, 1 s, 2 s, ... (``http_backoff_initial_s`` doubling) between HTTP tries."""
    return wait_exponential(multiplier=settings.http_backoff_initial_s, exp_base=2, min=0, max=60)


def backoff_schedule(settings: Settings) -> list[float]:
    """The waits tenacity will sleep between the tries, in order (for logs, docs and tests)."""
    wait = backoff_wait(settings)
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    schedule = []
    for attempt in range(1, settings.http_retries + 1):
        state.attempt_number = attempt
        schedule.append(wait(state))
    return schedule


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def fetch_http(url: str, *, store_url: str | None = None, settings: Settings | None = None) -> Payload:
    """GET ``url`` with the retry policy above; raise a SourceError the user can act on."""
    settings = settings or get_settings()
    shown = redact(url)
    attempts: list[dict[str, Any]] = []

    def attempt() -> requests.Response:
        record: dict[str, Any] = {"attempt": len(attempts) + 1, "started_at": _utc_now(),
                                  "monotonic_s": round(time.monotonic(), 4)}
        attempts.append(record)
        try:
            response = requests.get(url, timeout=settings.http_timeout_s, headers={"Accept": ACCEPT})
            if response.status_code >= 500:
                raise ServerError(response.status_code, response.reason)
            return response
        except RETRYABLE as exc:
            record.update(error=scrub(f"{type(exc).__name__}: {exc}", url), ended_at=_utc_now())
            raise

    retrying = Retrying(
        retry=retry_if_exception_type(RETRYABLE),
        stop=stop_after_attempt(settings.http_retries + 1),
        wait=backoff_wait(settings),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "HTTP source %s: try %d/%d failed (%s); retrying in %.2f s.", shown, state.attempt_number,
            settings.http_retries + 1, scrub(str(state.outcome.exception()), url), state.upcoming_sleep,
        ),
    )
    try:
        response = retrying(attempt)
    except RETRYABLE as exc:
        incident_url = _write_incident(shown, attempts, settings, store_url)
        raise SourceUnavailableError(
            f"The source {shown} did not answer after {len(attempts)} tries (last error: {scrub(str(exc), url)}).",
            f"Check that the server is up and the URL is right (curl -I {shown}), then rerun; the "
            f"incident is recorded at {incident_url}.",
        ) from None  # the chained error quotes the raw URL; the incident holds every error, scrubbed
    except requests.RequestException as exc:  # an invalid URL, too many redirects...: not transient
        raise SourceError(f"The source {shown} cannot be requested: {scrub(str(exc), url)}.",
                          "Check the URL (scheme, host, path).") from None

    if response.status_code >= 400:
        raise SourceError(f"The source {shown} answered HTTP {response.status_code} {response.reason}.",
                          _fix_for_status(response.status_code))
    log.info("HTTP source %s: %d bytes (%s) after %d tries.", shown, len(response.content),
             response.headers.get("Content-Type", "no Content-Type"), len(attempts))
    return Payload(response.content, shown, response.headers.get("Content-Type", ""))


def _fix_for_status(status: int) -> str:
    if status in (401, 403):
        return ("The server wants credentials or refuses this client: use a URL you can open, or "
                "download the file first.")
    if status in (404, 410):
        return "Check the URL for a typo or a moved file; open it in a browser to confirm."
    return "Fix the request (URL, parameters); a 4xx is not retried because it will not heal by itself."


def _write_incident(source: str, attempts: list[dict[str, Any]], settings: Settings, store_url: str | None) -> str:
    """Record the outage where on-call people look; never mask the original failure."""
    incident = {
        "kind": "source_unavailable", "stage": "ingest", "source": source,
        "attempts": len(attempts), "errors": attempts,
        "started_at": attempts[0]["started_at"] if attempts else _utc_now(), "ended_at": _utc_now(),
        "policy": {"retries": settings.http_retries, "backoff_s": backoff_schedule(settings),
                   "timeout_s": settings.http_timeout_s},
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    url = storage.join(store_url or settings.store_url, "incidents", f"{stamp}-ingest.json")
    log.error("INCIDENT source unavailable: %s", json.dumps(incident))
    try:
        storage.write_text(url, json.dumps(incident, indent=2))
    except PricecastError as exc:
        log.error("Could not write the incident record to %s: %s", url, exc)
        return f"the log (writing {url} failed)"
    return url


def read_location(source: str) -> Payload:
    """Read a local path, ``file://`` or ``s3://`` URL through fsspec (pricecast.storage)."""
    try:
        return Payload(storage.read_bytes(source), source)
    except FileNotFoundError as exc:
        remote = "://" in source and not source.startswith("file://")
        where = "" if remote else f" (relative paths start at {Path.cwd()})"
        raise SourceError(f"The source {source} does not exist.",
                          f"Check the path or URL{where}; a directory is not a source, name the file.") from exc


__all__ = ["Payload", "backoff_schedule", "backoff_wait", "fetch_http", "read_location", "redact", "scrub"]
