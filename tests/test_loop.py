"""The loop: retrain policy, alerts to a real local webhook, and ticks on real tables."""

from __future__ import annotations

import json
import logging
import threading
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import polars as pl
import pytest

from driftloop.alerts import alert
from driftloop.errors import RegistryError
from driftloop.loop import LABELS_FOLDER, tick
from driftloop.loop.policy import should_retrain
from driftloop.project import Project, init_project
from driftloop.registry import Alias, Registry
from driftloop.settings.loop import LoopSettings
from driftloop.settings.train import TrainSettings
from tests.conftest import aliases_unreadable, synthetic_rows

NOW = datetime(2024, 3, 1)


def test_the_policy_needs_a_signal_labels_and_a_cooled_down_model() -> None:
    settings = LoopSettings(min_new_labels=100, cooldown_days=7)
    assert not should_retrain("ok", 1000, None, NOW, settings).retrain
    assert not should_retrain("warn", 1000, None, NOW, settings).retrain
    assert "only 50 new labelled rows" in should_retrain("degraded", 50, None, NOW, settings).reason
    recent = should_retrain("drift", 1000, NOW - timedelta(days=2), NOW, settings)
    assert not recent.retrain and "cool-down" in recent.reason
    assert should_retrain("drift", 1000, NOW - timedelta(days=8), NOW, settings).retrain
    assert not should_retrain("drift", 1000, None, NOW, LoopSettings(retrain_on=["degraded"])).retrain


def test_the_policy_acts_on_any_signal_it_lists_not_only_the_worst() -> None:
    settings = LoopSettings(retrain_on=["drift"], min_new_labels=0)
    both = should_retrain({"degraded", "drift", "warn"}, 10, None, NOW, settings)
    assert both.retrain and both.reason.startswith("verdict drift")
    early = should_retrain({"estimated_degraded"}, 10, None, NOW, LoopSettings(min_new_labels=0))
    assert early.retrain and "estimated_degraded" in early.reason  # in the default list
    quiet = should_retrain({"warn"}, 10, None, NOW, settings)
    assert not quiet.retrain and "verdict warn: nothing to act on" in quiet.reason


