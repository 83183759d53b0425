"""Drift tests over profiles: one shared suite for every test, then each test's own properties."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp, wasserstein_distance

from driftloop.monitor import stattests
from driftloop.monitor.drift import choose_test, compare
from driftloop.monitor.stattests import DriftTest
from driftloop.monitor.stattests.ks import ks_statistic, max_error
from driftloop.monitor.stattests.wasserstein import wasserstein
from driftloop.profiles import NumericProfile, profile
from driftloop.settings.monitor import MonitorSettings

RNG = np.random.default_rng(0)
SAME = RNG.normal(0, 1, 20_000)
LATER = RNG.normal(0, 1, 5_000)
SHIFTED = RNG.normal(1.5, 1, 5_000)
COLOURS = RNG.choice(["red", "green", "blue"], 20_000, p=[0.6, 0.3, 0.1])


def numeric_pair(reference: np.ndarray, current: np.ndarray) -> tuple[NumericProfile, NumericProfile]:
    ref = profile(pl.DataFrame({"x": reference}), ["x"], [])
    cur = profile(pl.DataFrame({"x": current}), ["x"], [], like=ref)
    a, b = ref.columns["x"], cur.columns["x"]
    assert isinstance(a, NumericProfile) and isinstance(b, NumericProfile)
    return a, b


def category_pair(reference: np.ndarray, current: np.ndarray):  # type: ignore[no-untyped-def]
    ref = profile(pl.DataFrame({"c": reference}), [], ["c"])
    cur = profile(pl.DataFrame({"c": current}), [], ["c"])
    return ref.columns["c"], cur.columns["c"]


@pytest.mark.parametrize("test", list(stattests.tests().values()), ids=lambda t: t.name)
def test_every_test_is_quiet_on_the_same_distribution_and_fires_on_a_shift(test: DriftTest) -> None:
    if test.applies_to == "numeric":
        quiet, loud = numeric_pair(SAME, LATER), numeric_pair(SAME, SHIFTED)
    else:
        later = RNG.choice(["red", "green", "blue"], 5_000, p=[0.6, 0.3, 0.1])
        moved = RNG.choice(["red", "green", "blue", "purple"], 5_000, p=[0.2, 0.3, 0.3, 0.2])
        quiet, loud = category_pair(COLOURS, later), category_pair(COLOURS, moved)
    assert not test(*quiet, test.default_threshold).drifted
    assert test(*loud, test.default_threshold).drifted


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=5, max_size=300),
    st.lists(st.floats(-1e3, 1e3), min_size=5, max_size=300),
)
def test_binned_ks_is_within_its_stated_bound_of_scipys_exact_statistic(
    first: list[float], second: list[float]
) -> None:
    ref, cur = numeric_pair(np.asarray(first), np.asarray(second))
    exact = ks_2samp(first, second).statistic
    ours = ks_statistic(ref, cur)
    assert ours <= exact + 1e-9
    assert exact - ours <= max_error(ref, cur) + 1e-9


def test_binned_ks_is_close_on_large_samples() -> None:
    ref, cur = numeric_pair(SAME, SHIFTED[:2000] * 0.2 + 0.1)
    exact = ks_2samp(SAME, SHIFTED[:2000] * 0.2 + 0.1).statistic
    assert abs(ks_statistic(ref, cur) - exact) < 0.02


def test_binned_wasserstein_approximates_scipy() -> None:
    ref, cur = numeric_pair(SAME, SHIFTED)
    assert wasserstein(ref, cur) == pytest.approx(wasserstein_distance(SAME, SHIFTED), rel=0.05)


def test_method_follows_type_and_reference_size() -> None:
    defaults = MonitorSettings()
    assert choose_test("numeric", 5000, defaults).name == "wasserstein"
    assert choose_test("numeric", 500, defaults).name == "ks"
    assert choose_test("category", 5000, defaults).name == "jensenshannon"
    assert choose_test("category", 500, defaults).name == "chisquare"
    assert choose_test("numeric", 5000, MonitorSettings(numeric_test="psi")).name == "psi"


def test_dataset_drift_null_rates_and_new_categories() -> None:
    frame = pl.DataFrame({"a": SAME[:5000], "b": SAME[5000:10000], "c": COLOURS[:5000]})
    reference = profile(frame, ["a", "b"], ["c"])
    later = frame.with_columns(
        (pl.col("a") + 3).alias("a"),
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(None).otherwise(pl.col("b")).alias("b"),
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("purple")).otherwise(pl.col("c")).alias("c"),
    )
    report = compare(reference, profile(later, ["a", "b"], ["c"], like=reference), MonitorSettings())
    by_name = {c.column: c for c in report.columns}
    assert report.drifted == ["a", "c"] and report.dataset_drift and report.drift_share == pytest.approx(2 / 3)
    assert by_name["b"].null_rate_current == pytest.approx(1 / 3, abs=0.01) and by_name["b"].null_rate_reference == 0
    assert by_name["c"].new_categories == ["purple"]
    assert "psi" in by_name["a"].extra and "ks" in by_name["a"].extra
    strict = compare(reference, profile(later, ["a", "b"], ["c"], like=reference), MonitorSettings(drift_share=1.0))
    assert not strict.dataset_drift


values = st.lists(st.sampled_from([0.0, 1.0, 2.0, 2.5, -7.0, 1e6]) | st.floats(-1e6, 1e6), max_size=200)


@settings(max_examples=80, deadline=None)
@given(values.filter(bool), values)
def test_no_test_breaks_on_degenerate_data(reference: list[float], current: list[float]) -> None:
    ref, cur = numeric_pair(np.asarray(reference), np.asarray(current))
    for test in stattests.tests().values():
        if test.applies_to == "numeric":
            result = test(ref, cur, test.default_threshold)
            assert np.isfinite(result.statistic)
    categories = category_pair(np.asarray([str(v) for v in reference]), np.asarray([str(v) for v in current] or ["x"]))
    for test in stattests.tests().values():
        if test.applies_to == "category":
            assert np.isfinite(test(*categories, test.default_threshold).statistic)


def autocorrelated(days: int, seed: int) -> np.ndarray:
    """Hourly readings that wander slowly (AR(1), a day's memory), as a room's temperature does."""
    rng = np.random.default_rng(seed)
    values = np.zeros(days * 24)
    for i in range(1, values.size):
        values[i] = 0.96 * values[i - 1] + rng.normal(0, 0.3)
    return values


def test_calibrated_thresholds_learn_how_far_stable_weeks_move_and_still_catch_a_shift() -> None:
    from driftloop.monitor.calibration import window_statistics

    history = autocorrelated(120, seed=1)
    reference = profile(pl.DataFrame({"x": history[: 60 * 24]}), ["x"], [])
    week = 7 * 24
    windows = [profile(pl.DataFrame({"x": history[d * 24 : d * 24 + week]}), ["x"], [], like=reference)
               for d in range(0, 60 - 7)]  # fmt: skip
    calibration = window_statistics(reference, windows, MonitorSettings())
    assert calibration["x"]["test"] == "wasserstein" and len(calibration["x"]["statistics"]) == 53
    later = [history[d * 24 : d * 24 + week] for d in range(60, 120 - 7, 7)]  # eight later stable weeks
    fixed, calibrated = MonitorSettings(drift_thresholds="fixed"), MonitorSettings(false_alarm_rate=0.02)

    def drifted(values: np.ndarray, settings: MonitorSettings) -> bool:
        current = profile(pl.DataFrame({"x": values}), ["x"], [], like=reference)
        report = compare(reference, current, settings, calibration)
        assert report.columns[0].result.calibrated is (settings.drift_thresholds == "calibrated")
        return report.columns[0].drifted

    # The fixed 0.1 flags most stable weeks of wandering data; the calibrated threshold few.
    assert sum(drifted(w, fixed) for w in later) >= 6
    assert sum(drifted(w, calibrated) for w in later) <= 2
    # A real shift (the sensor reads 3 reference deviations high) is beyond both.
    shifted = later[0] + 3 * history[: 60 * 24].std()
    assert drifted(shifted, fixed) and drifted(shifted, calibrated)
    # Too few windows, or statistics of another test: the fixed threshold holds.
    few = window_statistics(reference, windows[:3], MonitorSettings())
    current = profile(pl.DataFrame({"x": later[0]}), ["x"], [], like=reference)
    assert not compare(reference, current, calibrated, few).columns[0].result.calibrated
    assert not compare(reference, current, MonitorSettings(numeric_test="ks"), calibration).columns[0].result.calibrated


def test_a_sensor_stuck_where_the_data_usually_is_counts_as_drifted() -> None:
    from driftloop.monitor.calibration import window_statistics
    from driftloop.monitor.verdict import decide

    history = autocorrelated(60, seed=2)
    month = np.repeat(np.arange(2.0), 30 * 24)  # a calendar feature: one value all week
    frame = pl.DataFrame({"x": history, "month": month})
    reference = profile(frame, ["x", "month"], [])
    windows = [profile(frame.slice(d * 24, 7 * 24), ["x", "month"], [], like=reference) for d in range(53)]
    calibration = window_statistics(reference, windows, MonitorSettings())
    assert calibration["x"]["single_valued"] == 0 and calibration["month"]["single_valued"] > 0
    stuck = float(np.median(history))  # its last reading, right where the data usually sits
    week = pl.DataFrame({"x": np.full(7 * 24, stuck), "month": np.ones(7 * 24)})
    current = profile(week, ["x", "month"], [], like=reference)
    report = compare(reference, current, MonitorSettings(), calibration)
    x, same_month = report.columns
    assert x.stuck_at == stuck and x.drifted and same_month.stuck_at is None
    verdict = decide(report, None, [], MonitorSettings())
    assert any("x: stuck at" in reason for reason in verdict.reasons)
    # Without the training data's windows, one value proves nothing: not called stuck.
    assert compare(reference, current, MonitorSettings()).columns[0].stuck_at is None
    few = profile(week.head(5), ["x", "month"], [], like=reference)
    assert compare(reference, few, MonitorSettings(), calibration).columns[0].stuck_at is None


def test_an_input_the_model_ignores_does_not_make_the_dataset_drift() -> None:
    frame = pl.DataFrame({"used": SAME[:5000], "ignored": SAME[5000:10000]})
    reference = profile(frame, ["used", "ignored"], [])
    later = pl.DataFrame({"used": LATER, "ignored": SHIFTED})  # only the ignored input moves
    current = profile(later, ["used", "ignored"], [], like=reference)
    settings = MonitorSettings(drift_share=0.5)
    plain = compare(reference, current, settings)
    assert plain.drifted == ["ignored"] and plain.dataset_drift and not plain.weighted
    weighted = compare(reference, current, settings, importance={"used": 0.97, "ignored": 0.03})
    assert weighted.weighted and weighted.drift_share == pytest.approx(0.03) and not weighted.dataset_drift
    assert weighted.drifted == ["ignored"]  # still reported, column by column
    off = compare(reference, current, MonitorSettings(weigh_by_importance=False), importance={"used": 1.0})
    assert off.dataset_drift and not off.weighted


def test_a_calibrated_threshold_is_read_on_the_statistic_in_the_report() -> None:
    from driftloop.monitor.drift import ColumnDrift
    from driftloop.monitor.report import severity
    from driftloop.monitor.stattests import TestResult

    fixed = ColumnDrift("x", "numeric", TestResult("ks", 0.2, 0.05, True, p_value=0.005))
    calibrated = ColumnDrift("x", "numeric", TestResult("ks", 0.2, 0.1, True, p_value=0.005, calibrated=True))
    assert severity(fixed) == pytest.approx(10.0)  # threshold / p
    assert severity(calibrated) == pytest.approx(2.0)  # statistic / threshold
