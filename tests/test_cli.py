from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.registry import Alias, Registry
from driftloop.serve.app import logged_rows
from driftloop.serve.batcher import Scored
from driftloop.serve.deployments import Deployment
from driftloop.serve.deployments.champion import Champion
from driftloop.serve.loaded import LoadedModel
from tests.conftest import make_synthetic_project, small_frame
from tests.test_predict import champion_project

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_new_user_goes_from_csv_to_features(tmp_path: Path) -> None:
    sample = tmp_path / "sample.csv"
    small_frame(6).write_csv(sample)
    project = str(tmp_path / "proj")
    code, out, _ = run("init", project, "--data", str(sample), "--id", "id", "--target", "y")
    assert code == 0 and "Drafted contract" in out
    day = tmp_path / "day.csv"
    small_frame(4, start=6).with_columns(pl.Series("x", ["1", "2", "x", "3"])).write_csv(day)
    code, out, _ = run("ingest", str(sample), str(day), "--project", project)
    assert code == 0 and "Quarantined rows by rule" in out
    code, out, _ = run("features", "--project", project, "--json")
    assert code == 0 and json.loads(out)["rows"] == 9
    code, out, _ = run("tables", "--project", project, "--json")
    listing = {t["table"]: t["rows"] for t in json.loads(out)}
    assert (listing["raw"], listing["quarantine"], listing["features"]) == (9, 1, 9)
    code, out, _ = run("tables", "raw", "--project", project)
    assert code == 0 and "History of raw" in out


def test_ingest_json_summary_and_refusal_exit_code(tmp_path: Path) -> None:
    sample = tmp_path / "sample.csv"
    small_frame().write_csv(sample)
    project = str(tmp_path / "proj")
    run("init", project, "--data", str(sample), "--id", "id")
    bad = tmp_path / "bad.csv"
    small_frame().drop("x").write_csv(bad)
    code, out, _ = run("ingest", str(sample), str(bad), "--project", project, "--json")
    assert code == 1
    statuses = [s["status"] for s in json.loads(out)]
    assert statuses == ["ingested", "refused"]


def test_user_errors_exit_1_with_a_message_and_no_traceback(tmp_path: Path) -> None:
    code, _, err = run("ingest", "nothing.csv", "--project", str(tmp_path))
    assert code == 1
    assert "no driftloop.toml" in err and "Traceback" not in err


def test_usage_errors_exit_2() -> None:
    assert run("ingest")[0] == 2
    assert run("no-such-command")[0] == 2


def test_every_command_has_help() -> None:
    for command in ("init", "ingest", "features", "tables", "demo"):
        code, out, _ = run(command, "--help")
        assert code == 0 and "Usage" in out


def test_help_shows_settings_sections_as_written() -> None:
    """Help names settings as "[rollout] steps": Rich renders help, and must not take them for markup."""
    code, out, _ = run("rollout", "canary", "--help")
    assert code == 0 and "[rollout]" in " ".join(out.split())
    code, out, _ = run("--help")
    assert code == 0 and "[loop] schedule_at" in " ".join(out.split())


