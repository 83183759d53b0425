"""Canary rollouts on a real server (uvicorn on 127.0.0.1, a real registry and lake): a better
version steps up through its shares and is crowned by the gates; a version whose answers stray
from the champion's is rolled back by the server itself, with an event, an alert and the
champion answering everyone again. Requests are routed the same way for the same entity, and
every answer is logged with its arm."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.features.definitions import ExpressionFeature
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.rollout.guards import LATENCY_REQUESTS, GuardWatch, output_gaps
from driftloop.rollout.routing import arm_of, sticky_key
from driftloop.rollout.state import Rollout, RolloutKind, RolloutStatus, current
from driftloop.runtime.targets import Targets
from driftloop.serve.batcher import MicroBatcher
from driftloop.serve.deployments import Deployment, Live
from driftloop.serve.deployments.canary import Canary
from driftloop.serve.deployments.champion import Champion
from driftloop.serve.loaded import LoadedModel
from driftloop.settings import RolloutSettings
from tests.conftest import make_synthetic_project
from tests.live import server

runner = CliRunner()


def invoke(project: Project, *args: str) -> str:
    done = runner.invoke(app, [*args, "--project", str(project.root)])
    assert done.exit_code == 0, done.output
    return done.output


def configured(project: Project, **changes: Any) -> Project:
    """``project`` with its ``[rollout]`` changed (quick checks for a test) and its epochs as given."""
    epochs = changes.pop("epochs", project.settings.train.epochs)
    # Latency is judged by its own test below: a neighbour's CPU spike is not what these test.
    quick = {"guard_seconds": 0.3, "guard_requests": 15, "step_requests": 15, "step_minutes": 0, "max_p99_ms": 10_000}
    rollout = RolloutSettings(**(quick | changes))
    train = project.settings.train.model_copy(update={"epochs": epochs})
    Project(project.root, project.settings.model_copy(update={"rollout": rollout, "train": train})).save()
    return Project.load(project.root)


class Hook(BaseHTTPRequestHandler):
    """A webhook that keeps what it is sent."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def records(project: Project) -> list[dict[str, Any]]:
    rows = project.lake.read("features").select("ts", "a", "b", "c").head(40)
    return rows.with_columns(pl.col("ts").cast(pl.String)).to_dicts()


def until(condition: Any, client: Any, body: list[dict[str, Any]], seconds: float = 60) -> list[str]:
    """Send single-row requests until ``condition()`` holds (at most ``seconds``, 3,000 requests);
    the versions that answered."""
    versions: list[str] = []
    deadline = time.monotonic() + seconds
    for n in range(3000):
        answer = client.post("/v1/predict", json=body[n % len(body)])
        assert answer.status_code == 200, answer.text
        versions.append(answer.json()["model_version"])
        if condition() or time.monotonic() > deadline:
            break
    return versions


def test_routing_is_sticky_by_entity_and_a_growing_share_keeps_its_entities() -> None:
    keys = [f"meter-{i}" for i in range(20_000)]
    at_10 = {k for k in keys if arm_of(k, 10) == 0}
    at_50 = {k for k in keys if arm_of(k, 50) == 0}
    assert 0.09 < len(at_10) / len(keys) < 0.11 and 0.48 < len(at_50) / len(keys) < 0.52
    assert at_10 <= at_50  # stepping up never moves an entity back to the champion
    # Three candidates on 20% each: each takes its own fifth, the champion the other two.
    arms = [arm_of(k, 20, 3) for k in keys]
    shares = [arms.count(arm) / len(keys) for arm in (0, 1, 2, None)]
    assert all(0.18 < share < 0.22 for share in shares[:3]) and 0.38 < shares[3] < 0.42, shares
    assert [arm_of(k, 20, 3) for k in keys[:100]] == arms[:100]  # the same entity, the same arm
    assert arm_of("meter-1", 0, 3) is None  # no share: the champion's
    assert sticky_key([{"id": 7, "x": 1}], ["id"], "req-1") == "7"
    assert sticky_key({"id": [7, 8]}, ["id"], "req-1") == "7"
    assert sticky_key([{"x": 1}], ["id"], "req-1") == "req-1"  # no entity sent: the request decides
    assert sticky_key([{"x": 1}], [], "req-2") == "req-2"