class _Catcher(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Catcher.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def test_alerts_reach_a_webhook_and_a_dead_one_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Catcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        sender = alert("drift", "inputs drifted", {"window": "x"}, url=url, attempts=2, timeout=2)
        assert sender is not None
        sender.join(10)
        assert _Catcher.received[-1] == {"text": "driftloop drift: inputs drifted", "kind": "drift",
                                         "message": "inputs drifted", "details": {"window": "x"}}  # fmt: skip
    finally:
        server.shutdown()
    with caplog.at_level(logging.WARNING, logger="driftloop.alerts"):
        dead = alert("drift", "again", {}, url=f"http://127.0.0.1:{server.server_port}/gone", attempts=2, timeout=1)
        assert dead is not None
        dead.join(10)
    assert "gave up after 2 attempts" in caplog.text


def loop_project(root: Path) -> Project:
    rows = synthetic_rows(24 * 14)  # 1 to 14 January, one file a day
    project = init_project(root, sample=rows.head(200), time_column="ts", targets=("y",))
    train = TrainSettings(hidden=[32, 16], epochs=30, patience=8, learning_rate=3e-3)
    loop = LoopSettings(min_new_labels=48, cooldown_days=5, monitor_days=3, compact_files=8)
    Project(project.root, project.settings.model_copy(update={"train": train, "loop": loop, "features": []})).save()
    project = Project.load(project.root)
    project.inbox.mkdir()
    for day in range(1, 15):
        rows.filter(pl.col("ts").dt.day() == day).write_parquet(project.inbox / f"day{day:02d}.parquet")
    return project


def test_a_tick_bootstraps_a_champion_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    project = loop_project(tmp_path / "loop")
    first = tick(project, date(2024, 1, 14))
    assert len(first.ingested) == 14 and first.trained_version == "1"
    assert [d.kind for d in first.decisions] == ["promoted to qa", "champion"]
    assert first.predicted is not None and first.predicted.rows == 72  # the 3 monitored days
    assert first.monitored is not None and first.retrain is not None and not first.retrain.retrain
    # The model it trained carries how far 3-day windows of its own 14 days move, and the
    # monitoring of the tick judged the inputs by that.
    calibration = Registry(project).load("1").reference["calibration"]
    assert calibration["window_days"] == 3 and calibration["windows"] >= 8
    assert set(calibration["inputs"]) >= {"a", "b", "c"}
    assert all(c.result.calibrated for c in first.monitored.inputs.columns)
    lake = project.lake
    # Fourteen files ingested one by one piled up in raw and batches (features were computed in
    # one go): compacted, rows unchanged.
    assert {c.table for c in first.compacted} == {"raw", "batches"}
    assert lake.row_count("raw") == 24 * 14 and lake.read("features").height == 24 * 14
    state = {t: lake.version(t) for t in ("raw", "features", "predictions")}
    again = tick(project, date(2024, 1, 14))
    assert {s.status for s in again.ingested} == {"already ingested"} and again.trained_version is None
    assert again.compacted == []
    assert lake.version("raw") == state["raw"] and lake.version("features") == state["features"]
    assert lake.read("predictions").height == 72
    assert [str(v.version) for v in Registry(project).versions()] == ["1"]


def test_a_changed_world_with_late_labels_triggers_a_retrain(tmp_path: Path) -> None:
    project = loop_project(tmp_path / "loop")
    tick(project, date(2024, 1, 14))
    later = synthetic_rows(24 * 10, seed=5, start=datetime(2024, 1, 15))
    later.drop("y").write_parquet(project.inbox / "days15-24.parquet")
    (project.inbox / LABELS_FOLDER).mkdir()
    later.select("ts", (pl.col("y") * 3).alias("y")).write_parquet(project.inbox / LABELS_FOLDER / "late.parquet")
    report = tick(project, date(2024, 1, 24))
    assert report.monitored is not None and report.monitored.verdict.level == "degraded"
    assert report.retrain is not None and report.retrain.retrain, report.retrain
    assert report.trained_version == "2" and report.decisions
    kinds = Registry(project).events().get_column("kind").to_list()
    assert "retrain" in kinds
    # The retrain learnt from the late labels (the rows themselves came without a target), so it
    # beats the old champion on the recent window where y tripled.
    assert Registry(project).aliases()[Alias.CHAMPION] == "2", report.decisions[-1].reason


def test_a_challenger_judged_ahead_waits_in_qa_and_a_later_tick_crowns_it(tmp_path: Path) -> None:
    project = loop_project(tmp_path / "loop")
    ahead = project.settings.promote.model_copy(update={"judge_days": 2, "judge_wait_days": 1})
    project = Project(project.root, project.settings.model_copy(update={"promote": ahead}))
    tick(project, date(2024, 1, 14))
    (project.inbox / LABELS_FOLDER).mkdir()

    def changed_days(first: int, days: int) -> None:  # rows, then their labels: y tripled
        rows = synthetic_rows(24 * days, seed=first, start=datetime(2024, 1, first))
        rows.drop("y").write_parquet(project.inbox / f"from{first}.parquet")
        rows.select("ts", (pl.col("y") * 3).alias("y")).write_parquet(
            project.inbox / LABELS_FOLDER / f"{first}.parquet"
        )

    changed_days(15, 10)
    retrained = tick(project, date(2024, 1, 24))
    # Trained on labels up to the 24th, it is judged on the 25th and 26th: not before they are in.
    assert retrained.trained_version == "2" and [d.kind for d in retrained.decisions] == ["promoted to qa"]
    registry = Registry(project)
    assert registry.aliases() == {Alias.CHAMPION: "1", Alias.CHALLENGER: "2"} and registry.stage("2") == "qa"
    assert registry.awaiting("2", at=datetime(2024, 1, 25)) is not None
    changed_days(25, 2)
    judged = tick(project, date(2024, 1, 27))
    assert judged.trained_version is None and [d.kind for d in judged.decisions] == ["champion"]
    # One tripled label fell outside the contract's range and went to quarantine: a day after the
    # two, the challenger stopped waiting for it and was judged on the labels that came.
    labels = project.lake.read("labels").filter(pl.col("ts") >= datetime(2024, 1, 25))
    assert labels.height < 48 and judged.decisions[0].gates[0].numbers["window_rows"] == labels.height
    assert registry.aliases()[Alias.CHAMPION] == "2"
    # Crowned before the day was scored: the tick's predictions are the new champion's.
    assert judged.predicted is not None and judged.predicted.model_version == "2"


def test_run_and_schedule_from_the_command_line(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from typer.testing import CliRunner

    from driftloop.cli import app

    project = loop_project(tmp_path / "cli")
    result = CliRunner().invoke(app, ["run", "--date", "2024-01-14", "--project", str(project.root), "--json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["trained_version"] == "1" and summary["verdict"] in ("ok", "warn", "drift", "degraded")
    again = CliRunner().invoke(app, ["run", "--date", "2024-01-14", "--project", str(project.root)])
    assert again.exit_code == 0 and "0 new file(s)" in again.stdout

    script = Path(sys.executable).with_name("driftloop")
    scheduler = subprocess.Popen(
        [script, "schedule", "--project", str(project.root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert scheduler.stdout is not None
    assert "a tick every day at 02:00 UTC" in scheduler.stdout.readline()
    scheduler.send_signal(signal.SIGTERM)
    out, err = scheduler.communicate(timeout=30)
    assert scheduler.returncode == 0, err
    assert "stopped" in out


KILLED_AT_THE_GATES = """
import os, signal, sys
from datetime import date
from driftloop.project import Project
from driftloop.loop import tick
def die(step):
    if step == "promotion gates":  # the model is trained and registered, not yet judged
        os.kill(os.getpid(), signal.SIGKILL)
tick(Project.load(sys.argv[1]), date(2024, 1, 14), on_step=die)
"""


def test_a_tick_killed_before_the_gates_is_finished_by_the_next(tmp_path: Path) -> None:
    import subprocess
    import sys

    project = loop_project(tmp_path / "killed")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AT_THE_GATES, str(project.root)], check=False, capture_output=True
    )
    assert killed.returncode == -9, killed.stderr.decode()[-1500:]
    registry = Registry(project)
    assert registry.stage("1") == "dev" and Alias.CHAMPION not in registry.aliases()
    resumed = tick(project, date(2024, 1, 14))
    assert any("resumed the promotion of version 1" in note for note in resumed.notes)
    assert registry.aliases()[Alias.CHAMPION] == "1" and resumed.trained_version is None  # judged, not retrained
    assert [str(v.version) for v in registry.versions()] == ["1"]


def test_a_tick_that_cannot_read_the_champion_stops_instead_of_retraining(tmp_path: Path) -> None:
    project = loop_project(tmp_path / "unreadable")
    tick(project, date(2024, 1, 14))
    with aliases_unreadable(project), pytest.raises(RegistryError, match="cannot read the aliases"):
        tick(project, date(2024, 1, 14))
    assert [str(v.version) for v in Registry(project).versions()] == ["1"]  # nothing was trained
    assert Registry(project).aliases() == {Alias.CHAMPION: "1"}


COUNTING_READS = """
import sys
from datetime import date
from driftloop.loop import tick
from driftloop.project import Project
from driftloop.runtime.package import ModelPackage
reads = []
read = ModelPackage.load.__func__
def counted(cls, folder, **options):
    reads.append(str(folder))
    return read(cls, folder, **options)
ModelPackage.load = classmethod(counted)
report = tick(Project.load(sys.argv[1]), date(2024, 1, 14))
assert report.predicted is not None and report.monitored is not None, report.notes
print(len(reads))
"""


def test_a_tick_reads_the_champion_from_the_registry_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    project = loop_project(tmp_path / "once")
    tick(project, date(2024, 1, 14))  # trains and crowns version 1
    # The daily tick of a scheduler or cron is a fresh process: it scores, monitors and asks the
    # policy with the champion, and reads its package once.
    done = subprocess.run(
        [sys.executable, "-c", COUNTING_READS, str(project.root)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "1"
