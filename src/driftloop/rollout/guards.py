"""The guards of a rollout: what one server saw of its arms (the champion's and each
candidate's, by version) since the step began, and whether a candidate's arm breaks
``[rollout]``'s limits.

- errors: the share of the candidate's requests that failed on the server's side;
- latency: its p99, against twice the champion's (or the champion's and 10 ms, whichever is
  more), and against an absolute limit while the champion keeps that limit;
- outputs: how far its outputs are from the champion's for the same rows (every arm scores every
  row of a batch, and answers its own): for a number, the mean absolute difference over the
  champion's training spread of the target; for a label, the share of rows it predicts otherwise;
- the decisive metric, as labels arrive: the arms' per-row losses
  (:mod:`driftloop.rollout.evidence`) by an always-valid sequential test
  (:mod:`driftloop.rollout.sequential`), every ``metric_seconds``.

A guard judges only once the candidate answered ``guard_requests``: a slow first request is
not a trend. Latency waits for :data:`LATENCY_REQUESTS` too: a p99 of fewer requests is their
slowest one, and one scheduler hiccup on a busy machine is no verdict on a model.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from driftloop.rollout.sequential import Pairs
from driftloop.rollout.state import Rollout
from driftloop.runtime.targets import Targets
from driftloop.settings.rollout import RolloutSettings

# Latencies kept per arm for the p99: the newest this many.
KEPT_LATENCIES = 5_000
# Requests an arm answers before its p99 is judged (the candidate's) or is the reference (the
# champion's): with fewer, the p99 is the slowest request.
LATENCY_REQUESTS = 100
# Milliseconds a candidate's p99 may exceed the champion's whatever the ratio: at a few ms, twice
# is one scheduler tick.
LATENCY_SLACK_MS = 10.0


@dataclass
class ArmStats:
    """One arm's requests since the step began."""

    requests: int = 0
    failures: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=KEPT_LATENCIES))

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(np.asarray(self.latencies), 99) * 1000) if self.latencies else 0.0


@dataclass
class OutputGaps:
    """How far one candidate's outputs were from the champion's: the rows compared, and per target
    the summed gap (``labels`` are the targets that are labels)."""

    rows: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    labels: set[str] = field(default_factory=set)

    def add(self, rows: int, gaps: dict[str, float], labels: Collection[str]) -> None:
        self.rows += rows
        for target, gap in gaps.items():
            self.sums[target] = self.sums.get(target, 0.0) + gap * rows
        self.labels.update(labels)

    def means(self) -> dict[str, float]:
        """Each target's mean gap over the rows compared."""
        return {target: total / self.rows for target, total in self.sums.items()} if self.rows else {}