def test_each_guard_judges_the_candidate_only_once_it_has_answered_enough() -> None:
    settings = RolloutSettings(
        guard_requests=10, max_error_rate=0.1, max_p99_ms=50, max_output_gap=0.5, max_label_gap=0.25
    )
    rollout = Rollout.start(RolloutKind.CANARY, "m", ["2"], "1", [10.0], "a test")
    champion, candidate = "1", "2"  # the arms, by version
    watch = GuardWatch()
    for _ in range(9):
        watch.answered(candidate, 1.0, failed=True)  # slow and failing, but only 9 requests: not judged yet
    assert watch.breaches(settings, rollout) == []
    watch.answered(candidate, 1.0, failed=True)
    # The error rate is judged; the latency not yet: a p99 of 10 requests is the slowest of them.
    assert watch.breaches(settings, rollout) == ["error rate 100.0% of 10 requests, above 10.0%"]
    watch.reset()
    for n in range(LATENCY_REQUESTS):
        watch.answered(champion, 0.002)
        watch.answered(candidate, 0.5 if n == 0 else 0.002)  # one hiccup in a hundred is no p99
    assert watch.breaches(settings, rollout) == []
    watch.reset()
    for _ in range(LATENCY_REQUESTS - 1):
        watch.answered(candidate, 1.0)  # slow, with no champion to compare: the absolute limit, at 100
    assert watch.breaches(settings, rollout) == []
    watch.answered(candidate, 1.0)
    assert watch.breaches(settings, rollout) == ["p99 latency 1000.0 ms, above 50.0 ms (champion 0.0 ms)"]
    watch.reset()
    for _ in range(LATENCY_REQUESTS):
        watch.answered(champion, 0.002)
        watch.answered(candidate, 0.011)  # more than twice the champion's 2 ms, but within 10 ms of it
    assert watch.breaches(settings, rollout) == []
    watch.reset()
    for _ in range(LATENCY_REQUESTS):
        watch.answered(champion, 0.015)
        watch.answered(candidate, 0.040)  # under 50 ms, but above twice the champion's 15 ms
    assert watch.breaches(settings, rollout) == ["p99 latency 40.0 ms, above 30.0 ms (champion 15.0 ms)"]
    watch.reset()
    for _ in range(LATENCY_REQUESTS):
        watch.answered(champion, 0.060)
        watch.answered(candidate, 0.062)  # above 50 ms, as is the champion: the server is slow, not the candidate
    assert watch.breaches(settings, rollout) == []
    for _ in range(LATENCY_REQUESTS):
        watch.answered(candidate, 0.200)  # more than twice the champion's: still the candidate's fault
    assert watch.breaches(settings, rollout)[0].startswith("p99 latency 200.0 ms, above 120.0 ms")
    watch.reset(keep=champion)  # a new step: the champion's latency stays the reference (at 100% it gets none)
    for _ in range(LATENCY_REQUESTS):
        watch.answered(candidate, 0.062)
    assert watch.requests(champion) == watch.requests(candidate) == LATENCY_REQUESTS
    assert watch.breaches(settings, rollout) == []  # 62 ms against the champion's 60, kept from the last step
    watch.reset()
    for _ in range(10):
        watch.answered(candidate, 0.001)
    watch.compared(candidate, 30, {"y": 0.2, "kind": 0.1}, labels={"kind"})
    watch.compared(candidate, 10, {"y": 1.4, "kind": 0.1}, labels={"kind"})  # 40 rows at 0.5 on average: the limit
    assert watch.breaches(settings, rollout) == []
    watch.compared(candidate, 10, {"y": 1.0, "kind": 0.7}, labels={"kind"})
    # Each target against its own kind's limit: y (a number) is above its 0.5, kind (a label) at 22% is not.
    assert watch.breaches(settings, rollout) == ["y 0.60 from the champion's on the same 50 rows, above 0.5"]
    watch.compared(candidate, 10, {"y": 0.0, "kind": 0.6}, labels={"kind"})  # y back to 0.5; kind up to 28%
    assert watch.breaches(settings, rollout) == [
        "kind predicted otherwise than by the champion on 28% of the same 60 rows, above 25%"
    ]
    assert watch.summary(rollout)["candidate_output_gap_y"] == pytest.approx(0.5)
    # Two candidates of an A/B test: each arm is judged on its own, and named.
    ab = Rollout.start(RolloutKind.AB, "m", ["2", "3"], "1", [30.0], "a test")
    watch.reset()
    for _ in range(10):
        watch.answered("2", 0.001)
        watch.answered("3", 0.001, failed=True)
    found = watch.breaches(settings, ab, service_only=True)
    assert found == ["version 3: error rate 100.0% of 10 requests, above 10.0%"]


