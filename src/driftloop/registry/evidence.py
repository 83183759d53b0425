"""The rows a challenger and the champion are judged on at qa -> prod, and their metrics there.

Two ways, as ``[promote] judge_days`` says:

- **held out** (the default): the challenger's own test window, read as it was when it was
  trained. The metrics set against the champion's are those of the fit that left those days out;
  a refit package serves weights fitted on them too, which is judged as the held-out fit.
- **ahead**: the ``judge_days`` days after the challenger's training data ends. Neither model was
  fitted on them, and the challenger is the very package that will serve, refit included. It
  waits until every row of those days is labelled (or ``judge_wait_days`` more have passed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from driftloop.errors import LakeError, RegistryError, TrainingError
from driftloop.model.data import held_out_rows, rows_after, split_clock
from driftloop.project import Project
from driftloop.registry.gates import score
from driftloop.runtime import ModelPackage
from driftloop.settings.promote import PromoteSettings

# What identifies a test window's rows in a package's lineage.
TEST_WINDOW = ("test_start", "window", "features_version", "labels_version")


@dataclass(frozen=True)
class Evidence:
    """Both models' metrics per target on the same rows, and what those rows are."""

    challenger: dict[str, dict[str, float]]
    champion: dict[str, dict[str, float]]
    rows: int
    start: str  # the first instant of the rows' window (ISO)
    basis: str  # for people: which rows, and whether either model was fitted on some of them
    end: str | None = None  # the last instant of the window (ISO), for the days ahead


@dataclass(frozen=True)
class Awaiting:
    """The days ahead a challenger is to be judged on are not all labelled yet."""

    until: datetime  # the end of those days (naive UTC)
    labelled: int
    rows: int

    def describe(self) -> str:
        so_far = f"{self.labelled:,} of {self.rows:,} rows labelled so far" if self.rows else "none of their rows yet"
        return f"waits for the labels of the days up to {self.until:%Y-%m-%d %H:%M} ({so_far})"


def held_out(project: Project, version: str, challenger: ModelPackage, champion: ModelPackage) -> Evidence:
    """The challenger's held-out test metrics and the champion's on the same rows."""
    rows = _test_window(project, version, challenger)
    start = str(challenger.lineage["test_start"])
    mine = challenger.metrics["network"]["test"]
    if all(champion.lineage.get(k) == challenger.lineage.get(k) for k in TEST_WINDOW):
        basis = "the same test window, held out of both fits"
        return Evidence(mine, champion.metrics["network"]["test"], rows.height, start, basis)
    theirs, basis = _champion_on(champion, rows, "the challenger's test window")
    return Evidence(mine, theirs, rows.height, start, basis)


def ahead(
    project: Project, challenger: ModelPackage, champion: ModelPackage, at: datetime
) -> Evidence | Awaiting | None:
    """Both models scored on the ``judge_days`` days after the challenger's training data, once
    they are labelled at ``at`` (naive UTC); :class:`Awaiting` before; None when the wait is over
    and not one of their rows was labelled."""
    days = judge_days(project.settings.promote)
    since = datetime.fromisoformat(str(challenger.lineage["data_until"]))
    until = since + timedelta(days=days)
    rows, total = rows_after(project.lake, project.feature_set(), since, days)
    waiting = still_waiting(project.settings.promote, since, rows.height, total, at)
    if waiting is not None:
        return waiting
    if rows.is_empty():
        return None
    where = f"the {days:g} days after its training data, {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M}"
    theirs, basis = _champion_on(champion, rows, where)
    return Evidence(score(challenger, rows), theirs, rows.height, since.isoformat(), basis, until.isoformat())


def judge_days(settings: PromoteSettings) -> float:
    """The days ahead a challenger is judged on; a RegistryError when they are not set."""
    if settings.judge_days is None:
        raise RegistryError("[promote] judge_days is not set: a challenger is judged on its held-out window")
    return settings.judge_days


def still_waiting(
    settings: PromoteSettings, since: datetime, labelled: int, total: int, at: datetime
) -> Awaiting | None:
    """What a challenger whose data ends at ``since`` waits for at ``at`` (naive UTC), with
    ``labelled`` of the ``total`` rows of its days ahead labelled so far; None: judge it now. It
    waits for the days to pass, then for every row's label, or for ``judge_wait_days`` more."""
    until = since + timedelta(days=judge_days(settings))
    complete = total > 0 and labelled >= total
    if at < until or (not complete and at < until + timedelta(days=settings.judge_wait_days)):
        return Awaiting(until, labelled, total)
    return None


def _champion_on(champion: ModelPackage, rows: pl.DataFrame, where: str) -> tuple[dict[str, dict[str, float]], str]:
    """The champion's metrics on ``rows`` and the basis: if its weights were fitted on some of
    them, the comparison favours it, and the basis says by how many rows."""
    metrics = score(champion, rows)
    fitted_until = champion.lineage.get("fitted_until") or champion.lineage["data_until"]
    clock = champion.contract.clock
    seen = rows.filter(split_clock(clock.column) <= datetime.fromisoformat(fitted_until)).height if clock else 0
    if seen:
        return metrics, f"the champion was fitted on {seen} of the {rows.height} rows, which favours it"
    return metrics, f"{where}, which neither was fitted on"


def _test_window(project: Project, version: str, package: ModelPackage) -> pl.DataFrame:
    """The challenger's test window, read as it was when it was trained (the lake's versions it
    names), so the champion is scored on the very rows the challenger's metrics are of."""
    try:
        rows = held_out_rows(project.lake, project.feature_set(), package.lineage)
    except (LakeError, TrainingError) as exc:
        raise RegistryError(
            f"the test window of version {version} cannot be read as it was trained ({exc}); "
            "retrain it with `driftloop train` to judge it against the champion"
        ) from exc
    expected = package.lineage["rows"]["test"]
    if rows.height != expected:
        raise RegistryError(
            f"the test window of version {version} reads {rows.height} rows, not the {expected} it was "
            "tested on; the lake's history was changed. Retrain it to judge it against the champion"
        )
    return rows
