"""The registry policy against a real MLflow store: gates, champion/challenger, rollback, races."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from driftloop.errors import RegistryError
from driftloop.ingest import ingest
from driftloop.model.trainer import train_project
from driftloop.project import Project
from driftloop.registry import Alias, Registry
from driftloop.registry.mlflow.tracking import MlflowTracker
from driftloop.settings.train import TrainSettings
from tests.conftest import aliases_unreadable, make_project, make_synthetic_project, synthetic_rows


def train_version(project: Project, *, until: datetime | None = None, **changes: object) -> str:
    settings = project.settings.train.model_copy(update=changes)
    tuned = Project(project.root, project.settings.model_copy(update={"train": settings}))
    with MlflowTracker(tuned) as tracker:
        return tracker.record(train_project(tuned, until=until, callbacks=[tracker]))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_synthetic_project(tmp_path_factory.mktemp("registry") / "reg", epochs=40)


def test_first_champion_then_a_worse_or_equal_one_is_rejected_then_a_better_one_wins(project: Project) -> None:
    registry = Registry(project)
    weak = train_version(project, epochs=8)  # beats the ridge baseline, but clearly beatable
    [to_qa, crowned] = registry.promote(weak)
    assert to_qa.kind == "promoted to qa" and all(g.passed for g in to_qa.gates)
    assert {g.name for g in to_qa.gates} >= {"loads in a fresh process", "refuses invalid input", "latency"}
    assert crowned.kind == "champion" and registry.aliases()[Alias.CHAMPION] == weak

    same = train_version(project, epochs=8)  # same seed, same data: not better
    [_, rejected] = registry.promote(same)
    assert rejected.kind == "rejected" and "less than the required margin" in rejected.reason
    assert rejected.gates[0].numbers["champion"]["y"]["mae"] > 0  # the compared numbers are kept
    # Trained on the same data, both held the same test days out: their held-out numbers meet.
    assert rejected.gates[0].numbers["basis"] == "the same test window, held out of both fits"
    assert registry.stage(same) == "rejected" and registry.aliases()[Alias.CHAMPION] == weak

    strong = train_version(project)
    [_, promoted] = registry.promote(strong)
    assert promoted.kind == "champion", promoted.reason
    assert registry.aliases() == {Alias.CHAMPION: strong, Alias.PREVIOUS: weak}
    tags = registry.version(strong).tags
    assert tags["stage"] == "prod" and tags["decision"] == "champion" and "relative_gain" in tags["decision_numbers"]

    when = datetime.now(UTC)
    back = registry.rollback()
    assert back.version == weak and registry.aliases() == {Alias.CHAMPION: weak}
    assert registry.champion_at(when) == strong and registry.champion_at(datetime.now(UTC)) == weak
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback()
    kinds = registry.events().get_column("kind").to_list()
    assert kinds.count("champion") == 2 and kinds[-1] == "rollback" and "rejected" in kinds


def test_a_challenger_is_judged_on_its_own_test_days_at_the_time_given(tmp_path: Path) -> None:
    project = make_synthetic_project(tmp_path / "p", epochs=15)  # hourly rows, 1 to 20 January 2024
    registry = Registry(project)

    def trained_until(day: int) -> str:
        with MlflowTracker(project) as tracker:
            return tracker.record(train_project(project, until=datetime(2024, 1, day), callbacks=[tracker]))

    early, late = trained_until(14), trained_until(21)
    registry.promote(early, at=datetime(2024, 1, 14))
    [_, judged] = registry.promote(late, at=datetime(2024, 1, 21, 6))
    numbers = judged.gates[0].numbers
    assert numbers["basis"] == "the challenger's test window, which neither was fitted on"
    assert numbers["window_rows"] == registry.load(late).lineage["rows"]["test"]
    assert numbers["window_start"] == registry.load(late).lineage["test_start"]
    # Simulated time, as a replay passes it: the events say who served when in that time.
    assert judged.at == datetime(2024, 1, 21, 6, tzinfo=UTC)
    assert registry.events().get_column("at").max() == datetime(2024, 1, 21, 6, tzinfo=UTC)
    assert registry.champion_at(datetime(2024, 1, 15, tzinfo=UTC)) == early

    # A challenger whose test days the champion was fitted on: judged, but the reason says so.
    assert judged.kind == "champion", judged.reason  # four more days to learn from (seeded: always so)
    older = trained_until(17)
    [_, unfair] = registry.promote(older, at=datetime(2024, 1, 21, 7))
    seen = registry.load(older).lineage["rows"]["test"]  # late's weights hold every row of older's test days
    assert unfair.gates[0].numbers["basis"] == f"the champion was fitted on {seen} of the {seen} rows, which favours it"
    assert "which favours it" in unfair.reason


def test_a_floor_out_of_reach_stops_the_model_at_qa(project: Project) -> None:
    strict = project.settings.promote.model_copy(update={"floors": {"y.r2": 0.99999, "y.mae": 0.00001}})
    strict_project = Project(project.root, project.settings.model_copy(update={"promote": strict}))
    version = train_version(strict_project, epochs=2)
    [decision] = Registry(strict_project).promote(version)
    assert decision.kind == "rejected at qa" and "metric floors" in decision.reason
    assert "y.r2" in decision.reason
    assert Registry(strict_project).stage(version) == "dev"


def test_unknown_versions_are_clear_errors(project: Project) -> None:
    with pytest.raises(RegistryError, match="has no version '999'"):
        Registry(project).promote("999")


PROMOTE = """
import sys
from driftloop.project import Project
from driftloop.registry import Registry
decisions = Registry(Project.load(sys.argv[1])).promote(sys.argv[2])
print(decisions[-1].kind)
"""


def test_two_racing_promotions_leave_one_champion_and_both_decisions(tmp_path: Path) -> None:
    project = make_synthetic_project(tmp_path / "race", epochs=20)
    first, second = train_version(project), train_version(project, seed=7)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", PROMOTE, str(project.root), v], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for v in (first, second)
    ]
    outcomes = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr.decode()[-2000:]
        outcomes.append(stdout.decode().strip().splitlines()[-1])
    registry = Registry(project)
    assert registry.aliases()[Alias.CHAMPION] in (first, second)
    events = registry.events()
    assert set(events.get_column("version")) == {first, second}
    assert events.filter(events.get_column("kind").is_in(["champion", "rejected"])).height == 2
    assert outcomes.count("champion") >= 1


def test_a_registry_that_cannot_be_read_stops_a_promotion_instead_of_crowning(tmp_path: Path) -> None:
    project = make_synthetic_project(tmp_path / "unreadable", epochs=20)
    registry = Registry(project)
    champion = train_version(project)
    registry.promote(champion)
    challenger = train_version(project, seed=3)
    with aliases_unreadable(project):
        with pytest.raises(RegistryError, match="cannot read the aliases"):
            registry.aliases()
        with pytest.raises(RegistryError, match="cannot read"):
            registry.promote(challenger)
    # Nothing was decided on a failure that looked like "no champion yet".
    assert registry.aliases() == {Alias.CHAMPION: champion}
    assert registry.stage(challenger) == "dev"
    assert registry.events().get_column("version").to_list() == [champion, champion]


def test_a_challenger_judged_ahead_waits_in_qa_for_the_labels_of_the_days_after_its_data(tmp_path: Path) -> None:
    rows = synthetic_rows()  # hourly, 1 to 20 January 2024; from the 16th the labels come late
    late_labels = rows.filter(pl.col("ts") >= datetime(2024, 1, 16))
    rows = rows.with_columns(pl.when(pl.col("ts") < datetime(2024, 1, 16)).then(pl.col("y")).alias("y"))
    train = TrainSettings(hidden=[32, 16], epochs=15, batch_size=64, patience=10, learning_rate=3e-3)
    project = make_project(tmp_path / "ahead", rows, train, batch_id="rows")
    judged = project.settings.promote.model_copy(update={"judge_days": 1, "judge_wait_days": 2})
    project = Project(project.root, project.settings.model_copy(update={"promote": judged}))
    registry = Registry(project)
    first = train_version(project, until=datetime(2024, 1, 10))
    registry.promote(first, at=datetime(2024, 1, 10))

    challenger = train_version(project)  # fitted on every labelled row, up to 15 January 23:00
    [to_qa] = registry.promote(challenger, at=datetime(2024, 1, 16, 6))
    assert to_qa.kind == "promoted to qa" and "once labelled" in to_qa.reason
    assert registry.aliases()[Alias.CHALLENGER] == challenger and registry.stage(challenger) == "qa"
    waiting = registry.awaiting(challenger, at=datetime(2024, 1, 17, 6))  # the day is over, none of it labelled
    assert waiting is not None and (waiting.labelled, waiting.rows) == (0, 24)
    assert registry.promote(challenger, at=datetime(2024, 1, 17, 6)) == []

    ingest(project, late_labels.head(12), labels=True, batch_id="labels-16th-morning")
    assert registry.awaiting(challenger, at=datetime(2024, 1, 17, 7)).labelled == 12  # type: ignore[union-attr]
    assert registry.promote(challenger, at=datetime(2024, 1, 17, 7)) == []
    # Past the wait, it is judged on the labelled rows there are, which neither model was fitted on.
    [decision] = registry.promote(challenger, at=datetime(2024, 1, 19))
    numbers = decision.gates[0].numbers
    assert numbers["window_rows"] == 12
    assert numbers["window_start"] == "2024-01-15T23:00:00" and numbers["window_end"] == "2024-01-16T23:00:00"
    assert numbers["basis"].endswith("which neither was fitted on")
    assert decision.at == datetime(2024, 1, 19, tzinfo=UTC) and registry.awaiting(challenger) is None

    # One whose days ahead never get a label is rejected once the wait is over, never crowned.
    blind = train_version(project, seed=3)  # the same data: its days ahead are the unlabelled afternoon
    assert [d.kind for d in registry.promote(blind, at=datetime(2024, 1, 17, 12))] == ["promoted to qa"]
    champion = registry.champion()
    [refused] = registry.promote(blind, at=datetime(2024, 1, 20, 12))
    assert refused.kind == "rejected" and "cannot be judged" in refused.reason
    assert registry.champion() == champion and Alias.CHALLENGER not in registry.aliases()
