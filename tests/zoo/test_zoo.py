"""Each zoo dataset through the whole loop as a new user runs it: init (nothing edited but, for
the largest set, the number of epochs) -> ingest -> features -> train -> promote -> predict ->
monitor -> one request to a real server on 127.0.0.1.

Asserted: no row of these valid files is quarantined, a champion is crowned, and every output,
batch and online, is finite (a label one of its classes)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from driftloop.project import Project
from driftloop.registry import Registry
from tests.live import cli, server
from tests.zoo.datasets import ZOO, ZooSet
from tests.zoo.report import ROWS, ZooRow


@pytest.mark.parametrize("dataset", ZOO, ids=[d.name for d in ZOO])
def test_dataset_goes_around_the_loop(dataset: ZooSet, tmp_path: Path) -> None:
    path = dataset.file(tmp_path)
    data = pl.read_csv(path, infer_schema_length=None)
    root, seconds = tmp_path / "project", {}

    def step(name: str, *args: str) -> Any:
        started = time.perf_counter()
        answer = cli(*args)
        seconds[name] = time.perf_counter() - started
        return answer

    step("init", "init", str(root), "--data", str(path), *dataset.init)
    if dataset.epochs is not None:
        project = Project.load(root)
        train = project.settings.train.model_copy(update={"epochs": dataset.epochs})
        Project(root, project.settings.model_copy(update={"train": train})).save()
    project = Project.load(root)
    contract = project.contract

    ingested = step("ingest", "ingest", str(path), "--project", str(root))
    assert [b["rows_quarantined"] for b in ingested] == [0], ingested[0]["rule_counts"]
    assert ingested[0]["rows_raw"] == data.height
    step("features", "features", "--project", str(root))
    trained = step("train", "train", "--project", str(root))
    version = str(trained["version"])
    decisions = step("promote", "promote", version, "--project", str(root))
    assert Registry(project).champion() == version, [(d["kind"], d["reason"]) for d in decisions]

    predicted = step("predict", "predict", "--date", dataset.day, "--project", str(root))
    assert predicted["rows"] > 0 and predicted["days"] == [dataset.day]
    batch = project.lake.read("predictions")
    _assert_outputs(batch.to_dicts(), contract.targets, project)
    monitored = step("monitor", "monitor", "--date", dataset.day, "--project", str(root), "--no-report")
    assert monitored["rows"] == predicted["rows"] and monitored["model_version"] == version

    request = data.tail(5).drop(contract.targets).to_dicts()
    started = time.perf_counter()
    with server(project) as client:
        answer = client.post("/v1/predict", json=request)
    seconds["serve"] = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    served = answer.json()["predictions"]
    assert len(served) == len(request)
    _assert_outputs(served, contract.targets, project)

    target = contract.targets[0]
    promote = project.settings.promote
    metric = promote.decisive(trained["metrics"]["test"][target])
    ROWS.append(
        ZooRow(
            dataset.name,
            data.height,
            data.width,
            seconds,
            f"{target} {metric}",
            trained["metrics"]["test"][target][metric],
            trained["baseline"]["test"][target][metric],
        )
    )


def _assert_outputs(rows: list[dict[str, Any]], targets: list[str], project: Project) -> None:
    """Every prediction of every target is finite, or for a label one of its classes with
    probabilities that are finite and sum to one."""
    columns = project.contract.columns
    for row in rows:
        for target in targets:
            classes = columns[target].classes
            if classes is None:
                assert math.isfinite(row[target]), (target, row)
                continue
            assert str(row[target]) in classes, (target, row)
            probabilities = [row[f"{target}__p_{c}"] for c in classes]
            assert all(math.isfinite(p) for p in probabilities) and sum(probabilities) == pytest.approx(1, abs=1e-4)