def test_the_output_gap_is_in_the_target_spread_for_a_number_and_a_share_for_a_label() -> None:
    heads = Targets(["y", "kind"], mean={"y": 0.0}, std={"y": 2.0}, classes={"kind": ["a", "b"]})
    champion = pl.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "kind": ["a", "a", "b", "b"]})
    assert output_gaps(champion, champion, heads) == {"y": 0.0, "kind": 0.0}
    moved = champion.with_columns(pl.col("y") + 1.0, kind=pl.lit("a"))
    assert output_gaps(champion, moved, heads) == {"y": 0.5, "kind": 0.5}  # 1 over a spread of 2; half otherwise


@pytest.fixture
def hook() -> Any:
    Hook.received = []
    catcher = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=catcher.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{catcher.server_port}/hook"
    catcher.shutdown()


def test_a_better_canary_steps_up_and_is_crowned_and_a_straying_one_is_rolled_back_by_the_server(
    tmp_path: Path, hook: str
) -> None:
    project = make_synthetic_project(tmp_path / "p", epochs=3)  # a weak first champion
    loop = project.settings.loop.model_copy(update={"webhook_url": hook})
    Project(project.root, project.settings.model_copy(update={"loop": loop})).save()
    invoke(project, "train")
    invoke(project, "promote")
    project = configured(Project.load(project.root), epochs=60, steps=[10, 50, 100])
    invoke(project, "train")  # version 2: trained well
    body = records(project)

    # Malformed requests for a rollout are refused with the reason, and nothing is written.
    for args, message in ((["rollout", "canary", "1"], "is the champion already"),
                          (["rollout", "canary", "2", "--percent", "150"], "between 0 and 100"),
                          (["rollout", "ab", "1"], "is the champion already"),
                          (["rollout", "abort"], "no rollout")):  # fmt: skip
        refused = runner.invoke(app, [*args, "--project", str(project.root)])
        assert refused.exit_code == 1 and message in " ".join(refused.output.split()), refused.output
    assert current(project.lake, project.model_name) is None

    with server(project) as client:
        invoke(project, "rollout", "canary", "2")  # a dev version: the qa gates first, then 10%
        rollout = current(project.lake, project.model_name)
        assert rollout is not None and rollout.running and rollout.percent == 10
        versions = until(lambda: not running(project), client, body)
    ended = current(project.lake, project.model_name)
    assert ended is not None and ended.status is RolloutStatus.PROMOTED, ended
    assert Registry(project).champion() == "2"
    steps = [r["steps"][r["step"]] for r in invoke_json(project, "rollout", "status")["history"]
             if r["status"] == "running"]  # fmt: skip
    assert steps[:3] == [10, 50, 100]
    assert {"1", "2"} <= set(versions)  # both answered while it ran
    logged = project.lake.read("predictions").filter(pl.col("model_version") == "2")
    assert set(logged["source"]) >= {"canary"}  # the candidate's answers, logged with their arm
    events = Registry(project).events()
    assert {"canary", "champion"} <= set(events.filter(pl.col("version") == "2")["kind"])

    # Version 3, trained poorly: as its answers' labels come in (the rows' own targets here), the
    # always-valid test finds it worse than the champion, and the server rolls it back itself.
    project = configured(project, epochs=2, steps=[30, 100], step_requests=10_000, metric_seconds=0.5)
    invoke(project, "train")
    with server(project) as client:
        invoke(project, "rollout", "canary", "3")
        until(lambda: not running(project), client, body, seconds=90)
        after = [client.post("/v1/predict", json=row).json()["model_version"] for row in body[:20]]
    ended = current(project.lake, project.model_name)
    assert ended is not None and ended.status is RolloutStatus.ROLLED_BACK, ended
    assert "decisive metric is worse than the champion's with 95% confidence" in ended.reason, ended.reason
    assert ended.details["metric_rows_candidate"] >= 30 and ended.details["metric_p_value"] <= 0.05
    assert set(after) == {"2"} and Registry(project).champion() == "2"  # the champion answers everyone
    assert "canary rolled back" in set(Registry(project).events()["kind"])
    texts = [h["text"] for h in Hook.received]
    assert any(t.startswith("driftloop canary rolled back: version 3") for t in texts), texts
    assert "rolled back" in invoke(project, "rollout", "status")

    # An A/B test of versions 4 and 5 (trained poorly too) against the champion, a third of the
    # traffic each: the sequential test finds the champion better than both (each pair tested at
    # alpha over 3), the verdict is an event, and the champion stays.
    project = configured(project, epochs=3, metric_seconds=0.5)
    invoke(project, "train")
    invoke(project, "train")
    for args, message in ((["rollout", "ab", "4", "4"], "takes each version once"),
                          (["rollout", "ab", "4", "5", "--percent", "60"], "leave the champion no")):  # fmt: skip
        refused = runner.invoke(app, [*args, "--project", str(project.root)])
        assert refused.exit_code == 1 and message in " ".join(refused.output.split()), refused.output
    with server(project) as client:
        invoke(project, "rollout", "ab", "4", "5")
        refused = runner.invoke(app, ["rollout", "promote", "--project", str(project.root)])
        assert refused.exit_code == 1 and "ends by its verdict" in refused.output, refused.output
        versions = until(lambda: not running(project), client, body, seconds=120)
    assert {"2", "4", "5"} <= set(versions)
    logged = project.lake.read("predictions").filter(pl.col("model_version").is_in(["4", "5"]))
    for version in ("4", "5"):  # each arm logged exactly the rows it answered, as its arm
        mine = logged.filter(pl.col("model_version") == version)
        assert mine.height == versions.count(version) and set(mine["source"]) == {"canary"}
    ended = current(project.lake, project.model_name)
    assert ended is not None and ended.status is RolloutStatus.DECIDED and ended.candidates == ("4", "5"), ended
    assert ended.reason.startswith("version 2 is better than versions 4 and 5 with 95% confidence"), ended.reason
    assert ended.details["best"] == "2" and ended.step == 0  # no steps
    result = Registry(project).events().filter(pl.col("kind") == "a/b result")
    assert result.height == 1 and result["reason"][0] == ended.reason and Registry(project).champion() == "2"
    assert set(Registry(project).events().filter(pl.col("kind") == "a/b test")["version"]) == {"4", "5"}
    assert "decided" in invoke(project, "rollout", "status")


