"""The deployments a server holds, following a real registry as its aliases move."""

from __future__ import annotations

from pathlib import Path

from driftloop.model.trainer import train_project
from driftloop.registry import Alias, Registry
from driftloop.registry.mlflow.tracking import MlflowTracker
from driftloop.serve.deployments import Deployments, Role, kinds
from driftloop.settings import ServeSettings
from tests.test_predict import champion_project


def test_deployments_follow_the_aliases_and_an_answering_one_never_goes_dark(tmp_path: Path) -> None:
    project = champion_project(tmp_path / "d")
    registry = Registry(project)
    champion = registry.champion()
    assert champion is not None
    with MlflowTracker(project) as tracker:
        challenger = tracker.record(train_project(project, callbacks=[tracker]))
    registry.store.set_alias(Alias.CHALLENGER, challenger)

    alone = Deployments(project, kinds(ServeSettings()))
    assert alone.refresh() and alone.live.shadows == ()  # shadow mode is off: the challenger is not loaded
    deployments = Deployments(project, kinds(ServeSettings(shadow=True)))
    assert deployments.refresh() and deployments.swaps == 1
    answering, [shadow] = deployments.live.answering, deployments.live.shadows
    assert answering is not None and answering.role is Role.ANSWERS and answering.model.version == champion
    assert shadow.model.version == challenger and shadow.source == "shadow"
    for deployment in (answering, shadow):  # warmed beside the old set: no first request builds a session
        assert "network" in vars(deployment.model.package)
    before = deployments.live
    assert not deployments.refresh() and deployments.live == before  # nothing moved: nothing reloaded

    registry.store.delete_alias(Alias.CHALLENGER)
    registry.store.delete_alias(Alias.CHAMPION)
    assert not deployments.refresh()
    assert deployments.live.shadows == ()  # the shadow went with its alias
    kept = deployments.live.answering
    assert kept is not None and kept.model.version == champion  # the answer stays: no alias is no reason to stop
