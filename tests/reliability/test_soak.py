"""Load: a short run of the soak benchmark (``benchmarks/soak.py``) against the real server.

2,000 single-row predicts at a fixed 500 req/s after 500 warm-up requests: zero errors seen by
the client, the server's own counters agree, and resident memory does not grow by more than a
generous 50 MiB (a leak of one row's features per request would already show at this size). The
full soak (30,000 requests, 60 s) writes ``benchmarks/results/soak.{json,md}``. Fuzzing the API
with schemathesis is ``tests/serving/test_schemathesis.py``.
"""

from __future__ import annotations

import pytest

from benchmarks.soak import soak

pytestmark = pytest.mark.slow


def test_a_short_soak_has_zero_errors_and_flat_memory() -> None:
    result = soak(rate=500, requests=2_000, threads=8, warmup=500)

    assert result["errors"] == 0 and result["warmup_errors"] == 0, result["outcomes"]
    assert result["outcomes"] == {"200": 2_000}
    counted = result["server_counted"]
    assert counted["2xx"] == counted["expected_2xx"] == 2_500 and counted["5xx"] == counted["4xx"] == 0
    assert result["rss_mb"]["growth"] < 50, result["rss_mb"]
    assert result["rss_mb"]["peak"] - result["rss_mb"]["before"] < 50, result["rss_mb"]