def test_the_installed_script_runs() -> None:
    done = subprocess.run(
        [Path(sys.executable).with_name("driftloop"), "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "ingest" in done.stdout


def test_train_promote_evaluate_models_and_rollback_through_the_cli(tmp_path: Path) -> None:
    project = str(make_synthetic_project(tmp_path / "cli", epochs=10).root)
    code, out, _ = run("train", "--project", project, "--json")
    assert code == 0
    trained = json.loads(out)
    assert trained["version"] == "1" and trained["metrics"]["test"]["y"]["r2"] > 0.5
    code, out, _ = run("promote", "--project", project, "--json")
    assert code == 0 and [d["kind"] for d in json.loads(out)] == ["promoted to qa", "champion"]
    code, out, _ = run("evaluate", "1", "--project", project, "--json")
    assert code == 0 and json.loads(out)["metrics"]["y"]["mae"] > 0
    code, out, _ = run("models", "--project", project, "--json")
    listing = json.loads(out)
    assert listing["versions"][0]["aliases"] == ["champion"] and len(listing["events"]) == 2
    code, _, err = run("rollback", "--project", project)
    assert code == 1 and "no previous champion" in err
    code, _, err = run("models", "--project", project, "--at", "yesterday")
    assert code == 1 and "is not an ISO date" in err
    code, out, _ = run("promote", "--project", project)
    assert code == 1  # nothing left in dev or qa


def test_ingest_labels_from_the_command_line(tmp_path: Path) -> None:
    sample = tmp_path / "sample.csv"
    small_frame().write_csv(sample)
    project = str(tmp_path / "proj")
    run("init", project, "--data", str(sample), "--id", "id", "--target", "y")
    truth = tmp_path / "truth.csv"
    small_frame().select("id", "ts", "y").write_csv(truth)
    code, out, _ = run("ingest", str(truth), "--labels", "--project", project, "--json")
    assert code == 0 and json.loads(out)[0]["rows_raw"] == 6
    code, out, _ = run("tables", "--project", project, "--json")
    assert {t["table"]: t["rows"] for t in json.loads(out)}["labels"] == 6


def test_predict_and_monitor_from_the_command_line(tmp_path: Path) -> None:
    project = champion_project(tmp_path / "loop")
    folder = str(project.root)
    code, out, _ = run("predict", "--since", "2024-01-10", "--until", "2024-01-12", "--project", folder, "--json")
    assert code == 0 and json.loads(out)["rows"] == 48
    code, out, _ = run("monitor", "--date", "2024-01-10", "--project", folder, "--json")
    report = json.loads(out)
    assert code == 0 and report["verdict"] in ("ok", "warn", "drift", "degraded") and report["rows"] == 24
    assert all(Path(p).is_file() for p in report["report"])  # HTML and PNG under PROJECT/reports
    code, out, _ = run("monitor", "--date", "2024-01-10", "--project", folder)
    assert code == 0 and "Input drift" in out
    code, _, err = run("monitor", "--date", "2031-01-01", "--project", folder)
    assert code == 1 and "no feature rows" in err
    code, _, err = run("monitor", "--date", "2024-01-10", "--source", "online", "--project", folder)
    assert code == 1 and "no online predictions" in err  # nothing was served yet

    # Requests the server would have answered, logged as it logs them.
    registry = Registry(project)
    version = registry.aliases()[Alias.CHAMPION]
    model = LoadedModel(registry.name, version, "run", registry.load(version))
    champion = Deployment(Champion(), model)
    raw = project.lake.read("raw", since=datetime(2024, 1, 10), until=datetime(2024, 1, 11), time_column="ts")
    typed = model.check(raw.select("ts", "a", "b", "c"))
    scored = Scored(typed, model.predict(typed), champion, [f"r{i}|0" for i in range(typed.height)])
    project.lake.append("predictions", logged_rows(project.contract, [scored], "serve-test"))
    code, out, _ = run("monitor", "--date", "2024-01-10", "--source", "online", "--project", folder, "--json")
    online = json.loads(out)
    assert code == 0 and online["source"] == "online" and online["rows"] == 24 and online["performance"]
    assert "online_" in Path(online["report"][0]).name  # beside the batch report, not over it
    code, _, err = run("monitor", "--date", "2024-01-10", "--source", "nightly", "--project", folder)
    flat = " ".join(err.replace("│", " ").split())  # rich wraps the message in a box
    assert code == 2 and "'nightly' is not one of 'batch', 'online'" in flat  # the choices are named

    # The batch and the online predictions are two files of one partition: compacted into one.
    code, out, _ = run("compact", "--project", folder, "--json")
    assert code == 0 and {"table": "predictions", "files_removed": 2, "files_added": 1} in [
        {k: c[k] for k in ("table", "files_removed", "files_added")} for c in json.loads(out)
    ]
    code, out, _ = run("compact", "predictions", "--project", folder)
    assert code == 0 and "predictions: nothing to compact" in out
    code, _, err = run("compact", "nope", "--project", folder)
    assert code == 1 and "no lake table named 'nope'" in err


def test_an_error_naming_a_section_shows_it_verbatim(tmp_path: Path) -> None:
    from driftloop.project import Project, init_project
    from driftloop.settings.train import TargetSettings, TrainSettings
    from tests.conftest import synthetic_rows

    project = init_project(tmp_path / "p", sample=synthetic_rows(48), time_column="ts", targets=("y",))
    train = TrainSettings(targets={"nope": TargetSettings()})
    Project(project.root, project.settings.model_copy(update={"train": train})).save()
    result = CliRunner().invoke(app, ["train", "--project", str(project.root)])
    assert result.exit_code == 1
    assert "[train.targets] names ['nope']" in result.stderr.replace("\n", " ")  # not eaten as Rich markup


def test_init_reads_the_whole_file_and_says_what_it_inferred(tmp_path: Path) -> None:
    # A file sorted by time whose second half is warmer than anything in its first rows.
    rows = 400
    frame = pl.DataFrame(
        {
            "ts": [f"2024-01-{1 + i // 24:02d}T{i % 24:02d}:00:00Z" for i in range(rows)],
            "temp": [str(i / 10) for i in range(rows)],
            "sensor": ["s1"] * rows,
            "y": [str(i % 13) for i in range(rows)],
        }
    )
    path = tmp_path / "readings.csv"
    frame.write_csv(path)
    project = str(tmp_path / "proj")
    code, out, _ = run(
        "init", project, "--data", str(path), "--target", "y", "--sample-rows", "50", "--timezone", "Asia/Tokyo"
    )
    assert code == 0 and "50 rows read evenly" in out and "missing" in out
    assert "sensor: constant" in " ".join(out.split())
    code, out, _ = run("ingest", str(path), "--project", project, "--json")
    assert code == 0 and json.loads(out)[0]["rows_quarantined"] == 0  # the later, warmer rows pass
    code, out, _ = run("init", str(tmp_path / "bad"), "--data", str(path), "--timezone", "Mars/Olympus")
    assert code != 0 and "unknown time zone 'Mars/Olympus'" in out + _