def running(project: Project) -> bool:
    rollout = current(project.lake, project.model_name)
    return rollout is not None and rollout.running


def invoke_json(project: Project, *args: str) -> Any:
    return json.loads(invoke(project, *args, "--json"))


def test_a_canary_whose_features_differ_from_the_champions_is_scored_through_its_own(tmp_path: Path) -> None:
    """Version 2 adds a derived feature version 1 does not have: a canary batch still answers each
    request with its arm's version exactly as that version alone would, and compares them."""
    project = make_synthetic_project(tmp_path / "p", epochs=2)
    invoke(project, "train")
    features = [ExpressionFeature(name="ab", expr="a * b")]
    Project(project.root, project.settings.model_copy(update={"features": features})).save()
    project = Project.load(project.root)
    invoke(project, "features")
    invoke(project, "train")
    registry = Registry(project)
    one, two = (LoadedModel(project.model_name, v, "", registry.load(v)) for v in ("1", "2"))
    assert not two.package.features.same_as(one.package.features)
    rollout = Rollout.start(RolloutKind.CANARY, project.model_name, ["2"], "1", [50.0], "a test")
    live = Live((Deployment(Champion(), one), Deployment(Canary(rollout), two)))
    watch, logged = GuardWatch(), []
    batcher = MicroBatcher(lambda: live, logged.append, max_rows=64, max_wait_ms=5, gap_ms=2, watch=watch)
    body = records(project)[:30]

    async def traffic() -> list[Any]:
        batcher.start()
        answers = [asyncio.ensure_future(batcher.score([row], f"r{n}", f"meter-{n}")) for n, row in enumerate(body)]
        done = [await a for a in answers]
        await batcher.stop()
        return done

    answers = asyncio.run(traffic())
    arms = [arm_of(f"meter-{n}", 50) == 0 for n in range(len(body))]
    assert 0 < sum(arms) < len(body)  # both arms answered
    for row, answer, to_two in zip(body, answers, arms, strict=True):
        model = two if to_two else one
        assert answer.model.version == model.version
        alone = model.predict(model.check(pl.DataFrame([row]).with_columns(pl.col("ts").str.to_datetime())))
        assert answer.outputs[0]["y"] == pytest.approx(alone["y"][0], rel=1e-6)
    assert sum(arms) <= watch.compared_rows <= len(body)  # every row of the batches it answered in
    answered = {
        kind: sum(s.answered for s in logged if s.deployment.kind.name == kind) for kind in ("champion", "canary 2")
    }
    assert answered == {"champion": len(body) - sum(arms), "canary 2": sum(arms)}  # each logs the rows it answered
