from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from driftloop.errors import PreprocessError
from driftloop.runtime.preprocess import NUMPY_ROWS, UNKNOWN, Preprocessor

TRAIN = pl.DataFrame(
    {"x": [1.0, 2.0, 3.0, 4.0, None], "c": ["a", "a", "b", None, "b"], "y": [10.0, 20.0, 30.0, 40.0, 50.0]}
)


def test_fitted_on_training_rows_and_applied_the_same_everywhere() -> None:
    prep = Preprocessor.fit(TRAIN, ["x"], ["c"], nullable=set())
    state = prep.numeric["x"]
    assert state.fill == 2.5 and state.indicator  # a gap in training: imputed, with an indicator
    numbers, categories = prep.transform(pl.DataFrame({"x": [None, 1000.0], "c": ["b", "never seen"]}))
    assert numbers.shape == (2, 2) and prep.numeric_names == ["x", "x__missing"]
    assert numbers[0, 1] == 1.0 and numbers[1, 1] == 0.0
    assert numbers[1, 0] == pytest.approx((state.high - state.mean) / state.std)  # clipped to training range
    assert categories[:, 0].tolist() == [prep.categorical["c"].index("b") + 1, UNKNOWN]


def test_numbers_follow_the_documented_arithmetic_exactly() -> None:
    """Small frames go through NumPy, large ones through Polars; both give bit for bit the
    arithmetic: NaN is missing, clip, impute, standardise in float64, then one rounding to float32."""
    rng = np.random.default_rng(3)
    n = 2_000
    floats = rng.normal(5, 3, n)
    floats[:50] = np.nan
    floats[1600:1610] = np.inf  # after the training rows: the contract keeps infinities out of training
    floats[1610:1620] = -np.inf
    frame = pl.DataFrame(
        {
            "f": pl.Series(floats).scatter(range(70, 90), None),
            "i": pl.Series(rng.integers(-50, 50, n)).scatter(range(0, n, 7), None),
            "b": pl.Series(rng.random(n) > 0.5),
            "c": rng.choice(["a", "b", "z"], n),
        }
    )
    prep = Preprocessor.fit(frame.head(1500), ["f", "i", "b"], ["c"], nullable={"b"})
    numbers, _ = prep.transform(frame)
    reference = []
    for name, s in prep.numeric.items():
        value = pl.col(name).cast(pl.Float64).fill_nan(None)
        reference.append(((value.clip(s.low, s.high).fill_null(s.fill) - s.mean) / s.std).cast(pl.Float32))
        if s.indicator:
            reference.append(value.is_null().cast(pl.Float32).alias(f"{name}__missing"))
    expected = frame.select(reference).to_numpy()
    assert prep.numeric_names == ["f", "f__missing", "i", "i__missing", "b", "b__missing"]
    assert frame.height <= NUMPY_ROWS < 3 * frame.height
    assert numbers.dtype == np.float32 and np.array_equal(numbers, expected)
    assert np.isfinite(numbers).all()
    large, _ = prep.transform(pl.concat([frame] * 3))
    assert large.dtype == np.float32 and np.array_equal(large[: frame.height], expected)
    floats_only = Preprocessor.fit(frame.head(1500), ["f"], ["c"], nullable=set())  # all Float64: one copy
    assert np.array_equal(floats_only.transform(frame)[0], expected[:, :2])


def test_state_round_trips_through_json_dicts() -> None:
    prep = Preprocessor.fit(TRAIN, ["x"], ["c"], nullable={"x"})
    again = Preprocessor.from_dict(prep.to_dict())
    assert again == prep
    assert np.array_equal(again.transform(TRAIN)[0], prep.transform(TRAIN)[0])


def test_errors_name_the_problem() -> None:
    with pytest.raises(PreprocessError, match="zero training rows"):
        Preprocessor.fit(TRAIN.head(0), ["x"], [], nullable=set())
    with pytest.raises(PreprocessError, match="no value in the training rows"):
        Preprocessor.fit(TRAIN.with_columns(pl.lit(None, pl.Float64).alias("x")), ["x"], [], nullable=set())
    with pytest.raises(PreprocessError, match=r"lacks column\(s\) \['c'\]"):
        Preprocessor.fit(TRAIN, ["x"], ["c"], nullable=set()).transform(TRAIN.drop("c"))


def test_versions_reading_the_same_columns_share_one_reading_and_transform_their_own_copy() -> None:
    """A rollout's arms read a batch's numeric columns once: each version's matrix from the shared
    reading is the one it computes alone, the reading is left as it was, and a version that reads
    other columns reads its own."""
    train = pl.DataFrame({"a": [1.0, 2.0, None, 4.0, 50.0], "b": [3, 1, 4, 1, 5], "c": ["x", "y", "x", None, "z"]})
    one = Preprocessor.fit(train, ["a", "b"], ["c"], nullable={"a"})
    two = Preprocessor.fit(train.with_columns(pl.col("a") * 3), ["a", "b"], ["c"], nullable=set())  # other scaling
    other = Preprocessor.fit(train, ["b"], [], nullable=set())
    frame = pl.DataFrame({"a": [2.0, None, 100.0], "b": [1, 2, 3], "c": ["x", "w", None]})
    shared = one.read(frame)
    assert shared is not None and shared.names == ("a", "b")
    before = shared.values.copy()
    for version in (one, two, other):
        alone, together = version.transform(frame), version.transform(frame, shared)
        assert np.array_equal(alone[0], together[0]) and np.array_equal(alone[1], together[1])
    assert np.array_equal(shared.values, before, equal_nan=True)  # each transformed a copy
    big = pl.concat([frame] * (NUMPY_ROWS // 3 + 1))
    assert one.read(big) is None  # a large frame goes through Polars, read by each version
