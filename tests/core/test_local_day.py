"""pricecast.local_day: a timestamp's UTC offset is dropped after its time of day, and only there."""

from __future__ import annotations

import pytest

from pricecast.local_day import strip_utc_offset


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
