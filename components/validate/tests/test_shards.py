"""validate_shard: one shard of several is checked for what it can answer alone (issue 14)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.validate.core import validate_frame, validate_shard
from components.validate.diff import FREQUENCY, PRICE_POSITIVE
from components.validate.tests.conftest import good_frame
from pricecast.errors import SchemaValidationError
from pricecast.shard_profile import Profile
from tests.support.prices import price_frame


def _raw(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d"))


def test_one_shard_is_the_whole_table():
    raw = good_frame(tickers=("AAA", "BBB"))
    validated, diff, profile = validate_shard(raw)
    expected, expected_diff = validate_frame(raw)
    pd.testing.assert_frame_equal(validated, expected)
    assert diff == expected_diff and "scope" not in diff
    assert profile.shard == 0 and profile.shards == 1 and profile.rows == 300 and profile.tickers == 2
    assert profile.frequency == "business" and profile.longest == 150
    assert str(profile.dates[0]) == "2021-01-01" and len(profile.dates) == 150


def test_the_whole_table_checks_wait_for_plan():
    # Too few rows, one date per ticker, no frequency: each is about the whole table.
    one_date = pd.DataFrame({"date": "2024-03-28", "ticker": ["A", "B"], "price": [1.0, 2.0]})
    for raw in (good_frame(rows=5), one_date, good_frame().iloc[:0]):
        with pytest.raises(SchemaValidationError):
            validate_shard(raw, min_rows=100)
        validated, diff, profile = validate_shard(raw, min_rows=100, shard=1, shards=3)
        assert diff["valid"] and diff["shard"] == 1 and "checked across every shard by plan" in diff["scope"]
        assert profile.rows == len(validated) == len(raw) and profile.shards == 3


def test_what_a_shard_answers_alone_still_fails_it_naming_the_shard():
    bad = good_frame()
    bad.loc[5, "price"] = -3.0
    with pytest.raises(SchemaValidationError) as info:
        validate_shard(bad, shard=2, shards=4)
    assert info.value.problem.startswith("Shard 2 of 4: The data does not match the price schema: price:")
    assert info.value.diff["checks"][0]["check"] == PRICE_POSITIVE and info.value.diff["shard"] == 2

    mixed = pd.concat([price_frame("monthly", tickers=1, periods=60),
                       price_frame("weekly", tickers=1, periods=60).assign(ticker="W")], ignore_index=True)
    with pytest.raises(SchemaValidationError) as info:
        validate_shard(_raw(mixed), shard=0, shards=2)
    assert info.value.diff["checks"][0]["check"] == FREQUENCY
    with pytest.raises(SchemaValidationError, match="frequency business was asked for"):
        validate_shard(_raw(price_frame("monthly", tickers=2, periods=60)), frequency="business", shard=1, shards=2)


def test_the_profile_round_trips_through_json_and_counts_history_by_date():
    raw = pd.concat([_raw(price_frame("business", tickers=1, periods=10)),
                     _raw(price_frame("business", tickers=1, periods=4, start="2000-01-10")).assign(ticker="B")],
                    ignore_index=True)
    raw = pd.concat([raw, raw.iloc[[2]]], ignore_index=True)  # an exact duplicate is no extra date
    _, _, profile = validate_shard(raw, min_rows=1, shard=0, shards=2)
    data = json.loads(json.dumps(profile.to_dict()))
    assert set(data) >= {"shard", "rows", "tickers", "dates", "frequency"}
    assert data["rows"] == 15 and data["tickers"] == 2 and data["frequency"] == "business"
    assert data["dates"][:2] == ["2000-01-03", "2000-01-04"] and len(data["dates"]) == 10
    assert data["longest_before"] == list(range(10)) and data["longest"] == 10
    again = Profile.from_dict(data)
    assert again.to_dict() == data
    assert again.longest_before_date("2000-01-05") == 2 and again.longest_before_date("2030-01-01") == 10


def test_the_component_refuses_a_shard_the_raw_table_does_not_have(tmp_path, isolated_store):
    from types import SimpleNamespace

    from components.validate.component import validate
    from pricecast import frames
    from pricecast.errors import ConfigError

    raw = tmp_path / "raw"
    raw.mkdir()
    for shard in range(2):
        good_frame().to_parquet(frames.shard_path(raw, shard), index=False)
    outputs = {name: SimpleNamespace(path=str(tmp_path / name), metadata={})
               for name in ("validated", "schema_diff", "schema_report", "profile")}
    with pytest.raises(ConfigError, match="has no part-00002.parquet"):
        validate(raw=SimpleNamespace(path=str(raw), metadata={}), shard=2, shards=3, **outputs)
    with pytest.raises(ConfigError, match="has 2 shard"):
        validate(raw=SimpleNamespace(path=str(raw), metadata={"shards": 2.0}), shard=1, shards=3, **outputs)
    assert validate(raw=SimpleNamespace(path=str(raw), metadata={"shards": 2.0}), shard=1, shards=2,
                    **outputs) == "business"
    assert outputs["profile"].metadata["shard"] == 1 and outputs["validated"].metadata["shards"] == 2
    assert (isolated_store.log_dir / "validate-s1.log").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30)), min_size=1, max_size=80))
def test_the_profile_in_row_chunks_counts_what_a_plain_count_does(monkeypatch, rows):
    """Profile.of walks the rows in chunks; the history it counts is chunk size independent."""
    from pricecast import frequency as freq
    from pricecast import shard_profile

    monkeypatch.setattr(shard_profile, "_CHUNK_ROWS", 3)
    rows = sorted(rows)  # (ticker, day) order, exact duplicates kept
    codes = np.array([c for c, _ in rows], dtype=np.int64)
    day = np.array([d for _, d in rows], dtype=np.int64).astype("datetime64[D]")
    names = pd.Index([f"T{c}" for c in range(int(codes.max()) + 1)])
    profile = Profile.of(codes, day, freq.detect_sorted(codes, names, day), None)
    distinct = sorted(set(rows))
    dates = sorted({d for _, d in distinct})
    history = {c: sorted(d for t, d in distinct if t == c) for c in set(codes.tolist())}
    expected = [max(sum(d < date for d in days) for days in history.values()) for date in dates]
    assert profile.dates.astype(np.int64).tolist() == dates
    assert profile.longest_before.tolist() == expected
    assert profile.longest == max(len(days) for days in history.values())
