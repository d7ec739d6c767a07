"""Alerts: log levels, and delivery to a real webhook receiver on 127.0.0.1 (up, flaky, down)."""

from __future__ import annotations

import logging
import socket

import pytest

from pricecast.monitoring.alerts import Alert, at_least, emit, raised_again, redact
from pricecast.settings import Settings
from tests.monitoring.support import webhook_receiver

HIGH = Alert(severity="HIGH", name="PricecastDataStale", message="The newest data is 9 days old.",
             suggested_action="Check the feed.", value=9, threshold=3, labels={"source": "s3://b/raw"})
MEDIUM = Alert(severity="MEDIUM", name="PricecastFeatureDrift", message="ret_vol_20 drifted.",
               suggested_action="Retrain.", value=0.31, threshold=0.25)
LOW = Alert(severity="LOW", name="PricecastFeatureShiftKS", message="Small shift.", suggested_action="None.")


def settings(url: str = "", retries: int = 3) -> Settings:
    # No backoff between retries: the retry count is what is under test, not the waiting.
    return Settings(alert_webhook_url=url, http_retries=retries, http_backoff_initial_s=0.0, http_timeout_s=2.0)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # released on exit: nothing listens there


def test_each_severity_is_logged_at_its_level(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pricecast.alerts"):
        assert emit([HIGH, MEDIUM, LOW], settings()) == "not_configured"
    levels = {r.getMessage().split()[2]: r.levelno for r in caplog.records if r.getMessage().startswith("ALERT")}
    assert levels == {"PricecastDataStale:": logging.ERROR, "PricecastFeatureDrift:": logging.WARNING,
                      "PricecastFeatureShiftKS:": logging.INFO}
    line = next(r.getMessage() for r in caplog.records if "PricecastDataStale" in r.getMessage())
    assert "value=9, threshold=3" in line and "Check the feed." in line


def test_webhook_receives_the_alerts_as_json() -> None:
    with webhook_receiver() as receiver:
        assert emit([HIGH, LOW], settings(receiver.url), source="drift") == "delivered"
    assert receiver.attempts == 1
    body = receiver.bodies[0]
    assert body["source"] == "drift"
    assert [a["name"] for a in body["alerts"]] == ["PricecastDataStale", "PricecastFeatureShiftKS"]
    first = body["alerts"][0]
    assert first["severity"] == "HIGH" and first["value"] == 9.0 and first["threshold"] == 3.0
    assert first["suggested_action"] == "Check the feed." and first["labels"] == {"source": "s3://b/raw"}
    assert first["at"].endswith("+00:00")
    assert "worst HIGH" in body["text"] and "PricecastDataStale" in body["text"]


def test_webhook_5xx_is_retried_until_it_answers() -> None:
    with webhook_receiver(statuses=[503, 502]) as receiver:
        assert emit([MEDIUM], settings(receiver.url)) == "delivered"
    assert receiver.attempts == 3 and len(receiver.bodies) == 1


def test_webhook_4xx_is_not_retried_and_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    with webhook_receiver(statuses=[404]) as receiver, caplog.at_level(logging.ERROR, logger="pricecast.alerts"):
        assert emit([MEDIUM], settings(receiver.url)) == "failed"
    assert receiver.attempts == 1
    assert any("refused" in r.getMessage() for r in caplog.records)
    assert "pricecast-token-123" not in caplog.text


def test_webhook_down_is_logged_without_crashing_and_without_leaking_the_token(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hooks/secret-token"
    with caplog.at_level(logging.INFO, logger="pricecast.alerts"):
        assert emit([HIGH], settings(url, retries=2)) == "failed"
    failure = next(r for r in caplog.records if "webhook" in r.getMessage())
    assert failure.levelno == logging.ERROR and "after 3 attempt(s)" in failure.getMessage()
    assert "secret-token" not in caplog.text
    assert any("PricecastDataStale" in r.getMessage() for r in caplog.records)  # the alert itself is kept


def test_webhook_that_keeps_failing_gives_up_after_the_retries() -> None:
    with webhook_receiver(statuses=[500] * 10) as receiver:
        assert emit([HIGH], settings(receiver.url, retries=2)) == "failed"
    assert receiver.attempts == 3 and receiver.bodies == []


def test_nothing_is_sent_for_no_alerts() -> None:
    with webhook_receiver() as receiver:
        assert emit([], settings(receiver.url)) == "nothing_to_send"
    assert receiver.attempts == 0


def test_nan_values_become_null_so_the_payload_stays_json() -> None:
    alert = Alert(severity="LOW", name="X", message="m", suggested_action="a", value=float("nan"))
    assert alert.value is None
    with webhook_receiver() as receiver:
        assert emit([alert], settings(receiver.url)) == "delivered"
    assert receiver.bodies[0]["alerts"][0]["value"] is None


def test_severity_filter_and_redaction() -> None:
    assert at_least([HIGH, MEDIUM, LOW], "MEDIUM") == [HIGH, MEDIUM]
    assert at_least([LOW], "HIGH") == []
    assert redact("https://user:pw@hooks.example.com/services/T0/B0/xyz") == "https://hooks.example.com/…"


def test_alerts_stored_by_a_stage_are_raised_again_with_a_new_time() -> None:
    stored = {**HIGH.model_dump(), "at": "2020-01-01T00:00:00+00:00"}
    [again] = raised_again([stored])
    assert again.model_dump(exclude={"at"}) == HIGH.model_dump(exclude={"at"})
    assert again.at > stored["at"]
