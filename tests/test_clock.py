from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from driftloop.cli.loop import next_run, window
from driftloop.data.clock import EventClock, date_bounds, day_span, local_days, window_start
from driftloop.data.contract import Contract
from driftloop.errors import ConfigError


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2016, 3, 26), 24), (date(2016, 3, 27), 23), (date(2016, 10, 30), 25), (date(2016, 10, 31), 24)],
)
def test_a_day_of_the_zone_runs_from_midnight_to_midnight(day: date, hours: int) -> None:
    start, end = day_span(day, "Europe/Paris")
    assert end - start == timedelta(hours=hours)
    assert start.hour in (22, 23)  # Paris midnight is 22:00 or 23:00 UTC


def test_tokyo_gets_its_own_midnight() -> None:
    start, end = day_span(date(2016, 3, 1), "Asia/Tokyo")
    assert (start, end) == (datetime(2016, 2, 29, 15), datetime(2016, 3, 1, 15))
    instants = pl.Series([datetime(2016, 2, 29, 14, 59), datetime(2016, 2, 29, 15, 0)])
    assert instants.to_frame("t").select(local_days(pl.col("t"), "Asia/Tokyo")).to_series().to_list() == [
        date(2016, 2, 29),
        date(2016, 3, 1),
    ]


def test_a_week_with_a_daylight_saving_day_is_a_week_of_local_days() -> None:
    end = day_span(date(2016, 3, 28), "Europe/Paris")[1]
    start = window_start(date(2016, 3, 28), 7, "Europe/Paris")
    assert end - start == timedelta(hours=7 * 24 - 1)
    assert window_start(date(2016, 3, 28), 0.5, "UTC") == datetime(2016, 3, 28, 12)


def test_dates_are_local_days_and_round_trip_through_instants() -> None:
    clock = EventClock("day", True, "America/New_York")
    frame = pl.DataFrame({"day": [date(2016, 3, 12), date(2016, 3, 13)]})
    instants = frame.select(clock.instants()).to_series()
    assert instants.to_list() == [datetime(2016, 3, 12, 5), datetime(2016, 3, 13, 5)]
    assert instants.to_frame("event_time").select(clock.from_instants(pl.col("event_time"))).to_series().to_list() == [
        date(2016, 3, 12),
        date(2016, 3, 13),
    ]
    # The rows of a date column a window of instants selects: the days whose midnight is inside it.
    assert date_bounds(*day_span(date(2016, 3, 13), "America/New_York"), "America/New_York") == (
        date(2016, 3, 13),
        date(2016, 3, 14),
    )


def test_command_line_windows_are_days_of_the_zone_and_offsets_are_honoured() -> None:
    assert window("2016-03-27", None, None, "Europe/Paris") == day_span(date(2016, 3, 27), "Europe/Paris")
    start, end = window(None, "2016-03-01T06:00", "2016-03-01T06:00Z", "Asia/Tokyo")
    assert (start, end) == (datetime(2016, 2, 29, 21), datetime(2016, 3, 1, 6))
    with pytest.raises(ConfigError, match="not an ISO date"):
        window("yesterday", None, None, "UTC")


def test_the_schedule_fires_at_the_zones_wall_clock_time() -> None:
    # 02:00 in Paris is 00:00 UTC in summer and 01:00 UTC in winter.
    assert next_run(datetime(2016, 7, 1, 12, tzinfo=UTC), 2, 0, "Europe/Paris") == datetime(2016, 7, 2, 0, tzinfo=UTC)
    assert next_run(datetime(2016, 12, 1, 12, tzinfo=UTC), 2, 0, "Europe/Paris") == datetime(2016, 12, 2, 1, tzinfo=UTC)


def test_an_unknown_zone_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ValueError, match="did you mean Asia/Tokyo"):
        Contract(columns={}, timezone="tokyo")
