"""The MLflow signature comes from the contract: for any contract and any valid typed rows, MLflow's
own schema enforcement passes them, and what it hands on reads back through the contract
check as the same values. Then one model with every type, nullable or not, end to end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import mlflow.pyfunc
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.models import Model
from mlflow.pyfunc import PyFuncModel
from mlflow.pyfunc.scoring_server import infer_and_parse_data

from driftloop.data.contract import Column, ColumnType, Contract, Role
from driftloop.data.validate import check_batch
from driftloop.feature_table import materialize
from driftloop.ingest import ingest
from driftloop.model.trainer import train_project
from driftloop.predict import predict_window
from driftloop.project import Project, init_project
from driftloop.registry import Registry
from driftloop.registry.mlflow.signature import contract_signature
from driftloop.registry.mlflow.tracking import MlflowTracker
from driftloop.settings.train import TrainSettings
from tests.test_event_times import server

VALUES: dict[ColumnType, st.SearchStrategy[Any]] = {
    ColumnType.INT: st.integers(-(10**9), 10**9),
    ColumnType.FLOAT: st.floats(-1e9, 1e9, allow_nan=False),
    ColumnType.BOOL: st.booleans(),
    ColumnType.STRING: st.sampled_from(["red", "green", "blue"]),
    ColumnType.DATE: st.dates(date(1970, 1, 2), date(2200, 1, 1)),
    ColumnType.DATETIME: st.datetimes(datetime(1970, 1, 2), datetime(2200, 1, 1)).map(
        lambda t: t.replace(microsecond=0)
    ),
}


@st.composite
def contracts_and_rows(draw: st.DrawFn) -> tuple[Contract, pl.DataFrame]:
    kinds = draw(st.lists(st.tuples(st.sampled_from(list(ColumnType)), st.booleans()), min_size=1, max_size=7))
    columns = {f"c{i}": Column(type=kind, nullable=nullable) for i, (kind, nullable) in enumerate(kinds)}
    zone = draw(st.sampled_from(["UTC", "Europe/Paris", "Asia/Tokyo", "America/New_York"]))
    target = Column(type=ColumnType.FLOAT, role=Role.TARGET, required=False)
    contract = Contract(columns={**columns, "y": target}, timezone=zone)
    rows = draw(st.integers(1, 8))
    data = {
        name: [
            None if column.nullable and draw(st.integers(0, 3)) == 0 else draw(VALUES[column.type]) for _ in range(rows)
        ]
        for name, column in columns.items()
    }
    typed = pl.DataFrame(data, schema={n: c.type.polars for n, c in columns.items()})
    return contract, typed


class Checked:
    """The model behind a real PyFuncModel: the contract check itself, which is what a package
    runs first; it returns the rows as the check typed them."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        result = check_batch(pl.from_pandas(model_input), self.contract, check_keys=False)
        assert result.ok and result.rejected.is_empty(), (result.problems, result.rejected)
        return result.valid.drop("_row").to_pandas()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contracts_and_rows())
def test_mlflow_enforcement_under_the_contracts_signature_hands_the_check_the_same_rows(
    case: tuple[Contract, pl.DataFrame],
) -> None:
    contract, stored = case
    signature = contract_signature(contract, ["y"])
    model = PyFuncModel(Model(signature=signature), Checked(contract))
    sent = contract.as_sent(stored)
    back = pl.from_pandas(model.predict(sent.to_pandas()))
    assert back.select(stored.columns).equals(stored), (back, stored)
    # The same rows as JSON, parsed the way MLflow's scoring server parses a request.
    text = sent.with_columns(pl.col(pl.Date, pl.Datetime).cast(pl.String)).to_dicts()
    parsed = infer_and_parse_data({"dataframe_records": text}, signature.inputs)
    back = pl.from_pandas(model.predict(parsed))
    assert back.select(stored.columns).equals(stored), (back, stored)


