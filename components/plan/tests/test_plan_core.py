"""plan_shards: the whole table's checks on pooled profiles, the split on every date, the gathered shards."""

from __future__ import annotations

import errno
import os
import random
import shutil

import pandas as pd
import pytest

from components.plan.core import plan_shards
from components.plan.shards import by_shard, gather_shards
from components.validate.core import validate_frame, validate_shard
from pricecast import frames
from pricecast.errors import ConfigError, SchemaValidationError
from pricecast.shard_profile import FREQUENCY, HISTORY, MIN_ROWS, TIME_SERIES
from pricecast.time_split import time_split
from tests.support.prices import price_frame


def _raw(frame: pd.DataFrame) -> pd.DataFrame:
    """As a CSV gives it: dates as text."""
    return frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d"))


def _profiles(parts: list[pd.DataFrame], **kwargs):
    shards = len(parts)
    return [validate_shard(_raw(part), shard=i, shards=shards, **kwargs)[2] for i, part in enumerate(parts)]


def _by_hash(frame: pd.DataFrame, shards: int) -> list[pd.DataFrame]:
    shard = frames.shard_of(frame["ticker"], shards)
    return [frame[shard == i].reset_index(drop=True) for i in range(shards)]


def _check(info: pytest.ExceptionInfo, label: str) -> dict:
    checks = info.value.diff["checks"]
    assert [c["check"] for c in checks] == [label], checks
    return checks[0]


# --------------------------------------------------------------------------- pooling
def test_the_split_of_the_shards_is_the_split_of_the_whole_table():
    # Tickers starting on different dates: no shard alone holds every date.
    whole = pd.concat([price_frame("business", tickers=1, periods=120 + 7 * k, start=f"2020-0{1 + k % 6}-01",
                                   seed=k).assign(ticker=f"T{k:02d}") for k in range(12)], ignore_index=True)
    parts = _by_hash(whole, 4)
    assert all(len(p) for p in parts) and len({len(p["date"].unique()) for p in parts}) > 1
    profiles = _profiles(parts)
    random.Random(3).shuffle(profiles)  # the fan-in's order means nothing

    the_plan = plan_shards(profiles, min_rows=100, test_fraction=0.2, n_windows=3)

    assert the_plan.split == time_split(whole, 0.2, 3)
    assert the_plan.shards == [0, 1, 2, 3] and the_plan.frequency == "business"
    assert the_plan.rows == len(whole) and the_plan.tickers == 12
    assert the_plan.dates == whole["date"].nunique()
    _, diff = validate_frame(_raw(whole))  # and one table passes validate the same way
    assert diff["frequency"] == "business"


def test_one_shard_plans_as_its_table_validates():
    whole = price_frame("weekly", tickers=3, periods=80)
    the_plan = plan_shards(_profiles([whole]), min_rows=100)
    assert the_plan.shards == [0] and the_plan.frequency == "weekly"
    assert the_plan.split == time_split(whole)


def test_empty_shards_and_shards_of_short_tickers_pass_when_the_table_is_good():
    long = price_frame("monthly", tickers=1, periods=60)
    short = [price_frame("monthly", tickers=1, periods=5, seed=k).assign(ticker=f"X{k}") for k in range(2)]
    parts = [short[0], long.iloc[:0], pd.concat([short[1], long], ignore_index=True), short[1].iloc[:1]
             .assign(ticker="ONE")]
    the_plan = plan_shards(_profiles(parts), min_rows=10)
    assert the_plan.frequency == "monthly" and the_plan.shards == [0, 1, 2, 3]


def test_a_named_frequency_is_the_plans():
    parts = _by_hash(price_frame("daily", tickers=6, periods=90), 2)
    assert plan_shards(_profiles(parts, frequency="daily"), frequency="daily").frequency == "daily"


# --------------------------------------------------------------------------- the whole table's checks
def test_too_few_rows_in_all_shards_together():
    parts = _by_hash(price_frame("business", tickers=4, periods=40), 3)
    with pytest.raises(SchemaValidationError) as info:
        plan_shards(_profiles(parts), min_rows=500)
    check = _check(info, MIN_ROWS)
    assert check["summary"] == "160 row(s) found, fewer than the minimum 500"
    assert check["fix"] == "Supply at least 500 rows (found 160), or lower --min-rows."
    assert info.value.problem == "The data does not match the price schema: 160 row(s) found, fewer than the minimum 500."
    assert plan_shards(_profiles(parts), min_rows=160).rows == 160


def test_a_cross_section_spread_over_shards_is_refused():
    raw = pd.DataFrame({"date": pd.Timestamp("2024-03-28"), "ticker": [f"T{i:03d}" for i in range(300)],
                        "price": [10.0 + i for i in range(300)]})
    with pytest.raises(SchemaValidationError) as info:
        plan_shards(_profiles(_by_hash(raw, 3)))
    check = _check(info, TIME_SERIES)
    assert check["summary"] == ("each of the 300 ticker(s) has a single date (2024-03-28): a cross-section, not "
                                "prices over time")
    assert "at least 28 consecutive dates of one ticker" in check["fix"]