class GuardWatch:
    """What a server saw of a rollout's arms (by version); fed by the batcher, read by the guard loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.arms: defaultdict[str, ArmStats] = defaultdict(ArmStats)
        self.gaps: defaultdict[str, OutputGaps] = defaultdict(OutputGaps)
        self.metric: Pairs = {}  # the arms' decisive metric, pair by pair, at its last look
        self.metric_looked = -math.inf  # when (time.monotonic) it was looked at

    def answered(self, version: str, seconds: float, *, failed: bool = False) -> None:
        with self._lock:
            stats = self.arms[version]
            stats.requests += 1
            stats.failures += failed
            stats.latencies.append(seconds)

    def requests(self, version: str) -> int:
        """The requests ``version``'s arm answered since the step began."""
        with self._lock:
            stats = self.arms.get(version)
            return 0 if stats is None else stats.requests

    def compared(self, version: str, rows: int, gaps: dict[str, float], labels: Collection[str] = ()) -> None:
        """``rows`` of candidate ``version``'s, whose outputs were ``gaps`` (per target, ``labels``
        among them) from the champion's on average."""
        with self._lock:
            self.gaps[version].add(rows, gaps, labels)

    @property
    def compared_rows(self) -> int:
        return sum(gaps.rows for gaps in self.gaps.values())

    def reset(self, keep: str | None = None) -> None:
        """Forget what was seen: a new step (or a new rollout) is judged on its own traffic. The
        arm of version ``keep`` stays (the champion's, at a new step: its latency is still the
        reference when the step leaves it little traffic, or none at 100%). The metric's look
        stays: it reads every labelled row since the rollout began."""
        with self._lock:
            kept = self.arms.get(keep) if keep is not None else None
            self.arms.clear()
            self.gaps.clear()
            if keep is not None and kept is not None:
                self.arms[keep] = kept

    def metric_due(self, every_seconds: float) -> bool:
        """Whether the decisive metric is due another look."""
        return time.monotonic() - self.metric_looked >= every_seconds

    def looked(self, pairs: Pairs) -> None:
        with self._lock:
            self.metric, self.metric_looked = pairs, time.monotonic()

    def breaches(self, settings: RolloutSettings, rollout: Rollout, *, service_only: bool = False) -> list[str]:
        """What each candidate's arm of ``rollout`` breaks, in words (empty: nothing, or too few
        requests yet); ``service_only`` judges errors and latency alone (an A/B test's versions
        may answer otherwise, and which is better is its verdict, not a breach)."""
        found = []
        with self._lock:
            champion = self.arms[rollout.champion]
            for version in rollout.candidates:
                named = f"version {version}: " if len(rollout.candidates) > 1 else ""
                found += [named + breach for breach in self._breaches(settings, rollout, version, champion,
                                                                       service_only)]  # fmt: skip
        return found

    def _breaches(
        self, settings: RolloutSettings, rollout: Rollout, version: str, champion: ArmStats, service_only: bool
    ) -> list[str]:
        candidate = self.arms[version]
        if candidate.requests < settings.guard_requests:
            return []
        found = []
        if candidate.error_rate > settings.max_error_rate:
            found.append(f"error rate {candidate.error_rate:.1%} of {candidate.requests} requests, above "
                         f"{settings.max_error_rate:.1%}")  # fmt: skip
        limit = settings.max_p99_ms
        if len(champion.latencies) >= LATENCY_REQUESTS:
            # Twice the champion's, with room for a tick's noise; the absolute limit only while the
            # champion keeps it: on a server too loaded for anyone to, the candidate is not at fault.
            relative = max(2 * champion.p99_ms, champion.p99_ms + LATENCY_SLACK_MS)
            limit = min(limit, relative) if champion.p99_ms <= settings.max_p99_ms else relative
        if len(candidate.latencies) >= LATENCY_REQUESTS and candidate.p99_ms > limit:
            found.append(f"p99 latency {candidate.p99_ms:.1f} ms, above {limit:.1f} ms (champion "
                         f"{champion.p99_ms:.1f} ms)")  # fmt: skip
        if service_only:
            return found
        gaps = self.gaps.get(version, OutputGaps())
        for target, gap in gaps.means().items():
            if target in gaps.labels and gap > settings.max_label_gap:
                found.append(f"{target} predicted otherwise than by the champion on {gap:.0%} of the same "
                             f"{gaps.rows} rows, above {settings.max_label_gap:.0%}")  # fmt: skip
            elif target not in gaps.labels and gap > settings.max_output_gap:
                found.append(f"{target} {gap:.2f} from the champion's on the same {gaps.rows} rows, above "
                             f"{settings.max_output_gap}")  # fmt: skip
        metric = self.metric.get((rollout.champion, version))
        enough = metric is not None and min(metric.n_first, metric.n_second) >= settings.metric_rows
        if metric is not None and enough and metric.decided(settings.metric_alpha) and metric.difference > 0:
            found.append(f"its decisive metric is worse than the champion's with {1 - settings.metric_alpha:.0%} "
                         f"confidence: mean loss {metric.mean_second:.3g} against {metric.mean_first:.3g} on "
                         f"{metric.n_second} and {metric.n_first} labelled rows (always-valid p = "
                         f"{metric.p_value:.2g})")  # fmt: skip
        return found

    def summary(self, rollout: Rollout) -> dict[str, float]:
        """The numbers the guards judge, for the rollout's record: each arm's (the champion's, the
        candidate's, or with several candidates each by version) and each pair's metric."""
        numbers: dict[str, float] = {}
        with self._lock:
            for version in rollout.versions:
                arm, stats = _label(rollout, version), self.arms[version]
                numbers |= {f"{arm}_requests": stats.requests, f"{arm}_p99_ms": stats.p99_ms}
                if version != rollout.champion:
                    gaps = self.gaps.get(version, OutputGaps())
                    numbers |= {f"{arm}_error_rate": stats.error_rate, f"{arm}_compared_rows": gaps.rows}
                    numbers |= {f"{arm}_output_gap_{target}": gap for target, gap in gaps.means().items()}
            for (first, second), result in self.metric.items():
                pair = "" if len(self.metric) == 1 else f"_{_label(rollout, first)}_{_label(rollout, second)}"
                numbers |= {
                    f"metric_rows_{_label(rollout, first)}": result.n_first,
                    f"metric_rows_{_label(rollout, second)}": result.n_second,
                    f"metric_loss_{_label(rollout, first)}": result.mean_first,
                    f"metric_loss_{_label(rollout, second)}": result.mean_second,
                    f"metric_p_value{pair}": result.p_value,
                }
        return numbers


def _label(rollout: Rollout, version: str) -> str:
    """An arm's name in the record: champion, candidate, or (several candidates) the version's."""
    if version == rollout.champion:
        return "champion"
    return "candidate" if len(rollout.candidates) == 1 else f"version_{version}"


def output_gaps(champion: pl.DataFrame, candidate: pl.DataFrame, heads: Targets) -> dict[str, float]:
    """How far the candidate's outputs are from the champion's on the same rows, per target: the
    mean absolute difference over the target's training spread, or for a label the share of rows
    it predicts another class."""
    gaps = {}
    for target in heads.names:
        if target in heads.classes:
            other = champion[target].cast(pl.String).to_numpy() != candidate[target].cast(pl.String).to_numpy()
            gaps[target] = float(np.mean(other)) if other.size else 0.0
        else:
            difference = np.abs(
                candidate[target].cast(pl.Float64).to_numpy() - champion[target].cast(pl.Float64).to_numpy()
            )
            gaps[target] = float(np.nanmean(difference)) / heads.std.get(target, 1.0) if difference.size else 0.0
    return gaps


__all__ = ["ArmStats", "GuardWatch", "OutputGaps", "output_gaps"]
