"""The profile of a set of columns over the same rows, computed in one vectorised pass per column.

A column's profile has a kind (one module each: ``numeric``, ``category``), merges exactly with
another of the same column, and round-trips through JSON: the model package carries its training
window's profile, and drift tests read profiles only, never rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Self

import polars as pl

from driftloop.profiles.category import CategoryProfile, category_profile
from driftloop.profiles.numeric import NumericProfile, numeric_profile

DEFAULT_BINS = 100
ColumnProfile = NumericProfile | CategoryProfile
# Each kind's name in a profile's JSON, and its class.
KINDS: dict[str, type[NumericProfile] | type[CategoryProfile]] = {
    "numeric": NumericProfile,
    "category": CategoryProfile,
}


@dataclass
class Profile:
    """Profiles of a set of columns over the same rows."""

    rows: int
    columns: dict[str, ColumnProfile]

    def merge(self, other: Profile) -> Profile:
        """The profile of both sets of rows together (both must profile the same columns)."""
        if self.columns.keys() != other.columns.keys():
            raise ValueError(f"profiles of different columns: {sorted(self.columns)} vs {sorted(other.columns)}")
        merged = {name: _merge(p, other.columns[name]) for name, p in self.columns.items()}
        return Profile(self.rows + other.rows, merged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "columns": {name: {"kind": _kind(p), **asdict(p)} for name, p in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        columns: dict[str, ColumnProfile] = {}
        for name, raw in data["columns"].items():
            fields = {k: v for k, v in raw.items() if k != "kind"}
            try:
                columns[name] = KINDS[raw["kind"]](**fields)
            except (KeyError, TypeError) as exc:
                raise ValueError(
                    f"the profile of column {name!r} is not in this driftloop's format ({exc}); "
                    "retrain the model to give it a current reference profile"
                ) from exc
        return cls(int(data["rows"]), columns)


def profile(
    frame: pl.DataFrame,
    numeric: list[str],
    categorical: list[str],
    *,
    like: Profile | None = None,
    bins: int = DEFAULT_BINS,
) -> Profile:
    """Profile ``frame``'s columns; with ``like``, numeric columns reuse its bin edges."""
    columns: dict[str, ColumnProfile] = {}
    for name in numeric:
        reference = like.columns.get(name) if like else None
        edges = reference.edges if isinstance(reference, NumericProfile) else None
        columns[name] = numeric_profile(frame.get_column(name), edges, bins)
    for name in categorical:
        columns[name] = category_profile(frame.get_column(name))
    return Profile(frame.height, columns)


def _kind(column: ColumnProfile) -> str:
    return next(name for name, kind in KINDS.items() if isinstance(column, kind))


def _merge(a: ColumnProfile, b: ColumnProfile) -> ColumnProfile:
    if isinstance(a, NumericProfile) and isinstance(b, NumericProfile):
        return a.merge(b)
    if isinstance(a, CategoryProfile) and isinstance(b, CategoryProfile):
        return a.merge(b)
    raise ValueError("cannot merge a numeric profile with a category profile")
