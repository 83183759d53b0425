from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from driftloop.errors import PreprocessError
from driftloop.preprocess import UNKNOWN, Preprocessor, TargetScaler

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


def test_state_round_trips_through_json_dicts() -> None:
    prep = Preprocessor.fit(TRAIN, ["x"], ["c"], nullable={"x"})
    again = Preprocessor.from_dict(prep.to_dict())
    assert again == prep
    assert np.array_equal(again.transform(TRAIN)[0], prep.transform(TRAIN)[0])


def test_targets_scale_and_unscale() -> None:
    scaler = TargetScaler.fit(TRAIN, ["y"])
    scaled = scaler.scale(TRAIN)
    assert scaled.mean() == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(scaler.unscale(scaled)[:, 0], TRAIN.get_column("y").to_numpy())


def test_errors_name_the_problem() -> None:
    with pytest.raises(PreprocessError, match="zero training rows"):
        Preprocessor.fit(TRAIN.head(0), ["x"], [], nullable=set())
    with pytest.raises(PreprocessError, match="no value in the training rows"):
        Preprocessor.fit(TRAIN.with_columns(pl.lit(None, pl.Float64).alias("x")), ["x"], [], nullable=set())
    with pytest.raises(PreprocessError, match=r"lacks column\(s\) \['c'\]"):
        Preprocessor.fit(TRAIN, ["x"], ["c"], nullable=set()).transform(TRAIN.drop("c"))
