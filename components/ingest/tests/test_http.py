"""HTTP sources against a real server on 127.0.0.1: retries, backoff, 4xx, HTML, outages."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from components.ingest import fetch
from components.ingest.core import ingest_frame, load_source_spec
from components.ingest.tests.conftest import Reply
from pricecast.errors import DataFormatError, SourceError, SourceUnavailableError
from pricecast.settings import reload_settings

CSV = b"date,ticker,price\n2021-01-04,AAA,10.0\n2021-01-05,AAA,10.5\n"


def _fast_retries(monkeypatch: pytest.MonkeyPatch, timeout_s: float = 2.0) -> None:
    monkeypatch.setenv("PRICECAST_HTTP_BACKOFF_INITIAL_S", "0.01")
    monkeypatch.setenv("PRICECAST_HTTP_TIMEOUT_S", str(timeout_s))
    reload_settings()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _incidents(settings) -> list[dict]:
    root = Path(settings.store_url.removeprefix("file://")) / "incidents"
    return [json.loads(p.read_text()) for p in sorted(root.glob("*-ingest.json"))]


def test_the_default_backoff_schedule_is_half_one_two_seconds(isolated_store):
    assert isolated_store.http_retries == 3
    assert fetch.backoff_schedule(isolated_store) == [0.5, 1.0, 2.0]


def test_two_503s_then_csv_succeeds_on_the_third_try_with_the_real_backoff(isolated_store, http_server):
    server = http_server(Reply(503), Reply(503), Reply(200, CSV))

    result = ingest_frame(load_source_spec(None, source=server.url))

    assert len(server.hits) == 3
    assert result.frame["price"].tolist() == [10.0, 10.5]
    gaps = [later - earlier for earlier, later in zip(server.hits, server.hits[1:], strict=False)]
    # tenacity never sleeps less than its schedule; the upper bound is loose for a busy machine.
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0, gaps
    assert gaps[0] < 0.5 + 3 and gaps[1] < 1.0 + 3, gaps
    assert _incidents(isolated_store) == []


def test_a_404_fails_at_once_without_retries(isolated_store, http_server):
    server = http_server(Reply(404, b"not here", "text/plain"))

    with pytest.raises(SourceError) as info:
        ingest_frame(load_source_spec(None, source=server.url))

    assert not isinstance(info.value, SourceUnavailableError)
    assert len(server.hits) == 1
    assert "404" in info.value.problem and "URL" in info.value.fix


def test_an_html_page_is_not_data(isolated_store, http_server):
    page = b"<!DOCTYPE html><html><body>Please log in</body></html>"
    server = http_server(Reply(200, page, "text/html; charset=utf-8"))

    with pytest.raises(DataFormatError) as info:
        ingest_frame(load_source_spec(None, source=server.url))

    assert "HTML page, not data" in info.value.problem
    assert "download link" in info.value.fix


def test_html_is_recognised_by_its_body_even_when_labelled_csv(isolated_store, http_server):
    server = http_server(Reply(200, b"\n  <html><head></head></html>", "text/csv"))

    with pytest.raises(DataFormatError, match="HTML page"):
        ingest_frame(load_source_spec(None, source=server.url))


def test_an_unreachable_source_writes_an_incident_with_four_attempts(isolated_store, monkeypatch):
    _fast_retries(monkeypatch)
    url = f"http://127.0.0.1:{_free_port()}/prices.csv?token=secret"

    with pytest.raises(SourceUnavailableError) as info:
        ingest_frame(load_source_spec(None, source=url))

    incidents = _incidents(reload_settings())
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident["attempts"] == 4 and len(incident["errors"]) == 4
    assert all("ConnectionError" in e["error"] and e["started_at"] for e in incident["errors"])
    assert incident["started_at"] <= incident["ended_at"]
    assert "secret" not in json.dumps(incident) and "token=***" in incident["source"]
    assert "4 tries" in info.value.problem
    assert "incidents/" in info.value.fix and "rerun" in info.value.fix


def test_persistent_5xx_also_ends_in_an_incident(isolated_store, http_server, monkeypatch):
    _fast_retries(monkeypatch)
    server = http_server(Reply(502, b"bad gateway", "text/plain"))

    with pytest.raises(SourceUnavailableError, match="502"):
        ingest_frame(load_source_spec(None, source=server.url))

    assert len(server.hits) == 4
    assert [e["attempt"] for e in _incidents(reload_settings())[0]["errors"]] == [1, 2, 3, 4]


def test_a_timeout_is_retried(isolated_store, http_server, monkeypatch):
    _fast_retries(monkeypatch, timeout_s=0.3)
    server = http_server(Reply(200, CSV, delay_s=1.5), Reply(200, CSV))

    result = ingest_frame(load_source_spec(None, source=server.url))

    assert len(server.hits) == 2
    assert len(result.frame) == 2


def test_format_comes_from_the_content_type_when_the_url_has_no_extension(isolated_store, http_server):
    records = json.dumps([{"date": "2021-01-04", "ticker": "AAA", "price": 1.5}]).encode()
    server = http_server(Reply(200, records, "application/json"), path="/api/v1/prices")

    result = ingest_frame(load_source_spec(None, source=server.url))

    assert result.info["format"] == "json"
    assert result.frame.to_dict("records") == [{"date": "2021-01-04", "ticker": "AAA", "price": 1.5}]


def test_redact_hides_credentials_and_query_values():
    assert fetch.redact("https://user:pw@example.com:8443/a.csv?key=abc&x=1") == \
        "https://example.com:8443/a.csv?key=***&x=***"


def test_an_invalid_url_is_a_source_error_not_a_crash(isolated_store):
    with pytest.raises(SourceError, match="cannot be requested"):
        ingest_frame(load_source_spec(None, source="http://"))
