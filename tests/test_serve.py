"""The prediction server, run for real: a `driftloop serve` process on 127.0.0.1, a real registry,
real Delta tables. Load loops are bounded in count and time."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import httpx
import polars as pl
import pytest
from starlette.types import Receive, Scope, Send

from driftloop.errors import MonitorError, RequestRefused
from driftloop.lake import Lake
from driftloop.lake.files import ROWS_ADDED
from driftloop.model.trainer import train_project
from driftloop.monitor.logged import logged_inputs
from driftloop.monitor.window import monitor_window
from driftloop.predict import predict_window
from driftloop.project import Project
from driftloop.registry import Alias, Registry
from driftloop.registry.mlflow.tracking import MlflowTracker
from driftloop.serve.batcher import BATCHES_IN_FLIGHT, Answer, MicroBatcher
from driftloop.serve.deployments import Deployment, Live
from driftloop.serve.deployments.champion import Champion
from driftloop.serve.logbook import PredictionLog
from driftloop.serve.metrics import ServerMetrics
from driftloop.serve.payloads import combined, from_records
from driftloop.serve.routes import Call, Lifespan, Route, Routes, scoring_route
from driftloop.settings.serve import ServeSettings
from tests.test_predict import champion_project

TOKEN = "s3cret-token"
RAW = ["ts", "a", "b", "c"]
# The network computes in float32; another process (its own thread layout) may round the last
# bit differently. Skew from features or preprocessing would show at the first digits.
FLOAT32 = 1e-6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`driftloop serve` in its own process, stopped with SIGTERM."""

    def __init__(self, project: Project) -> None:
        self.port = free_port()
        script = Path(sys.executable).with_name("driftloop")
        env = {**os.environ, "DRIFTLOOP_ADMIN_TOKEN": TOKEN}
        self.process = subprocess.Popen(
            [script, "serve", "--project", str(project.root), "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.process.communicate()[1][-2000:]}")
            try:
                if self.client.get("/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError("the server did not become ready in 90 s")

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit code (uvicorn re-raises the signal once it shut down cleanly) and stderr."""
        self.client.close()
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=60)
        return self.process.returncode, err


CLEAN_EXIT = (0, -signal.SIGTERM)


def serving_project(root: Path, **serve: object) -> Project:
    project = champion_project(root)
    settings = ServeSettings.model_validate({"poll_seconds": 0.5, "flush_seconds": 0.5, **serve})
    Project(project.root, project.settings.model_copy(update={"serve": settings})).save()
    return Project.load(project.root)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Server]]:
    project = serving_project(tmp_path_factory.mktemp("serve") / "p", max_rows=500, max_body_bytes=200_000)
    server = Server(project)
    yield project, server
    server.stop()


def raw_rows(project: Project, day: int = 3) -> pl.DataFrame:
    rows = project.lake.read("features", since=datetime(2024, 1, day), until=datetime(2024, 1, day + 1),
                             time_column="ts")  # fmt: skip
    return rows.sort("ts").select(RAW)


def records(rows: pl.DataFrame) -> list[dict[str, object]]:
    return rows.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S")).to_dicts()


def test_every_protocol_answers_exactly_what_batch_prediction_wrote(served: tuple[Project, Server]) -> None:
    project, server = served
    rows = raw_rows(project)
    batch = predict_window(project, datetime(2024, 1, 3), datetime(2024, 1, 4))
    written = project.lake.read("predictions").filter(pl.col("source") == "batch").sort("event_time")
    expected = written.get_column("y").to_list()
    assert len(expected) == 24 and batch.rows == 24

    v1 = server.client.post("/v1/predict", json=records(rows))
    assert v1.status_code == 200, v1.text
    body = v1.json()
    assert body["model_version"] == Registry(project).aliases()[Alias.CHAMPION]
    assert [p["y"] for p in body["predictions"]] == pytest.approx(expected, rel=FLOAT32)  # no skew
    assert len({p["prediction_id"] for p in body["predictions"]}) == 24

    one = server.client.post("/v1/predict", json=records(rows)[0])
    assert one.json()["predictions"][0]["y"] == pytest.approx(expected[0], rel=FLOAT32)

    text = records(rows)
    split = {"dataframe_split": {"columns": RAW, "data": [[r[c] for c in RAW] for r in text]}}
    columns = {"inputs": {c: [r[c] for r in text] for c in RAW}}
    for payload in (split, {"dataframe_records": text}, {"instances": text}, columns):
        answer = server.client.post("/invocations", json=payload)
        assert answer.status_code == 200, answer.text
        assert [p["y"] for p in answer.json()["predictions"]] == pytest.approx(expected, rel=FLOAT32)

    name = project.settings.project.name
    tensors = {"inputs": [{"name": c, "shape": [24], "datatype": "BYTES" if c in ("ts", "c") else "FP64",
                           "data": [r[c] for r in text]} for c in RAW]}  # fmt: skip
    v2 = server.client.post(f"/v2/models/{name}/infer", json=tensors)
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["name"] == "y"
    assert v2.json()["outputs"][0]["data"] == pytest.approx(expected, rel=FLOAT32)
    meta = server.client.get(f"/v2/models/{name}").json()
    assert {i["name"] for i in meta["inputs"]} == set(RAW) and meta["outputs"][0]["name"] == "y"
    assert server.client.get("/v2/models/other").status_code == 404


def test_bad_input_is_refused_with_field_level_errors(served: tuple[Project, Server]) -> None:
    project, server = served
    good = records(raw_rows(project))[0]
    contract = project.contract
    cases = {
        "wrong type": ({**good, "a": "warm"}, "a"),
        "missing field": ({k: v for k, v in good.items() if k != "b"}, "b"),
        "out of range": ({**good, "a": (contract.columns["a"].max or 0) + 1e6}, "a"),
        "bad time": ({**good, "ts": "2024-13-45"}, "ts"),
        "nested": ({**good, "b": {"x": 1}}, "b"),
    }
    if contract.columns["c"].allowed:
        cases["unknown category"] = ({**good, "c": "purple"}, "c")
    for case, (row, column) in cases.items():
        answer = server.client.post("/v1/predict", json=[good, row])
        assert answer.status_code == 422, (case, answer.text)
        errors = answer.json()["errors"]
        assert any(e["column"] == column for e in errors), (case, errors)
    mixed = server.client.post("/v1/predict", json=[good, {**good, "a": "warm"}])
    assert any(e.get("row") == 1 for e in mixed.json()["errors"])  # the row at fault is named
    nan = b'{"a": NaN}'  # not JSON, though Python's json module would read it
    for body in (b"{not json", b"[]", b"[1, 2]", b'"text"', nan, b"\xff\xfe"):
        refused = server.client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
        assert refused.status_code == 422, (body, refused.text)
    assert server.client.post("/invocations", json={"nothing": []}).status_code == 422
    assert (
        server.client.post(f"/v2/models/{project.settings.project.name}/infer", json={"inputs": 3}).status_code == 422
    )
    assert server.client.post("/v1/predict", json=[good] * 501).status_code == 413  # max_rows 500
    huge = b"[" + b",".join([b'{"a": 1.0, "pad": "' + b"x" * 1000 + b'"}'] * 300) + b"]"
    assert server.client.post("/v1/predict", content=huge).status_code == 413  # max_body_bytes 200 kB
    assert server.client.get("/health/live").json() == {"status": "live"}
    metrics = server.client.get("/metrics").text
    assert 'driftloop_requests_total{endpoint="/v1/predict",status="422"}' in metrics
    assert "driftloop_batch_rows_bucket" in metrics and "driftloop_model_version" in metrics


def test_no_generated_request_makes_the_server_fail_or_stray_from_its_spec(
    served: tuple[Project, Server], tmp_path: Path
) -> None:
    """schemathesis fuzzes every operation of the OpenAPI spec (the scoring routes' entries are
    written by hand: they must match what the server answers); bounded in examples and time."""
    _, server = served
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
    run = subprocess.run(
        [Path(sys.executable).with_name("schemathesis"), "run", f"{server.client.base_url}/openapi.json",
         "--checks", checks, "--max-examples", "25", "--request-timeout", "30"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,  # its cache stays out of the repo
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    assert "generated" in run.stdout and "Server error" not in run.stdout


def test_online_and_batch_rows_share_one_schema_so_batch_writes_stay_on_the_fast_path(
    served: tuple[Project, Server],
) -> None:
    project, server = served
    assert server.client.post("/v1/predict", json=records(raw_rows(project, day=6))).status_code == 200
    deadline = time.monotonic() + 30
    lake = project.lake
    while not (lake.exists("predictions") and lake.read("predictions").filter(pl.col("source") == "online").height):
        assert time.monotonic() < deadline, "the server never logged its predictions"
        time.sleep(0.2)
    before = lake.open("predictions").schema().to_json()
    predict_window(project, datetime(2024, 1, 7), datetime(2024, 1, 8))
    assert lake.open("predictions").schema().to_json() == before  # no schema merge
    # The commit came from the fast path (Polars-written files committed by the lake), which is
    # the only one that records the rows it added.
    assert ROWS_ADDED in lake.history("predictions", limit=1)[0].metadata


def test_admin_reload_needs_the_bearer_token(served: tuple[Project, Server]) -> None:
    _, server = served
    assert server.client.post("/admin/reload").status_code == 401
    assert server.client.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403
    ok = server.client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["reloaded"] is False  # already serving the champion


def test_sigterm_flushes_every_answered_prediction_and_the_shadow_is_logged_not_returned(tmp_path: Path) -> None:
    project = serving_project(tmp_path / "p", flush_seconds=3600, shadow=True)  # only the shutdown flush writes
    with MlflowTracker(project) as tracker:
        challenger = tracker.record(train_project(project, callbacks=[tracker]))
    Registry(project).store.set_alias(Alias.CHALLENGER, challenger)
    server = Server(project)
    rows = records(raw_rows(project))
    answered = 0
    for i in range(20):
        answer = server.client.post("/v1/predict", json=rows[: 1 + i % 5])
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"
        answered += len(answer.json()["predictions"])
    code, err = server.stop()
    assert code in CLEAN_EXIT and "Traceback" not in err, err[-2000:]
    logged = project.lake.read("predictions")
    online = logged.filter(pl.col("source") == "online")
    assert online.height == answered == 60
    assert online.get_column("prediction_id").n_unique() == answered
    assert online.get_column("inputs").str.contains('"a"').all()  # the inputs monitoring needs
    shadow = logged.filter(pl.col("source") == "shadow")
    assert shadow.height == answered and set(shadow.get_column("model_version")) == {challenger}

    # Monitoring reads the served traffic back: its inputs, its outputs, and the shadow beside them.
    day = (datetime(2024, 1, 3), datetime(2024, 1, 4))
    watched = monitor_window(project, *day, source="online", version="1")
    assert watched.rows == answered and {"a", "b"} <= {c.column for c in watched.inputs.columns}
    truth = raw_rows(project).join(project.lake.read("features").select("ts", "y"), on="ts").select("ts", "y")
    paired = (
        online.select("prediction_id", pl.col("event_time").alias("ts"), "y")
        .join(shadow.select("prediction_id", pl.col("y").alias("shadow")), on="prediction_id")
        .join(truth.rename({"y": "actual"}), on="ts")
    )
    assert paired.height == answered  # every request is paired with its shadow and its truth
    [performance] = watched.performance
    assert performance.rows == answered
    assert performance.metrics["mae"] == pytest.approx((paired["y"] - paired["actual"]).abs().mean())
    [versus] = watched.shadow
    assert (versus.challenger_version, versus.rows, versus.labelled_rows) == (challenger, answered, answered)
    assert versus.mean_abs_difference == pytest.approx((paired["y"] - paired["shadow"]).abs().mean())
    assert versus.challenger["mae"] == pytest.approx((paired["shadow"] - paired["actual"]).abs().mean())
    sections = set(project.lake.read("monitoring").get_column("section"))
    assert {"online input", "online prediction", "online performance", "online verdict", "shadow"} == sections
    before = project.lake.read("monitoring").height
    monitor_window(project, *day, source="online", version="1")  # a rerun replaces its own rows
    assert project.lake.read("monitoring").height == before
    with pytest.raises(MonitorError, match="no online predictions"):
        monitor_window(project, datetime(2024, 1, 9), datetime(2024, 1, 10), source="online", version="1")
    with pytest.raises(MonitorError, match="no stream 'nightly'"):
        monitor_window(project, *day, source="nightly")
    with pytest.raises(MonitorError, match="cannot be read back"):
        logged_inputs(online.head(1).with_columns(inputs=pl.lit("{not json")), project.contract)


def test_the_server_follows_a_promotion_without_a_failed_request(tmp_path: Path) -> None:
    project = serving_project(tmp_path / "p")
    server = Server(project)
    with MlflowTracker(project) as tracker:
        second = tracker.record(train_project(project, callbacks=[tracker]))
    rows = records(raw_rows(project))
    statuses: list[int] = []
    versions: list[str] = []

    def one(i: int) -> None:
        answer = server.client.post("/v1/predict", json=rows[i % 24])
        statuses.append(answer.status_code)
        if answer.status_code == 200:
            versions.append(answer.json()["model_version"])

    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(8) as pool:
        for i in range(900):  # bounded in count and in time; the poller looks every 0.5 s
            if time.monotonic() > deadline:
                break
            if i == 200:
                Registry(project).store.set_alias(Alias.CHAMPION, second)
            pool.submit(one, i)
    after = server.client.post("/v1/predict", json=rows[0]).json()["model_version"]
    code, err = server.stop()
    assert set(statuses) == {200}, (set(statuses), err[-1500:])  # no failed request during the swap
    assert versions[0] == "1" and second in versions and after == second
    assert code in CLEAN_EXIT and "Traceback" not in err


def test_the_log_spills_when_the_lake_is_away_and_replays_when_it_is_back(tmp_path: Path) -> None:
    blocked = tmp_path / "lake"
    blocked.write_text("not a folder")  # the lake cannot be written
    day = datetime(2024, 1, 1).date()
    rows = pl.DataFrame({"prediction_id": ["r|0", "r|1"], "y": [1.0, 2.0], "_event_date": [day, day]})
    log = PredictionLog(Lake(blocked), tmp_path / "spill", capacity=10, flush_seconds=3600)
    log.add(rows)
    log.flush()
    assert log.spilled == 2 and len(list((tmp_path / "spill").glob("*.parquet"))) == 1
    log.add(pl.concat([rows] * 6))  # more than the buffer holds: spilled at once, never dropped
    assert log.spilled == 14 and log.depth == 0
    blocked.unlink()
    back = PredictionLog(Lake(blocked), tmp_path / "spill", capacity=10, flush_seconds=3600)
    back.start()
    back.close()
    assert Lake(blocked).read("predictions").height == 14 and not list((tmp_path / "spill").glob("*.parquet"))


KILLED_BEFORE_UNLINK = """
import os, pathlib, signal, sys
from driftloop.lake import Lake
from driftloop.serve.logbook import PredictionLog
pathlib.Path.unlink = lambda path, missing_ok=False: os.kill(os.getpid(), signal.SIGKILL)  # after the commit
PredictionLog(Lake(pathlib.Path(sys.argv[1])), pathlib.Path(sys.argv[2]), capacity=10, flush_seconds=3600).start()
"""


def test_a_spill_replay_killed_after_its_commit_is_not_written_twice(tmp_path: Path) -> None:
    day = datetime(2024, 1, 1).date()
    spill = tmp_path / "spill"
    spill.mkdir()
    pl.DataFrame({"prediction_id": ["r|0", "r|1"], "y": [1.0, 2.0], "_event_date": [day, day]}).write_parquet(
        spill / "predictions-0.parquet"
    )
    lake = tmp_path / "lake"
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_UNLINK, str(lake), str(spill)], check=False, capture_output=True
    )
    assert killed.returncode == -9, killed.stderr.decode()[-1000:]
    assert Lake(lake).read("predictions").height == 2 and (spill / "predictions-0.parquet").exists()
    again = PredictionLog(Lake(lake), spill, capacity=10, flush_seconds=3600)
    again.start()
    again.close()
    assert Lake(lake).read("predictions").height == 2 and not list(spill.glob("*.parquet"))


def test_batches_the_log_cannot_turn_into_rows_yet_are_kept_for_the_next_flush(tmp_path: Path) -> None:
    day = datetime(2024, 1, 1).date()
    rows = pl.DataFrame({"prediction_id": ["r|0", "r|1"], "y": [1.0, 2.0], "_event_date": [day, day]})
    attempts: list[int] = []

    def render(frames: list[pl.DataFrame]) -> pl.DataFrame:
        attempts.append(len(frames))
        if len(attempts) == 1:
            raise RuntimeError("a bug while building rows")
        return pl.concat(frames)

    log = PredictionLog(Lake(tmp_path / "lake"), tmp_path / "spill", capacity=10, flush_seconds=3600, render=render)
    log.add(rows)
    with pytest.raises(RuntimeError, match="a bug"):
        log.flush()
    assert log.depth == 2  # kept, not dropped
    log.add(rows, 2)
    log.flush()
    assert attempts == [1, 2] and log.depth == 0 and Lake(tmp_path / "lake").read("predictions").height == 4


def test_plain_routes_answer_refuse_and_fail_loudly_and_pass_the_rest_on(caplog: pytest.LogCaptureFixture) -> None:
    """The plain-ASGI routes in process (no model): path parameters, the client's request id, a
    GET of text, 405, 413, a handler's refusal and its crash, and every other path handed to the
    app behind."""

    async def echo(call: Call) -> dict[str, object]:
        if call.body == "refuse":
            raise RequestRefused("refused", [{"column": "a", "value": datetime(2024, 1, 1)}], status=422)
        if call.body == "crash":
            raise ZeroDivisionError("a bug")
        return {"body": call.body, "path": call.params, "request_id": call.request_id}

    async def text(call: Call) -> str:
        return f"plain {call.header('accept')}"

    async def behind(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    metrics = ServerMetrics()
    routes = [
        *(scoring_route(p, echo, "echo", {}, {}) for p in ("/v1/predict", "/v2/models/{name}/infer")),
        Route(method="GET", path="/v2/models/{name}", handler=text, summary="text", answer_schema={},
              media_type="text/plain"),
    ]  # fmt: skip
    app = Routes(routes, behind=behind, lifespan=None, metrics=metrics, max_body_bytes=2048)

    async def exchange() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return [
                await client.post("/v2/models/m1/infer", json={"x": 1}, headers={"x-request-id": "r-7"}),
                await client.post("/v1/predict", content=b"{not json"),
                await client.post("/v1/predict", json="refuse"),
                await client.post("/v1/predict", json="crash"),
                await client.post("/v1/predict", content=b"[" + b"1," * 2000 + b"1]"),
                await client.get("/v1/predict"),
                await client.post("/v2/models/a/b/infer", json={}),  # not the route: a name has no slash
                await client.get("/docs"),
                await client.get("/v2/models/m1", headers={"accept": "text/plain"}),
                await client.delete("/v2/models/m1"),
                await client.head("/v2/models/m1", headers={"accept": "text/plain"}),
            ]

    with caplog.at_level("ERROR", logger="driftloop.serve"):
        ok, not_json, refused, crashed, huge, get, other, docs, plain, delete, head = asyncio.run(exchange())
    assert ok.json() == {"body": {"x": 1}, "path": {"name": "m1"}, "request_id": "r-7"}
    assert ok.headers["content-type"] == "application/json"
    assert not_json.status_code == 422 and "not valid JSON" in not_json.json()["detail"]
    assert refused.status_code == 422 and refused.json()["errors"] == [{"column": "a", "value": "2024-01-01 00:00:00"}]
    assert crashed.status_code == 500 and "traceback" in crashed.json()["detail"]
    assert "ZeroDivisionError: a bug" in caplog.text  # the 500 is logged with its cause, not swallowed
    assert huge.status_code == 413 and "max_body_bytes" in huge.json()["detail"]
    assert get.status_code == 405 and get.headers["allow"] == "POST"
    assert (other.status_code, other.text) == (299, "/v2/models/a/b/infer")
    assert (docs.status_code, docs.text) == (299, "/docs")
    assert (plain.text, plain.headers["content-type"]) == ("plain text/plain", "text/plain")
    assert delete.status_code == 405 and delete.headers["allow"] == "GET"
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", str(len(plain.content)))
    rendered = metrics.render().decode()
    assert 'driftloop_requests_total{endpoint="/v1/predict",status="500"} 1.0' in rendered
    assert 'driftloop_requests_total{endpoint="/v2/models/{name}/infer",status="200"} 1.0' in rendered
    assert 'driftloop_requests_total{endpoint="/v2/models/{name}",status="405"} 1.0' in rendered


def test_with_nothing_behind_the_routes_run_the_servers_life_and_answer_404_for_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A device's server has no FastAPI: the routes run the ASGI lifespan themselves (a failure
    to start is told to the server, not swallowed) and answer an unknown path with a 404."""
    life: list[str] = []

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        life.append("started")
        yield
        life.append("stopped")

    @asynccontextmanager
    async def broken() -> AsyncIterator[None]:
        raise OSError("the store is not writable")
        yield

    async def run(app: Routes) -> list[dict[str, object]]:
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return inbox.pop(0)

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        await app({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
        return sent

    def routes(life: Lifespan) -> Routes:
        return Routes([], behind=None, lifespan=life, metrics=ServerMetrics(), max_body_bytes=10)

    assert asyncio.run(run(routes(lifespan))) == [{"type": "lifespan.startup.complete"},
                                                  {"type": "lifespan.shutdown.complete"}]  # fmt: skip
    assert life == ["started", "stopped"]
    with caplog.at_level("ERROR", logger="driftloop.serve"):
        failed = asyncio.run(run(routes(broken)))
    assert failed == [{"type": "lifespan.startup.failed", "message": "OSError: the store is not writable"}]
    assert "the store is not writable" in caplog.text

    async def unknown() -> httpx.Response:
        transport = httpx.ASGITransport(app=routes(lifespan))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/docs")

    missing = asyncio.run(unknown())
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})


class DoublingModel:
    """A stand-in model (the batcher is under test) answering y = 2x after ``delay`` seconds,
    recording how many batches it scored at once."""

    name, version, run_id = "m", "1", "r"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.running = self.most = 0
        self.lock = threading.Lock()

    def check(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame

    def predict(self, typed: pl.DataFrame) -> pl.DataFrame:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        return typed.select((pl.col("x") * 2).alias("y"))


def test_the_batcher_keeps_batches_in_flight_and_stop_answers_every_queued_request() -> None:
    """With a slow model, the next batch is gathered and started while one is scored, never
    more than BATCHES_IN_FLIGHT at once, and stop() answers every queued request."""
    model = DoublingModel(delay=0.05)
    batches: list[int] = []
    live = Live((Deployment(Champion(), model),))  # a stand-in where a LoadedModel goes
    batcher = MicroBatcher(lambda: live, lambda scored: batches.append(scored.outputs.height),
                           max_rows=4, max_wait_ms=1, gap_ms=0.5)  # fmt: skip

    async def traffic() -> list[Answer]:
        batcher.start()
        answers = [asyncio.ensure_future(batcher.score({"x": [float(i)]}, f"r{i}")) for i in range(20)]
        await asyncio.sleep(0)  # every request is queued before the batcher stops
        await batcher.stop()
        return [await a for a in answers]

    started = time.perf_counter()
    answers = asyncio.run(traffic())
    assert [a.outputs[0]["y"] for a in answers] == [2.0 * i for i in range(20)]  # each its own row
    assert sum(batches) == 20 and max(batches) <= 4
    assert model.most == BATCHES_IN_FLIGHT  # overlapped, bounded
    assert time.perf_counter() - started < 0.05 * len(batches)  # faster than one batch at a time


def test_a_batch_closes_when_requests_stop_coming_not_at_max_wait() -> None:
    """Requests with company open a batch that takes whoever arrives within the gap, then
    closes: it does not sit out max_wait, and a request after the gap opens the next batch."""
    model = DoublingModel()
    batches: list[list[float]] = []
    live = Live((Deployment(Champion(), model),))  # a stand-in where a LoadedModel goes
    batcher = MicroBatcher(lambda: live, lambda scored: batches.append(scored.typed["x"].to_list()),
                           max_rows=100, max_wait_ms=5_000, gap_ms=150)  # fmt: skip

    async def traffic() -> None:
        batcher.start()
        together = [asyncio.ensure_future(batcher.score({"x": [float(i)]}, f"r{i}")) for i in range(2)]
        await asyncio.sleep(0.02)
        late = asyncio.ensure_future(batcher.score({"x": [2.0]}, "r2"))  # within the gap: joins
        await asyncio.gather(*together, late)
        await asyncio.sleep(0.2)  # a lone request, well after the gap
        await batcher.score({"x": [3.0]}, "r3")
        await batcher.stop()

    started = time.perf_counter()
    asyncio.run(traffic())
    assert batches == [[0.0, 1.0, 2.0], [3.0]]
    assert time.perf_counter() - started < 2.5  # one max_wait would be 5 s


def test_requests_rows_become_one_set_of_columns_with_none_where_a_row_lacks_one() -> None:
    one = from_records({"a": 1, "b": "x"}, max_rows=10)
    assert combined([one]) == {"a": [1], "b": ["x"]}
    uneven = from_records([{"a": 1}, {"b": 2, "a": 3}, {}], max_rows=10)
    assert combined([uneven]) == {"a": [1, 3, None], "b": [None, 2, None]}
    assert combined([one, one]) == {"a": [1, 1], "b": ["x", "x"]}
    columns = {"b": ["y", "z"], "c": [True, False]}
    assert combined([one, columns, uneven]) == {
        "a": [1, None, None, 1, 3, None],
        "b": ["x", "y", "z", None, 2, None],
        "c": [None, True, False, None, None, None],
    }
    with pytest.raises(RequestRefused, match="not JSON objects"):
        from_records([{"a": 1}, [1]], max_rows=10)
    with pytest.raises(RequestRefused) as too_many:
        from_records([{"a": 1}] * 11, max_rows=10)
    assert too_many.value.status == 413
