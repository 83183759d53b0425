"""The models a server answers with: the champion (and in shadow mode the challenger), followed
as their aliases move.

A new version is loaded and warmed up beside the old one, then put in place by one reference
assignment, so a batch that started on the old model finishes on it and no request waits for
a load. Bad input is refused here with field-level errors that name the row, column and rule.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import polars as pl

from driftloop.data.validate import CheckResult
from driftloop.errors import DriftloopError, RequestRefused
from driftloop.project import Project
from driftloop.registry import Alias, Registry
from driftloop.runtime.package import ModelPackage

logger = logging.getLogger("driftloop.serve")
# Field-level errors listed in one 422 answer; a request with more says how many there were.
ERRORS_SHOWN = 50


@dataclass(frozen=True)
class LoadedModel:
    """One registered version, ready to score."""

    name: str
    version: str
    run_id: str
    package: ModelPackage

    def check(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The rows typed to the contract; RequestRefused (422) naming every broken rule otherwise."""
        result = self.package.check(frame)
        if result.ok and not result.rejected.height:
            return result.valid
        errors = field_errors(result)
        shown = "; ".join(_describe(e) for e in errors[:5])
        raise RequestRefused(f"the input breaks the data contract: {shown}", errors[:ERRORS_SHOWN])

    def predict(self, typed: pl.DataFrame) -> pl.DataFrame:
        return self.package.predict_valid(typed)


def field_errors(result: CheckResult) -> list[dict[str, Any]]:
    """One error per broken rule: batch-level ones by column, row-level ones by row and column."""
    errors: list[dict[str, Any]] = []
    for problem in result.problems:
        where = ["body", problem.column] if problem.column else ["body"]
        errors.append({"loc": where, "column": problem.column, "rule": problem.rule, "msg": problem.detail,
                       "examples": list(problem.examples)})  # fmt: skip
    for row in result.rejected.head(ERRORS_SHOWN).iter_rows(named=True):
        for rule in row["_rules"]:
            column, _, name = rule.partition(":")
            errors.append({"loc": ["body", row["_row"] - 1, column], "row": row["_row"] - 1, "column": column,
                           "rule": name, "value": row.get(column)})  # fmt: skip
    return errors


def _describe(error: dict[str, Any]) -> str:
    where = f"row {error['row']} " if "row" in error else ""
    return f"{where}{error.get('column') or 'request'}: {error['rule']}" + (
        f" (got {error['value']!r})" if error.get("value") is not None else ""
    )


class ModelHolder:
    """The champion (and challenger, in shadow mode) of a project, reloaded when its alias moves."""

    def __init__(self, project: Project, *, shadow: bool = False) -> None:
        self.project = project
        self.shadow_enabled = shadow
        self.champion: LoadedModel | None = None
        self.challenger: LoadedModel | None = None
        self.swaps = 0
        self._lock = threading.Lock()  # one refresh at a time (poller and /admin/reload)

    def refresh(self) -> bool:
        """Load the versions the aliases name now, if they changed; True when the champion changed."""
        with self._lock:
            registry = Registry(self.project)
            aliases = registry.aliases()
            changed = False
            wanted = aliases.get(Alias.CHAMPION)
            if wanted is not None and (self.champion is None or self.champion.version != wanted):
                self.champion = _load(registry, wanted)  # the swap: one reference assignment
                self.swaps += 1
                changed = True
                logger.warning("serving version %s of %s", wanted, registry.name)
            if self.shadow_enabled:
                shadow = aliases.get(Alias.CHALLENGER)
                if shadow is None:
                    self.challenger = None
                elif self.challenger is None or self.challenger.version != shadow:
                    self.challenger = _load(registry, shadow)
            return changed

    def try_refresh(self) -> None:
        """:meth:`refresh`, logging (not raising) a failure: the server goes on with the model it has."""
        try:
            self.refresh()
        except DriftloopError as exc:
            logger.error("could not load the new champion, still serving the old one: %s", exc)


def _load(registry: Registry, version: str) -> LoadedModel:
    package = registry.load(version)
    run_id = registry.version(version).run_id
    return LoadedModel(registry.name, version, run_id, package)
