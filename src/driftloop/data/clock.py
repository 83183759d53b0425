"""Time as driftloop keeps it: instants in UTC, days in the data's zone.

Every table stores an event time as a naive datetime that means UTC, one convention for every
engine and file. Text with an offset (``Z``, ``+01:00``) says its own instant; a naive time is
read in the contract's ``timezone``; a date is a day of that zone, and as an instant its local
midnight. The loop's day (daily predict, monitoring windows, replay days, the schedule) runs
from one local midnight to the next, so it lasts 23 or 25 hours on the days daylight saving
starts or ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import polars as pl

from driftloop.errors import ContractError

UTC_ZONE = "UTC"


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Paris``, ``Asia/Tokyo``, ``UTC``), or a ContractError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        near = sorted(z for z in available_timezones() if name.lower().replace(" ", "_") in z.lower())[:5]
        hint = f"; did you mean {', '.join(near)}?" if near else "; use an IANA name such as Europe/Paris or UTC"
        raise ContractError(f"unknown time zone {name!r}{hint}") from exc


def day_start(day: date, zone_name: str) -> datetime:
    """The instant (naive UTC) at which ``day`` starts in the zone: its local midnight."""
    local = datetime(day.year, day.month, day.day, tzinfo=zone(zone_name))
    return local.astimezone(UTC).replace(tzinfo=None)


def day_span(day: date, zone_name: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of ``day`` in the zone as naive UTC instants (23 or 25 hours apart on a
    daylight-saving day)."""
    return day_start(day, zone_name), day_start(day + timedelta(days=1), zone_name)


def days_span(first: date, last: date, zone_name: str) -> tuple[datetime, datetime]:
    """``[start, end)`` from the start of ``first`` to the end of ``last``, in the zone."""
    return day_start(first, zone_name), day_start(last + timedelta(days=1), zone_name)


def as_sent(rows: pl.DataFrame, datetime_columns: list[str], zone_name: str) -> pl.DataFrame:
    """Stored rows as a caller sends them: each of ``datetime_columns`` the zone's wall-clock time
    (naive, as MLflow's pyfunc takes datetimes), which reading back in the zone turns into the
    same instants (a repeated hour in time order, as :func:`from_local` reads it)."""
    if zone_name == UTC_ZONE:
        return rows
    local = [
        pl.col(c).dt.replace_time_zone(UTC_ZONE).dt.convert_time_zone(zone_name).dt.replace_time_zone(None)
        for c in datetime_columns
        if c in rows.columns
    ]
    return rows.with_columns(local) if local else rows


def window_start(last: date, days: float, zone_name: str) -> datetime:
    """The start of a window of ``days`` days ending with the day ``last``: whole days count from
    local midnights (so a week holding a daylight-saving day is 167 or 169 hours), a fraction of
    a day as 24-hour parts."""
    whole = int(days)
    return day_start(last - timedelta(days=whole - 1), zone_name) - timedelta(days=days - whole)


def local_day(instant: datetime, zone_name: str) -> date:
    """The day of the zone a naive UTC ``instant`` falls on."""
    return instant.replace(tzinfo=UTC).astimezone(zone(zone_name)).date()


def today(zone_name: str) -> date:
    """Today in the zone."""
    return datetime.now(zone(zone_name)).date()


def local_days(instants: pl.Expr, zone_name: str) -> pl.Expr:
    """The day of the zone each naive UTC instant falls on."""
    if zone_name == UTC_ZONE:
        return instants.dt.date()
    return instants.dt.replace_time_zone(UTC_ZONE).dt.convert_time_zone(zone_name).dt.date()


def from_local(times: pl.Expr, zone_name: str) -> pl.Expr:
    """Naive wall-clock times of the zone as naive UTC instants.

    A time the zone skips (02:30 on the night clocks go forward) does not exist and becomes
    null, so the check quarantines it with its text. A time the zone repeats (the hour clocks go
    back) is its earlier instant here; :func:`repeats_in_order` then moves its later occurrences.
    """
    if zone_name == UTC_ZONE:
        return times
    localized = times.dt.replace_time_zone(zone_name, ambiguous="earliest", non_existent="null")
    return localized.dt.convert_time_zone(UTC_ZONE).dt.replace_time_zone(None)


