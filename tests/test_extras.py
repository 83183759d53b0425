"""The optional parts (serving, reports) without their extra: a message that names the extra,
never a traceback from deep inside. Each case runs in a fresh process where the library cannot
be imported (``sys.modules[name] = None``, as Python does for a module it refused)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from driftloop.project import Project

WITHOUT = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # `import name` now fails as for a package that is not installed
exec(sys.argv[2])
"""


def without(libraries: str, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT, libraries, code, *args], capture_output=True, text=True, check=False
    )


def test_the_server_without_the_serve_extra_names_it(synthetic_project: Project) -> None:
    root = str(synthetic_project.root)
    done = without("prometheus_client", "import driftloop.serve.app")
    assert done.returncode != 0 and "MissingDependency" in done.stderr
    assert "the prediction server needs prometheus_client, which is not installed: pip install 'driftloop[serve]'" in (
        done.stderr
    )
    # A device's server needs no FastAPI; a central one does, and says so.
    central = "from driftloop.project import Project; from driftloop.serve.app import create_app; "
    done = without("fastapi", central + "create_app(Project.load(sys.argv[3]))", root)
    assert done.returncode != 0 and "MissingDependency" in done.stderr
    assert "the central prediction server needs fastapi, which is not installed: pip install 'driftloop[serve]'" in (
        done.stderr
    )
    command = "from driftloop.cli import main; sys.argv = ['driftloop', 'serve', '--project', sys.argv[3]]; main()"
    for library in ("uvicorn", "fastapi"):
        cli = without(library, command, root)
        assert cli.returncode == 1 and "Traceback" not in cli.stderr
        assert f"needs {library}" in cli.stderr and "pip install 'driftloop[serve]'" in " ".join(cli.stderr.split())


PIPELINE = "torch,mlflow,deltalake,pyarrow,pandas,scipy,sklearn,onnx"
CLI = "from driftloop.cli import main; sys.argv = ['driftloop', *sys.argv[3:]]; main()"


def test_an_install_without_the_pipeline_runs_the_device_commands_and_names_the_extra_for_the_rest(
    synthetic_project: Project,
) -> None:
    """What `pip install 'driftloop[edge]'` leaves out (PyTorch, MLflow, Delta, ...): `driftloop
    edge` works, the stages are listed with the extra they need and say it when run."""
    listed = without(PIPELINE, CLI, "--help")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "ingest    (needs driftloop[pipeline])" in listed.stdout and " edge " in listed.stdout
    assert without(PIPELINE, CLI, "edge", "agent", "--help").returncode == 0
    root = str(synthetic_project.root)
    for command in (["ingest", "new.csv", "--project", root], ["train", "--project", root], ["predict", "--help"]):
        done = without(PIPELINE, CLI, *command)
        flat = " ".join(done.stderr.split())
        assert done.returncode == 1 and "Traceback" not in done.stderr, (command, done.stderr[-2000:])
        assert "which is not installed: pip install 'driftloop[pipeline]'" in flat, (command, flat)


def test_reports_without_the_reports_extra_name_it_before_any_work(synthetic_project: Project) -> None:
    for module in ("driftloop.monitor.report", "driftloop.replay.report"):
        done = without("plotly", f"import {module}")
        assert "pip install 'driftloop[reports]'" in done.stderr, done.stderr[-500:]
    command = (
        "from driftloop.cli import main; "
        "sys.argv = ['driftloop', 'monitor', '--date', '2030-01-01', '--project', sys.argv[3]]; main()"
    )
    cli = without("plotly", command, str(synthetic_project.root))
    flat = " ".join(cli.stderr.replace("│", " ").split())
    # Said before looking at the window (which has no rows: that error would come second).
    assert cli.returncode == 1 and "driftloop[reports]" in flat and "no feature rows" not in flat


TRAIN = """
from driftloop.model.trainer import train_project
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.registry.mlflow.tracking import MlflowTracker
project = Project.load(sys.argv[3])
with MlflowTracker(project) as tracker:
    version = tracker.record(train_project(project, callbacks=[tracker]))
info = Registry(project).version(version)
print(info.stage, Registry(project).store.client.get_run(info.run_id).data.tags["driftloop.plots"])
"""


def test_training_without_matplotlib_records_the_run_and_says_why_there_are_no_plots(tmp_path: Path) -> None:
    from tests.conftest import make_synthetic_project

    project = make_synthetic_project(tmp_path / "noplots", epochs=2)
    done = without("matplotlib", TRAIN, str(project.root))
    assert done.returncode == 0, done.stderr[-2000:]
    stage, _, note = done.stdout.strip().splitlines()[-1].partition(" ")
    assert stage == "dev" and note.startswith("not drawn: drawing a training run's plots needs matplotlib")
