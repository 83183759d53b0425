from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftloop.profiles import OTHER, CategoryProfile, NumericProfile, Profile, profile


def test_reference_bins_hold_equal_shares_and_windows_reuse_them() -> None:
    rng = np.random.default_rng(0)
    reference = profile(pl.DataFrame({"x": rng.normal(0, 1, 10_000)}), ["x"], [], bins=10)
    x = reference.columns["x"]
    assert isinstance(x, NumericProfile)
    assert len(x.counts) == 10 and max(x.counts) - min(x.counts) <= 2
    assert x.edges[0] == -math.inf and x.edges[-1] == math.inf
    shifted = profile(pl.DataFrame({"x": rng.normal(3, 1, 1000)}), ["x"], [], like=reference)
    moved = shifted.columns["x"]
    assert isinstance(moved, NumericProfile)
    assert moved.edges == x.edges and moved.counts[-1] > 900  # most of the shifted window is past the top decile


def test_summary_statistics_and_nulls() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0, None, float("nan"), 3.0], "c": ["a", "b", "a", None, "a"]})
    p = profile(frame, ["x"], ["c"])
    x, c = p.columns["x"], p.columns["c"]
    assert isinstance(x, NumericProfile) and isinstance(c, CategoryProfile)
    assert (x.count, x.nulls, x.minimum, x.maximum, x.mean) == (3, 2, 1.0, 3.0, 2.0)
    assert x.std == pytest.approx(1.0)
    assert (c.count, c.nulls, c.counts) == (4, 1, {"a": 3, "b": 1})


def test_many_categories_keep_the_most_frequent() -> None:
    names = [f"k{i}" for i in range(300)] + ["k0"] * 5
    c = profile(pl.DataFrame({"c": names}), [], ["c"]).columns["c"]
    assert isinstance(c, CategoryProfile)
    assert c.counts["k0"] == 6 and c.counts[OTHER] == 100 and sum(c.counts.values()) == 305


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200),
)
def test_profiles_merge_exactly(first: list[float], second: list[float]) -> None:
    reference = profile(pl.DataFrame({"x": first}), ["x"], [])
    a = profile(pl.DataFrame({"x": first}), ["x"], [], like=reference)
    b = profile(pl.DataFrame({"x": second}), ["x"], [], like=reference)
    both = profile(pl.DataFrame({"x": first + second}), ["x"], [], like=reference)
    merged = a.merge(b).columns["x"]
    whole = both.columns["x"]
    assert isinstance(merged, NumericProfile) and isinstance(whole, NumericProfile)
    assert merged.counts == whole.counts and merged.count == whole.count
    assert merged.total == pytest.approx(whole.total, rel=1e-9, abs=1e-6)
    assert Profile.from_dict(a.merge(b).to_dict()) == a.merge(b)
