"""Property: validating a table in shards (validate per shard, then plan) decides what validating it
whole decides (issue 14): both accept it, with the same frequency and the same split, or both
refuse it with a named error. Frames from the cores property test's generator (every supported
frequency, short tickers among long ones, constant series, spikes, shared or staggered dates).
"""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from components.plan.core import plan_shards
from components.validate.core import validate_frame, validate_shard
from pricecast import frames
from pricecast.errors import PricecastError
from pricecast.time_split import time_split
from tests.pipeline.test_cores_property import N_WINDOWS, TEST_FRACTION, price_frames


def _whole(raw: pd.DataFrame) -> tuple[str, object] | None:
    try:
        validated, diff = validate_frame(raw, min_rows=1, test_fraction=TEST_FRACTION, n_windows=N_WINDOWS)
        return diff["frequency"], time_split(validated, TEST_FRACTION, N_WINDOWS)
    except PricecastError:
        return None


def _sharded(raw: pd.DataFrame, shards: int) -> tuple[str, object] | None:
    shard = frames.shard_of(raw["ticker"], shards)
    try:
        profiles = [validate_shard(raw[shard == i], min_rows=1, test_fraction=TEST_FRACTION, n_windows=N_WINDOWS,
                                   shard=i, shards=shards)[2] for i in range(shards)]
        the_plan = plan_shards(profiles, min_rows=1, test_fraction=TEST_FRACTION, n_windows=N_WINDOWS)
        return the_plan.frequency.value, the_plan.split
    except PricecastError as exc:
        assert exc.problem and exc.fix
        return None


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=price_frames(), shards=st.sampled_from([2, 3, 5]))
def test_shards_accept_what_the_whole_table_accepts_with_the_same_frequency_and_split(raw, shards) -> None:
    whole = _whole(raw)
    event("accepted" if whole else "refused")
    assert _sharded(raw, shards) == whole
