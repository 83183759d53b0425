"""Several policies replayed together: one project for each group of policies that, so far,
have acted alike.

Policies alike in what they train and watch (the ``[loop]`` settings other than the decision
ones: window, ``monitor_days``, ...) start in one project: one first model, and one set of daily
ingests, predictions and monitoring for all of them. Each day the tick asks every policy of a
project on the same facts (:class:`~driftloop.loop.policy.TickFacts`). Where their answers part
(one retrains, another is in its cool-down, or they would judge the challenger differently:
another margin, or on other days), the project is copied for each other answer before anything is trained: a fork. The
copy then runs the day's tick again under its own policies; ticks are idempotent, so it ingests
nothing new, scores the same rows the same way, and trains, or not, as its policies say.

A policy's project is named after the first of its policies; a state file in the ``policies``
folder, written after every tick and before and after every fork, lets a stopped replay go on
where it was (a first model or a fork cut short is made again, and the day that forked it is
run again).

The projects keep their models in local MLflow stores of their own and share one artifact
folder: a store records artifact locations as absolute paths, and a version's files, written
once under a unique run id, serve every copy that holds the version.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta

from driftloop.errors import ReplayError
from driftloop.loop.policy import RetrainDecision, TickFacts
from driftloop.project import Project
from driftloop.replay.feed import History
from driftloop.replay.policies import POLICIES_FOLDER, Policy, policy_settings
from driftloop.replay.run import DayRecord, LoopRun, bootstrap, replay_day, replay_settings, write_state
from driftloop.settings import Settings

STATE_FILE = "replay-state.json"
ARTIFACTS_FOLDER = "artifacts"
# The [loop] settings that only decide whether a tick retrains: policies differing in nothing
# else see every day the same way until their decisions part.
DECISION_SETTINGS = frozenset({"retrain_on", "min_new_labels", "cooldown_days"})


@dataclass
class Branch:
    """One project and the policies replayed in it (the first one's settings are the project's)."""

    folder: str
    policies: list[str]
    first_version: str
    bootstrap_training_seconds: float
    parent: str | None = None  # the project it was copied from
    copying: bool = False  # True from the moment a fork starts until its copy is whole


@dataclass
class PolicyRuns:
    """Where each policy was replayed, and its diary; the policies that could not run, and why."""

    branches: list[Branch]
    runs: dict[str, LoopRun]  # by policy name
    failed: dict[str, str] = field(default_factory=dict)
    ticks: int = 0  # ticks this call ran, forks' included


class PolicyReplay:
    """The policies of one ``--policies`` replay, ticked day by day in as few projects as they allow."""

    def __init__(
        self, project: Project, history: History, before: list[date], replayed: list[date], label_delay: timedelta,
        policies: list[Policy],
    ) -> None:  # fmt: skip
        self.project, self.history = project, history
        self.before, self.replayed, self.label_delay = before, replayed, label_delay
        self.policies = {p.name: p for p in policies}
        self.settings = {name: _branch_settings(project, p) for name, p in self.policies.items()}
        self.folder = project.root / POLICIES_FOLDER
        self.identity = {
            **replay_settings(history, before, replayed, label_delay),
            "policies": [p.model_dump() for p in policies],
        }
        self.branches: list[Branch] = []
        self.records: dict[str, list[DayRecord]] = {name: [] for name in self.policies}
        self.failed: dict[str, str] = {}
        self.ticks = 0

    def run(self, on_day: Callable[[date, int], None] | None = None) -> PolicyRuns:
        """Replay every policy through every day (going on from the state file if there is one)."""
        if not self._resume():
            self._start()
        self._bootstrap()
        for day in self.replayed:
            i = 0
            while i < len(self.branches):  # a fork made during the day joins the list and ticks it too
                branch = self.branches[i]
                if not any(r.day == day for r in self.records[branch.policies[0]]):
                    self._tick(branch, day)
                i += 1
            if on_day is not None:
                on_day(day, len(self.branches))
        runs = {name: self._run_of(b, name) for b in self.branches for name in b.policies}
        return PolicyRuns(self.branches, runs, self.failed, self.ticks)

    def _run_of(self, branch: Branch, name: str) -> LoopRun:
        return LoopRun(
            self.before,
            self.replayed,
            self.label_delay,
            branch.first_version,
            branch.bootstrap_training_seconds,
            self.records[name],
        )

    def project_of(self, branch: Branch) -> Project:
        """The project ``branch`` replays in."""
        return Project.load(self.folder / branch.folder)

    def _start(self) -> None:
        """A fresh replay: the policies folder must not hold one this replay cannot go on with."""
        if self.folder.is_dir() and any(self.folder.iterdir()):
            raise ReplayError(
                f"{self.folder} holds files but no replay of policies this version can go on with; remove it to "
                "replay the policies afresh"
            )
        self._save()

    def _bootstrap(self) -> None:
        """One project per group of policies alike in all but their decisions, each with its
        first model (a group whose bootstrap was cut short starts it afresh)."""
        placed = {n for b in self.branches for n in b.policies} | set(self.failed)
        groups: dict[str, list[str]] = {}
        for name in self.policies:
            groups.setdefault(_shared_key(self.settings[name]), []).append(name)
        for names in (g for g in groups.values() if g[0] not in placed):
            first = self.policies[names[0]]
            root = self.folder / first.folder_name
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            Project(root, self.settings[first.name]).save()
            self.ticks += 1
            try:
                state = bootstrap(Project.load(root), self.history, self.before, self.identity)
            except ReplayError as exc:  # this group cannot run (its first model not crowned): the others can
                self.failed.update(dict.fromkeys(names, str(exc)))
            else:
                self.branches.append(
                    Branch(first.folder_name, names, state["first_version"], state["bootstrap_training_seconds"])
                )
            self._save()

    def _tick(self, branch: Branch, day: date) -> None:
        answers: dict[str, RetrainDecision] = {}

        def policy(facts: TickFacts) -> RetrainDecision:
            answers.update({name: facts.decide(self.settings[name].loop) for name in branch.policies})
            for names in self._parting(branch, answers)[1:]:
                self._fork(branch, names)
            return answers[branch.policies[0]]

        record = replay_day(self.project_of(branch), self.history, day, self.label_delay, policy=policy)
        self.ticks += 1
        for name in branch.policies:
            reason = answers[name].reason if name in answers else record.retrain_reason
            self.records[name].append(replace(record, retrain_reason=reason))
        self._save()

    def _parting(self, branch: Branch, answers: dict[str, RetrainDecision]) -> list[list[str]]:
        """The branch's policies grouped by what they would do next, the project's own first:
        retrain or not, and when retraining, how they judge the challenger."""
        groups: dict[str, list[str]] = {}
        for name in branch.policies:
            retrain = answers[name].retrain
            key = json.dumps([retrain, self.settings[name].promote.model_dump() if retrain else None], default=str)
            groups.setdefault(key, []).append(name)
        return list(groups.values())

    def _fork(self, parent: Branch, names: list[str]) -> None:
        """Copy ``parent``'s project for ``names`` (taking them out of ``parent``), with the first
        one's settings, before the parent's tick trains anything."""
        first = self.policies[names[0]]
        fork = Branch(first.folder_name, names, parent.first_version, parent.bootstrap_training_seconds,
                      parent=parent.folder, copying=True)  # fmt: skip
        parent.policies = [n for n in parent.policies if n not in names]
        self.branches.append(fork)
        self._save()
        target, partial = self.folder / fork.folder, self.folder / f"{fork.folder}.partial"
        for leftover in (target, partial):
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.copytree(self.folder / parent.folder, partial)
        Project(partial, self.settings[first.name]).save()
        partial.rename(target)
        fork.copying = False
        self._save()

    def _resume(self) -> bool:
        """Take up the state file's replay, if there is one (of the same policies and history)."""
        path = self.folder / STATE_FILE
        if not path.is_file():
            return False
        state = json.loads(path.read_text(encoding="utf-8"))
        if state["identity"] != self.identity:
            raise ReplayError(
                f"{self.folder} holds a replay of other policies or of another history; remove it to replay these "
                "policies afresh"
            )
        self.branches = [Branch(**b) for b in state["branches"]]
        self.records = {n: [DayRecord.from_dict(r) for r in rows] for n, rows in state["records"].items()}
        self.failed = state["failed"]
        for cut in [b for b in self.branches if b.copying]:  # undone: its parent has not trained yet
            parent = next(b for b in self.branches if b.folder == cut.parent)
            parent.policies += cut.policies
            self.branches.remove(cut)
            shutil.rmtree(self.folder / cut.folder, ignore_errors=True)
            shutil.rmtree(self.folder / f"{cut.folder}.partial", ignore_errors=True)
        self._save()
        return True

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {
            "identity": self.identity,
            "branches": [asdict(b) for b in self.branches],
            "records": {n: [r.to_dict() for r in rows] for n, rows in self.records.items()},
            "failed": self.failed,
        }
        write_state(self.folder / STATE_FILE, state)


def _branch_settings(project: Project, policy: Policy) -> Settings:
    """A policy's settings as its replay project holds them: the lake, the inbox and a local
    MLflow store in the project's folder (a backtest writes nothing to a team's lake or server),
    artifacts in the shared folder."""
    settings = policy_settings(project, policy)
    local = settings.project.model_copy(
        update={
            "lake": "lake",
            "inbox": "inbox",
            "tracking_uri": "sqlite:///mlflow.db",
            "registry_uri": None,
            "artifacts": f"../{ARTIFACTS_FOLDER}",
        }
    )
    return settings.model_copy(update={"project": local})


def _shared_key(settings: Settings) -> str:
    """What policies must agree on to share a project from the start: all their ``[loop]``
    settings but the decisions (the ``[promote]`` settings judge a challenger, so they part them
    only when they retrain: the first model has no champion to beat)."""
    loop = {k: v for k, v in settings.loop.model_dump().items() if k not in DECISION_SETTINGS}
    return json.dumps(loop, sort_keys=True, default=str)
