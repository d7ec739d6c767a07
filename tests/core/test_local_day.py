"""pricecast.local_day: a timestamp's UTC offset is dropped after its time of day, and only there."""

from __future__ import annotations

import numpy as np
import pytest

from pricecast.local_day import strip_utc_offset, unix_time_unit


@pytest.mark.parametrize(("text", "expected"), [
    ("2021-01-04 00:00:00+09:00", "2021-01-04 00:00:00"),
    ("2021-01-04T00:00:00.000+01:00", "2021-01-04T00:00:00.000"),
    ("2021-01-04T23:30Z", "2021-01-04T23:30"),
    ("04.01.2021 00:00 +0900", "04.01.2021 00:00"),
    ("2021-01-04 00:00:00-05", "2021-01-04 00:00:00"),
    # no time of day: nothing that looks like an offset is one
    ("04-01-2021", "04-01-2021"),
    ("2021-01-04", "2021-01-04"),
    ("20210104", "20210104"),
    ("Jan 04 2021", "Jan 04 2021"),
    ("2021-01-04 00:00:00", "2021-01-04 00:00:00"),
])
def test_the_offset_after_a_time_of_day_is_dropped_and_nothing_else(text: str, expected: str) -> None:
    assert strip_utc_offset(text) == expected


@pytest.mark.parametrize(("numbers", "unit"), [
    ([1_609_718_400, 1_609_804_800], "s"),
    ([1_609_718_400_000, np.nan], "ms"),
    ([1_609_718_400_000_000], "us"),
    ([1_609_718_400_000_000_000], "ns"),
    ([20_210_104, 20_210_105], None),  # YYYYMMDD: below 1e8, not Unix time
    ([44_200.0], None),  # an Excel serial day: not guessed
    ([np.nan], None),
])
def test_the_unix_time_unit_is_read_off_the_numbers_size(numbers, unit) -> None:
    assert unix_time_unit(np.array(numbers, dtype=np.float64)) == unit