def every_type(rows: int, seed: int = 0) -> pl.DataFrame:
    """Hourly rows holding every contract type with gaps in the nullable ones; y depends on them."""
    rng = np.random.default_rng(seed)
    count = rng.integers(0, 10, rows)
    level = rng.normal(0, 1, rows)
    flag = rng.random(rows) < 0.5
    colour = rng.choice(["red", "green", "blue"], rows)
    y = 3 * level * flag + np.sin(count) * 2 + 2 * level * (colour == "red") + rng.normal(0, 0.1, rows)
    gaps = rng.random(rows) < 0.15
    first = datetime(2024, 1, 1)
    times = [first + timedelta(hours=h) for h in range(rows)]
    return pl.DataFrame(
        {
            "ts": times,
            "day": [t.date() for t in times],
            "count": pl.Series(count).scatter(np.flatnonzero(gaps), None),
            "steps": count * 3,
            "level": pl.Series(level).scatter(np.flatnonzero(gaps[::-1]), None),
            "flag": pl.Series(flag).scatter(np.flatnonzero(gaps), None),
            "colour": pl.Series(colour).scatter(np.flatnonzero(gaps[::-1]), None),
            "y": y,
        }
    )


def test_every_type_nullable_or_not_scores_through_pyfunc_serve_and_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = every_type(24 * 12)
    project = init_project(tmp_path / "p", sample=data, time_column="ts", targets=("y",), timezone="Europe/Paris")
    kinds = {n: (c.type, c.nullable) for n, c in project.contract.columns.items()}
    assert kinds["count"] == (ColumnType.INT, True) and kinds["steps"] == (ColumnType.INT, False)
    assert kinds["day"][0] is ColumnType.DATE and kinds["flag"] == (ColumnType.BOOL, True)
    train = TrainSettings(hidden=[32, 16], epochs=40, patience=8, learning_rate=3e-3)
    Project(project.root, project.settings.model_copy(update={"train": train})).save()
    project = Project.load(project.root)
    ingest(project, data, batch_id="every-type")
    materialize(project.lake, project.feature_set())
    with MlflowTracker(project) as tracker:
        version = tracker.record(train_project(project, callbacks=[tracker]))
    decisions = Registry(project).promote(version)
    assert Registry(project).champion() == version, [d.reason for d in decisions]

    # A caller's rows with a gap in every nullable column, through MLflow's own loader.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.tracking_uri)
    model = mlflow.pyfunc.load_model(Registry(project).store.model_uri(version))
    gaps = pl.col("count", "level", "flag", "colour").head(1).extend_constant(None, 3)
    request = data.tail(4).drop("y").with_columns(gaps)
    outputs = model.predict(request.to_pandas())
    assert len(outputs) == 4 and np.isfinite(outputs["y"].to_numpy()).all()
    direct = Registry(project).load(version).predict(request).get_column("y").to_list()
    assert outputs["y"].to_list() == pytest.approx(direct, rel=1e-5)

    # The same rows as JSON to a real driftloop server.
    with server(project) as client:
        answer = client.post("/v1/predict", json=request.with_columns(pl.col("ts", "day").cast(pl.String)).to_dicts())
    assert answer.status_code == 200, answer.text
    served = [p["y"] for p in answer.json()["predictions"]]
    assert served == pytest.approx(outputs["y"].to_list(), rel=1e-5)

    # And to MLflow's own scoring server, the way a team already on MLflow would deploy it.
    text = request.with_columns(pl.col("ts", "day").cast(pl.String)).to_dicts()
    with mlflow_server(project, Registry(project).store.model_uri(version)) as client:
        answer = client.post("/invocations", json={"dataframe_records": text})
    assert answer.status_code == 200, answer.text
    assert [p["y"] for p in answer.json()["predictions"]] == pytest.approx(outputs["y"].to_list(), rel=1e-5)

    run = predict_window(project, datetime(2024, 1, 10), datetime(2024, 1, 12))
    assert run.rows == 48


@contextmanager
def mlflow_server(project: Project, model_uri: str) -> Iterator[httpx.Client]:
    """`mlflow models serve` in its own process on 127.0.0.1 (no environment built: this one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", model_uri, "--env-manager",
               "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    # As from an activated environment: MLflow starts the `uvicorn` on the PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": project.tracking_uri, "PATH": path}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"mlflow models serve exited: {process.communicate()[1][-2000:]}")
                try:
                    if client.get("/ping").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.25)
            yield client
    finally:
        process.terminate()
        process.communicate(timeout=60)