def repeats_in_order(instants: pl.Expr, zone_name: str, entity: Sequence[str] = ()) -> pl.Expr:
    """Instants read by :func:`from_local` with each wall-clock time the zone repeats read in
    the order the rows come, per entity: the first row of an entity at 01:30 on the night clocks
    go back is the earlier instant, its second the later, as a logger writing local time
    produces them (three weather stations each write 01:00 twice)."""
    if zone_name == UTC_ZONE:
        return instants
    wall = instants.dt.replace_time_zone(UTC_ZONE).dt.convert_time_zone(zone_name).dt.replace_time_zone(None)
    later = later_instants(instants, zone_name)
    again = pl.int_range(pl.len()).over([wall, *entity]) > 0
    return pl.when(again & (later != instants)).then(later).otherwise(instants)


def later_instants(instants: pl.Expr, zone_name: str) -> pl.Expr:
    """For instants read by :func:`from_local`, the later instant of the same wall-clock time:
    itself, except in the hour the zone repeats. (Each instant is its wall-clock time's earlier
    one, so grouping rows by instant groups them by wall-clock time.)"""
    wall = instants.dt.replace_time_zone(UTC_ZONE).dt.convert_time_zone(zone_name).dt.replace_time_zone(None)
    later = wall.dt.replace_time_zone(zone_name, ambiguous="latest", non_existent="null")
    return later.dt.convert_time_zone(UTC_ZONE).dt.replace_time_zone(None)


def as_instants(values: pl.Expr, is_date: bool, zone_name: str) -> pl.Expr:
    """An event-time column as naive UTC instants: a date is its local midnight."""
    if not is_date or zone_name == UTC_ZONE:
        return values.cast(pl.Datetime("us"))
    # Every row of a day gets the same instant: the first midnight where it happens twice, and
    # the hour after where the clocks skip it (a day then starts at 01:00).
    midnight = values.cast(pl.Datetime("us"))
    localized = [
        (midnight + pl.duration(hours=hours)).dt.replace_time_zone(zone_name, ambiguous="earliest", non_existent="null")
        for hours in (0, 1)
    ]
    return pl.coalesce(localized).dt.convert_time_zone(UTC_ZONE).dt.replace_time_zone(None)


def from_instants(instants: pl.Expr, is_date: bool, zone_name: str) -> pl.Expr:
    """The inverse of :func:`as_instants`: a date column gets back the local day."""
    if is_date:
        return local_days(instants, zone_name)
    return instants.cast(pl.Datetime("us"))


def date_bounds(since: datetime | None, until: datetime | None, zone_name: str) -> tuple[date | None, date | None]:
    """The days whose local midnight lies in ``[since, until)``, as ``[first, end)`` dates: how an
    instant window selects the rows of a date event time."""

    def first_day_from(instant: datetime | None) -> date | None:
        if instant is None:
            return None
        day = local_day(instant, zone_name)
        return day if day_start(day, zone_name) >= instant else day + timedelta(days=1)

    return first_day_from(since), first_day_from(until)


@dataclass(frozen=True)
class EventClock:
    """A contract's event-time column and how its values map to instants and days
    (``Contract.clock``)."""

    column: str
    is_date: bool
    zone: str

    def instants(self, values: pl.Expr | None = None) -> pl.Expr:
        """The column (or ``values`` of it) as naive UTC instants: a date is its local midnight."""
        return as_instants(pl.col(self.column) if values is None else values, self.is_date, self.zone)

    def from_instants(self, instants: pl.Expr) -> pl.Expr:
        """Instants back as the column's own type."""
        return from_instants(instants, self.is_date, self.zone).alias(self.column)

    def days(self, values: pl.Expr | None = None) -> pl.Expr:
        """The loop's day of each value (a date is its own day)."""
        column = pl.col(self.column) if values is None else values
        return column if self.is_date else local_days(column, self.zone)

    def bounds(
        self, since: datetime | None, until: datetime | None
    ) -> tuple[datetime | date | None, datetime | date | None]:
        """An instant window ``[since, until)`` as bounds to compare the column's values with."""
        return date_bounds(since, until, self.zone) if self.is_date else (since, until)


__all__ = [
    "UTC_ZONE",
    "EventClock",
    "as_instants",
    "date_bounds",
    "day_span",
    "day_start",
    "days_span",
    "from_instants",
    "from_local",
    "later_instants",
    "local_day",
    "local_days",
    "today",
    "window_start",
    "zone",
]