def test_different_frequencies_in_different_shards_name_the_tickers_the_shards_and_the_fix():
    monthly = price_frame("monthly", tickers=2, periods=60)
    weekly = price_frame("weekly", tickers=1, periods=60).assign(ticker="W")
    profiles = _profiles([monthly, monthly.iloc[:0], weekly])  # each shard on its own is fine
    with pytest.raises(SchemaValidationError) as info:
        plan_shards(profiles)
    check = _check(info, FREQUENCY)
    assert check["summary"] == ("the tickers have different frequencies: monthly: S00, S01; weekly: W "
                                "(monthly in shard 0; weekly in shard 2)")
    assert check["fix"].startswith("Run each frequency separately")


def test_no_ticker_at_a_supported_frequency_in_any_shard():
    odd = [pd.DataFrame({"date": pd.date_range("2000-01-01", periods=40, freq="3D"), "ticker": t,
                         "price": 10.0}) for t in ("A", "B")]
    with pytest.raises(SchemaValidationError) as info:
        plan_shards(_profiles(odd), min_rows=10)
    assert _check(info, FREQUENCY)["summary"].startswith("the dates are 3 days apart")


def test_too_few_dates_or_no_ticker_with_history_before_the_test_period():
    short = price_frame("monthly", tickers=5, periods=24)
    with pytest.raises(SchemaValidationError) as info:
        plan_shards(_profiles(_by_hash(short, 2)))
    assert _check(info, HISTORY)["summary"].startswith("at monthly frequency the data has 24 distinct dates; "
                                                       "the model needs 28")
    # 40 tickers of 10 months each, one after the other: 400 distinct dates, none long enough.
    staggered = pd.concat([price_frame("monthly", tickers=1, periods=10, start=f"{1960 + k}-01-01")
                           .assign(ticker=f"T{k:02d}") for k in range(40)], ignore_index=True)
    with pytest.raises(SchemaValidationError) as info:
        plan_shards(_profiles(_by_hash(staggered, 3)))
    summary = _check(info, HISTORY)["summary"]
    assert summary.startswith("at monthly frequency no ticker has the 22 months before the test period "
                              "(from 1992-01-01) that training needs; the longest has 10 (a ticker of shard ")
    # One table says the same, naming the ticker.
    with pytest.raises(SchemaValidationError) as info:
        validate_frame(_raw(staggered))
    assert info.value.diff["checks"][0]["summary"].startswith(summary.split(" (a ticker")[0])


def test_profiles_that_are_not_every_shard_of_one_table_are_refused():
    parts = _by_hash(price_frame("business", tickers=6, periods=60), 3)
    profiles = _profiles(parts)
    with pytest.raises(ConfigError, match="missing 1"):
        plan_shards([profiles[0], profiles[2]])
    with pytest.raises(ConfigError, match="Two profiles are for shard 2"):
        plan_shards([*profiles, profiles[2]])
    clash = _profiles([parts[0], parts[0]])  # the same tickers in two shards
    with pytest.raises(ConfigError, match="must all be in one shard"):
        plan_shards(clash)
    with pytest.raises(ConfigError, match="test_fraction"):
        plan_shards(profiles, test_fraction=1.5)


def test_items_are_matched_by_shard_index_not_position():
    assert by_shard([(2, "c"), ("0", "a"), (1, "b")], "table") == {0: "a", 1: "b", 2: "c"}
    with pytest.raises(ConfigError, match="does not say which shard"):
        by_shard([(0, "a"), (None, "b")], "table")


# --------------------------------------------------------------------------- gathering the shards
def _files(tmp_path, n: int) -> dict[int, str]:
    sources = {}
    for shard in (2, 0, 1)[:n]:
        path = tmp_path / "tasks" / f"validate-{shard}" / "validated"
        path.parent.mkdir(parents=True)
        path.write_bytes(f"shard {shard}".encode())
        sources[shard] = str(path)
    return sources


def test_gathered_shards_are_hard_links_named_by_shard_index(tmp_path):
    sources = _files(tmp_path, 3)
    out = tmp_path / "plan" / "validated_shards"
    assert gather_shards(sources, out) == {"linked": 3, "copied": 0}
    assert [p.name for p in frames.shard_paths(out)] == [frames.SHARD_FILE.format(i) for i in range(3)]
    for shard, source in sources.items():
        target = frames.shard_path(out, shard)
        assert target.read_bytes() == f"shard {shard}".encode()
        assert os.path.samefile(target, source)
    assert [p.name for p in out.parent.iterdir()] == ["validated_shards"]  # no staging left


def test_another_filesystem_gets_copies(tmp_path, monkeypatch):
    def no_links(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    sources = _files(tmp_path, 2)
    out = tmp_path / "validated_shards"
    assert gather_shards(sources, out) == {"linked": 0, "copied": 2}
    assert frames.shard_path(out, 2).read_bytes() == b"shard 2"
    assert not os.path.samefile(frames.shard_path(out, 2), sources[2])


def test_a_failure_midway_leaves_no_half_written_directory(tmp_path, monkeypatch):
    def no_links(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    copies = []
    copy = shutil.copyfile

    def disk_full(source, target):
        if copies:
            raise OSError(errno.ENOSPC, "No space left on device")
        copies.append(target)
        return copy(source, target)

    monkeypatch.setattr(os, "link", no_links)
    monkeypatch.setattr(shutil, "copyfile", disk_full)
    out = tmp_path / "out" / "validated_shards"
    with pytest.raises(OSError, match="No space"):
        gather_shards(_files(tmp_path, 3), out)
    assert list((tmp_path / "out").iterdir()) == []
    assert copies and not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
