"""What the heads predict: numbers scaled and back, labels as classes with probabilities, their
metrics against known values, and the loss of a head of each kind."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from driftloop.data.contract import Column, ColumnType, Contract, Role
from driftloop.data.validate import check_batch
from driftloop.model.metrics import class_indices, classification_metrics
from driftloop.model.train import Head, per_target_loss
from driftloop.runtime.targets import Targets, probability_column

CONTRACT = Contract(
    columns={
        "x": Column(type=ColumnType.FLOAT),
        "kwh": Column(type=ColumnType.FLOAT, role=Role.TARGET, required=False),
        "grade": Column(type=ColumnType.STRING, role=Role.TARGET, required=False, classes=["bad", "good", "ok"]),
        "defect": Column(type=ColumnType.BOOL, role=Role.TARGET, required=False),
        "stars": Column(type=ColumnType.INT, role=Role.TARGET, required=False, classes=["1", "2", "3"]),
    }
)
ROWS = pl.DataFrame(
    {
        "x": [1.0, 2.0, 3.0, 4.0],
        "kwh": [10.0, 20.0, None, 40.0],
        "grade": ["good", "bad", "ok", None],
        "defect": [True, False, None, False],
        "stars": [3, 1, 2, 2],
    }
)


def test_numbers_are_scaled_labels_are_class_indices_and_outputs_decode_in_the_targets_type() -> None:
    heads = Targets.fit(ROWS, CONTRACT)
    assert heads.head_sizes == [1, 3, 2, 3]
    encoded = heads.encode(ROWS)
    assert np.isnan(encoded[2, 0]) and np.nanmean(encoded[:, 0]) == pytest.approx(0.0, abs=1e-6)
    assert encoded[:, 1].tolist()[:3] == [1.0, 0.0, 2.0] and np.isnan(encoded[3, 1])
    assert encoded[:2, 2].tolist() == [1.0, 0.0] and encoded[:, 3].tolist() == [2.0, 0.0, 1.0, 1.0]
    # Outputs: kwh scaled 0 (its mean), grade logits favouring "ok", defect "true", stars "1".
    outputs = np.array([[0.0, 0.0, 0.0, 5.0, -1.0, 1.0, 4.0, 0.0, 0.0]], np.float32)
    decoded = heads.decode(outputs)
    assert decoded.get_column("kwh").item() == pytest.approx(70 / 3)
    assert decoded.get_column("grade").item() == "ok"
    assert decoded.get_column("defect").dtype == pl.Boolean and decoded.get_column("defect").item() is True
    assert decoded.get_column("stars").dtype == pl.Int64 and decoded.get_column("stars").item() == 1
    probabilities = decoded.select(probability_column("grade", c) for c in ["bad", "good", "ok"]).row(0)
    assert sum(probabilities) == pytest.approx(1.0) and probabilities[2] > 0.98
    assert Targets.from_dict(heads.to_dict()) == heads
    old = Targets.from_dict({"mean": {"kwh": 1.0}, "std": {"kwh": 2.0}})  # a package from before labels
    assert old.names == ["kwh"] and old.head_sizes == [1]


def test_a_label_outside_the_classes_is_quarantined() -> None:
    batch = ROWS.with_columns(pl.Series("grade", ["good", "great", "ok", None]), pl.Series("stars", [3, 7, 2, 2]))
    result = check_batch(batch, CONTRACT)
    assert result.rejected.get_column("_row").to_list() == [2]
    assert sorted(result.rejected.get_column("_rules").item().to_list()) == ["grade:class", "stars:class"]


def test_label_metrics_match_their_definitions() -> None:
    actual = class_indices(pl.Series(["a", "b", "b", "a", None]), ["a", "b"])
    assert np.isnan(actual[4])
    p_b = np.array([0.2, 0.7, 0.4, 0.6, 0.5])
    values = classification_metrics(actual, np.column_stack([1 - p_b, p_b]))
    assert values["accuracy"] == pytest.approx(0.5)  # the first two right, the next two wrong
    assert values["balanced_accuracy"] == pytest.approx(0.5)
    assert values["roc_auc"] == pytest.approx(0.75)  # b's 0.7 and 0.4 against a's 0.2 and 0.6: 3 of 4 pairs
    expected_loss = -np.mean(np.log([0.8, 0.7, 0.4, 0.4]))
    assert values["log_loss"] == pytest.approx(expected_loss)
    assert values["brier"] == pytest.approx(np.mean([2 * 0.2**2, 2 * 0.3**2, 2 * 0.6**2, 2 * 0.6**2]))
    perfect = classification_metrics(np.array([0.0, 1.0, 2.0]), np.eye(3))
    assert perfect["macro_f1"] == 1.0 and perfect["log_loss"] == pytest.approx(0.0) and perfect["roc_auc"] == 1.0


def test_a_label_head_learns_by_cross_entropy_and_a_missing_label_adds_nothing() -> None:
    output = torch.tensor([[0.5, 2.0, -1.0, 0.0], [1.0, 0.0, 0.0, 3.0]], requires_grad=True)
    target = torch.tensor([[0.0, 1.0], [float("nan"), float("nan")]])  # a number, then a 3-class label
    heads = [Head("mse"), Head("cross_entropy", size=3)]
    losses = per_target_loss(output, target, heads, masked=True)
    expected = torch.nn.functional.cross_entropy(output[:1, 1:4].detach(), torch.tensor([1]))
    assert losses.detach().tolist() == pytest.approx([0.25, float(expected)])
    losses.sum().backward()  # type: ignore[no-untyped-call]
    assert output.grad is not None and bool((output.grad[1] == 0).all())
