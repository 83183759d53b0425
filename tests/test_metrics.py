from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftloop.model.metrics import regression_metrics


def test_known_values() -> None:
    m = regression_metrics([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 4.0])
    assert m["mae"] == pytest.approx(0.5)
    assert m["rmse"] == pytest.approx(np.sqrt(0.5))
    assert m["r2"] == pytest.approx(1 - 2 / 5)
    assert m["smape"] == pytest.approx(100 / 4 * (1 / 1.5 + 0 + 1 / 2.5 + 0))


def test_smape_is_safe_at_zero_and_bounded() -> None:
    assert regression_metrics([0.0, 0.0], [0.0, 0.0])["smape"] == 0.0  # both zero: a perfect prediction
    assert regression_metrics([0.0], [5.0])["smape"] == pytest.approx(200.0)


def test_constant_targets_and_missing_pairs() -> None:
    assert regression_metrics([3.0, 3.0], [3.0, 3.0])["r2"] == 1.0
    assert regression_metrics([3.0, 3.0], [2.0, 4.0])["r2"] == 0.0
    assert regression_metrics([1.0, np.nan, 3.0], [1.0, 7.0, 3.0])["mae"] == 0.0  # NaN pairs are left out
    assert np.isnan(regression_metrics([np.nan], [1.0])["mae"])
    with pytest.raises(ValueError, match="differ in length"):
        regression_metrics([1.0], [1.0, 2.0])


finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=50))
def test_metric_invariants(pairs: list[tuple[float, float]]) -> None:
    actual, predicted = zip(*pairs, strict=True)
    m = regression_metrics(actual, predicted)
    assert 0 <= m["mae"] <= m["rmse"] + 1e-9 * (1 + m["rmse"])
    assert 0 <= m["smape"] <= 200 + 1e-9
    assert m["r2"] <= 1 + 1e-12
    perfect = regression_metrics(actual, actual)
    assert perfect["mae"] == 0 and perfect["smape"] == 0 and perfect["r2"] == 1
