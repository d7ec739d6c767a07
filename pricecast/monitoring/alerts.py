"""Alerts: one record shape, sent to the log and, when configured, to a webhook.

Delivery never breaks what raised the alert: a webhook that is down, slow or refusing is
retried on connection errors, timeouts and 5xx (tenacity, the HTTP settings' backoff), then
logged and given up on. The payload carries a ``text`` summary, which chat webhooks (Slack,
Mattermost) display as is, and the full ``alerts`` list for anything that parses JSON.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from pricecast.settings import Settings, get_settings

log = logging.getLogger("pricecast.alerts")

Severity = Literal["HIGH", "MEDIUM", "LOW"]
SEVERITY_RANK: dict[str, int] = {"LOW": 1, "MEDIUM": 2, "HIGH": 3}
_LOG_LEVEL = {"HIGH": logging.ERROR, "MEDIUM": logging.WARNING, "LOW": logging.INFO}
Delivery = Literal["not_configured", "nothing_to_send", "delivered", "failed"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Alert(BaseModel):
    """A breached threshold: how bad, what happened, what to do about it."""

    model_config = ConfigDict(frozen=True)

    severity: Severity
    name: str = Field(description="Stable CamelCase name, e.g. PricecastDataStale; see README.md (Runbook).")
    message: str = Field(description="What happened, with the numbers.")
    suggested_action: str = Field(description="What the person on call should do first.")
    value: float | None = Field(None, description="The measured value.")
    threshold: float | None = Field(None, description="The threshold it breached.")
    at: str = Field(default_factory=_now, description="When it was raised (UTC, ISO 8601).")
    labels: dict[str, str] = Field(default_factory=dict, description="Where: feature, ticker, stage...")

    @field_validator("value", "threshold")
    @classmethod
    def _finite_or_none(cls, number: float | None) -> float | None:
        # JSON has no NaN: a webhook would refuse the whole payload for one missing number.
        return None if number is None or not math.isfinite(number) else float(number)

    def line(self) -> str:
        """One log line: severity, name, message, numbers and the action."""
        numbers = ""
        if self.value is not None:
            numbers = f" (value={self.value:.4g}" + (f", threshold={self.threshold:.4g})" if self.threshold is not None else ")")
        return f"ALERT {self.severity} {self.name}: {self.message}{numbers} -> {self.suggested_action}"


def raised_again(records: Sequence[Mapping[str, Any]]) -> list[Alert]:
    """Alerts a stage stored in its artifact, stamped with the time now.

    A stage keeps its alerts in its output so that a restored checkpoint alerts like a fresh run.
    """
    return [Alert(**{k: v for k, v in record.items() if k != "at"}) for record in records]


def at_least(alerts: Sequence[Alert], severity: Severity) -> list[Alert]:
    """The alerts of ``severity`` or worse."""
    return [a for a in alerts if SEVERITY_RANK[a.severity] >= SEVERITY_RANK[severity]]


def redact(url: str) -> str:
    """Scheme and host only: webhook paths often embed the token (Slack, Teams)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/…"


def _describe(exc: BaseException | None, url: str) -> str:
    """The error without the URL's path or query, which requests quotes and may hold the token."""
    parts = urlsplit(url)
    text = str(exc)
    for secret in (url, parts.path, parts.query):
        if len(secret) > 1:
            text = text.replace(secret, "/…")
    return f"{type(exc).__name__}: {text}"


def payload(alerts: Sequence[Alert], source: str) -> dict:
    """The webhook body: a human summary plus every alert as a dict."""
    worst = max((a.severity for a in alerts), key=SEVERITY_RANK.__getitem__)
    text = f"[pricecast/{source}] {len(alerts)} alert(s), worst {worst}:\n" + "\n".join(
        f"• {a.severity} {a.name}: {a.message} → {a.suggested_action}" for a in alerts)
    return {"source": source, "sent_at": _now(), "text": text, "alerts": [a.model_dump() for a in alerts]}


class _RetryableStatusError(Exception):
    """A 5xx answer: the receiver may recover, so it is retried like a connection error."""


def _post(url: str, body: dict, settings: Settings) -> None:
    import requests  # here: only a configured webhook needs it, not every stage that may alert

    retrying = Retrying(
        stop=stop_after_attempt(settings.http_retries + 1),
        wait=wait_exponential(multiplier=settings.http_backoff_initial_s, min=settings.http_backoff_initial_s,
                              max=30),
        retry=retry_if_exception_type((requests.ConnectionError, requests.Timeout, _RetryableStatusError)),
        reraise=False,
    )
    for attempt in retrying:
        with attempt:
            response = requests.post(url, json=body, timeout=settings.http_timeout_s)
            if response.status_code >= 500:
                raise _RetryableStatusError(f"HTTP {response.status_code}")
            response.raise_for_status()  # a 4xx is our mistake or a revoked URL: no retry


def emit(alerts: Sequence[Alert], settings: Settings | None = None, source: str = "pipeline") -> Delivery:
    """Log every alert (ERROR for HIGH, WARNING for MEDIUM, INFO for LOW) and POST them.

    Args:
        alerts: What to send; nothing is sent for an empty list.
        settings: ``alert_webhook_url`` and the HTTP timeout, retries and backoff; the process
            settings by default.
        source: Who raised them (a stage or a CLI check), shown in the webhook text.

    Returns:
        How the webhook delivery went. A failed delivery is logged, never raised.
    """
    settings = settings or get_settings()
    for alert in alerts:
        log.log(_LOG_LEVEL[alert.severity], alert.line())
    if not alerts:
        return "nothing_to_send"
    url = settings.alert_webhook_url
    if not url:
        return "not_configured"
    try:
        _post(url, payload(alerts, source), settings)
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        log.error("Alert webhook %s failed after %d attempt(s): %s; the alerts above are in this log only.",
                  redact(url), exc.last_attempt.attempt_number, _describe(cause, url))
        return "failed"
    except Exception as exc:  # noqa: BLE001 - a broken webhook must never stop what raised the alert
        log.error("Alert webhook %s refused the alerts: %s; they are in this log only.", redact(url),
                  _describe(exc, url))
        return "failed"
    log.info("Sent %d alert(s) to the webhook %s.", len(alerts), redact(url))
    return "delivered"
