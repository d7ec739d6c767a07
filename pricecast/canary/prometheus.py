"""A small Prometheus HTTP API client: instant queries, with retries of transient failures.

Only ``GET /api/v1/query`` is needed, so this is a few lines of ``requests`` rather than a client
library that would pull in pandas-style result frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import requests
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from pricecast.errors import ConfigError, SourceUnavailableError

Sample = tuple[dict[str, str], float]


class _Transient(Exception):
    """A failure worth retrying: no connection, a timeout, or a 5xx from Prometheus."""


class PrometheusClient:
    """Instant queries against one Prometheus server.

    Args:
        url: base URL, e.g. ``http://prometheus-operated.monitoring:9090``.
        timeout_s: timeout of one HTTP request.
        retries: retries after the first try for transient failures.
    """

    def __init__(self, url: str, timeout_s: float = 10.0, retries: int = 3) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"Prometheus URL {url!r} is not an http(s) URL.",
                              "Pass --prometheus http://HOST:9090.")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self._session = requests.Session()

    def query(self, promql: str) -> Sequence[Sample]:
        """Evaluate ``promql`` now; return ``(labels, value)`` per sample of the vector or scalar."""
        fetch = retry(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=0.5, max=5),
            reraise=True,
        )(self._query_once)
        try:
            return fetch(promql)
        except _Transient as exc:
            raise SourceUnavailableError(
                f"Prometheus at {self.url} did not answer after {self.retries + 1} tries ({exc}) "
                f"to the query: {promql}",
                "Check the URL (kubectl port-forward svc/prometheus-operated 9090) and that Prometheus is up.",
            ) from exc

    def _query_once(self, promql: str) -> Sequence[Sample]:
        try:
            resp = self._session.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise _Transient(_reason(exc)) from exc
        if resp.status_code >= 500:
            raise _Transient(f"HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            body = resp.json()
        except ValueError:
            raise SourceUnavailableError(f"{self.url} answered HTTP {resp.status_code} with a body that is not "
                                         "JSON: is it a Prometheus server?", "Pass the Prometheus base URL.") from None
        if body.get("status") != "success":
            raise ConfigError(f"Prometheus refused the query {promql!r}: {body.get('error', body)}",
                              "Check --selector and --endpoints; they are inserted into the query as label matchers.")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        if data["resultType"] != "vector":
            raise ConfigError(f"Query {promql!r} returned a {data['resultType']}, not an instant vector.",
                              "Use an instant-vector expression.")
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]


def _reason(exc: requests.RequestException) -> str:
    """Why a request failed, without requests' URL (it carries the query percent-encoded)."""
    inner = getattr(exc.args[0], "reason", None) if exc.args else None  # urllib3's MaxRetryError
    text = str(inner or exc)
    # urllib3 prefixes the connection object's repr: keep what follows it.
    return text.split(": ", 1)[1] if text.startswith(("HTTPConnection", "HTTPSConnection", "<")) and ": " in text else text
