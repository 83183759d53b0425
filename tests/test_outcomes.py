"""What a device reports of its labelled predictions: sums that add up exactly (a device's two
reports, or two devices, give the metrics of all their rows together), the same metrics training
computes, and a report format that refuses what it is not."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftloop.model.metrics import classification_metrics, regression_metrics
from driftloop.profiles import profile
from driftloop.profiles.device_report import DeviceReport
from driftloop.profiles.outcomes import LabelOutcome, NumberOutcome, from_dict, outcome, to_dict

numbers = st.lists(st.floats(-1e3, 1e3), min_size=4, max_size=60)


@settings(max_examples=60, deadline=None)
@given(numbers, st.integers(1, 3), st.data())
def test_number_outcomes_merge_exactly_and_agree_with_training_metrics(
    actual: list[float], cut: int, data: st.DataObject
) -> None:
    predicted = data.draw(st.lists(st.floats(-1e3, 1e3), min_size=len(actual), max_size=len(actual)))
    whole = outcome(pl.Series(actual), pl.Series(predicted), None)
    halves = [outcome(pl.Series(actual[s]), pl.Series(predicted[s]), None) for s in (slice(0, cut), slice(cut, None))]
    merged = halves[0].merge(halves[1])  # type: ignore[arg-type]
    expected = regression_metrics(np.array(actual), np.array(predicted))
    for name, value in merged.metrics().items():
        assert value == pytest.approx(whole.metrics()[name], rel=1e-6, abs=1e-6, nan_ok=True)
        assert value == pytest.approx(expected[name], rel=1e-6, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=80), st.data())
def test_label_outcomes_merge_exactly_and_agree_with_training_metrics(actual: list[int], data: st.DataObject) -> None:
    classes = ["a", "b", "c", "d"]
    predicted = data.draw(st.lists(st.integers(0, 3), min_size=len(actual), max_size=len(actual)))
    cut = data.draw(st.integers(1, len(actual) - 1))
    names = pl.Series([classes[i] for i in actual]), pl.Series([classes[i] for i in predicted])
    first = outcome(names[0][:cut], names[1][:cut], classes)
    second = outcome(names[0][cut:], names[1][cut:], classes)
    merged = first.merge(second)  # type: ignore[arg-type]
    assert merged == outcome(*names, classes)
    expected = classification_metrics(np.array(actual, dtype=float), np.eye(4)[predicted])
    for name, value in merged.metrics().items():
        assert value == pytest.approx(expected[name], rel=1e-9)


def test_outcomes_round_trip_and_refuse_what_they_are_not() -> None:
    for kept in (NumberOutcome(3, 1.5, 2.0, 6.0, 14.0), LabelOutcome(["x", "y"], [[2, 1], [0, 3]])):
        assert from_dict(to_dict(kept)) == kept
    bad = [
        ({"kind": "number", "count": 3}, "lacks"),
        ({"kind": "label", "classes": ["x", "y"], "confusion": [[1, 2, 3]]}, "2 x 2"),
        ({"kind": "histogram"}, "'number' or 'label'"),
        ({"kind": "label", "classes": ["x"], "confusion": 5}, "mistypes"),
    ]
    for raw, message in bad:
        with pytest.raises(ValueError, match=message):
            from_dict(raw)
    with pytest.raises(ValueError, match="different classes"):
        LabelOutcome(["x"], [[1]]).merge(LabelOutcome(["y"], [[1]]))


def test_a_device_report_round_trips_and_names_what_is_wrong() -> None:
    frame = pl.DataFrame({"a": [0.1, 0.5, None, 2.0], "c": ["x", "y", "x", None]})
    report = DeviceReport(
        report_id="d|1|1-4.1-0", device="d", model="m", version="1", made_at=datetime(2026, 1, 2, tzinfo=UTC), rows=4,
        since=datetime(2026, 1, 1, tzinfo=UTC), until=datetime(2026, 1, 2, tzinfo=UTC),
        inputs=profile(frame, ["a"], ["c"]), predictions=None, labelled=2,
        outcomes={"y": NumberOutcome(2, 1.0, 0.5, 3.0, 5.0)}, status={"serving": "1"},
    )  # fmt: skip
    assert DeviceReport.from_dict(report.to_dict()) == report
    raw = report.to_dict()
    bad = [
        ({k: v for k, v in raw.items() if k != "version"}, "needs 'version'"),
        ({**raw, "device": ""}, "1 to 200 characters"),
        ({**raw, "made_at": "2026-01-02T00:00:00"}, "no UTC offset"),
        ({**raw, "rows": -1}, "not negative"),
        ({**raw, "inputs": {"rows": 1, "columns": {"a": {"kind": "numeric"}}}}, "not in this driftloop's format"),
        ({**raw, "outcomes": {"y": {"kind": "number"}}}, "lacks"),
        ([raw], "a JSON object"),
    ]
    for broken, message in bad:
        with pytest.raises(ValueError, match=message):
            DeviceReport.from_dict(broken)
