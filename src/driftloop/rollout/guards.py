"""The guards of a canary: what one server saw of both arms since the step began, and whether
the candidate's arm breaks ``[rollout]``'s limits.

- errors: the share of the candidate's requests that failed on the server's side;
- latency: its p99, against an absolute limit and against twice the champion's (or the
  champion's and 10 ms, whichever is more);
- outputs: how far its answers are from what the champion answers for the same rows (it scores
  the candidate's rows too): for a number, the mean absolute difference over the champion's
  training spread of the target; for a label, the share of rows it predicts otherwise;
- the decisive metric, as labels arrive: the arms' per-row losses
  (:mod:`driftloop.rollout.evidence`) by an always-valid sequential test
  (:mod:`driftloop.rollout.sequential`), every ``metric_seconds``.

A guard judges only once the candidate answered ``guard_requests``: a slow first request is
not a trend.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from driftloop.rollout.sequential import SequentialResult
from driftloop.runtime.targets import Targets
from driftloop.settings.rollout import RolloutSettings

# Latencies kept per arm for the p99: the newest this many.
KEPT_LATENCIES = 5_000
CHAMPION, CANDIDATE = "champion", "candidate"
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


class GuardWatch:
    """What a server saw of a canary's two arms; fed by the batcher, read by the guard loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.arms = {CHAMPION: ArmStats(), CANDIDATE: ArmStats()}
        self.compared_rows = 0
        self.gap_total = 0.0  # sum over compared rows of each row's gap
        self.metric: SequentialResult | None = None  # the arms' decisive metric, at its last look
        self.metric_looked = -math.inf  # when (time.monotonic) it was looked at

    def answered(self, arm: str, seconds: float, *, failed: bool = False) -> None:
        with self._lock:
            stats = self.arms[arm]
            stats.requests += 1
            stats.failures += failed
            stats.latencies.append(seconds)

    def compared(self, rows: int, gap: float) -> None:
        """``rows`` of the candidate's, whose outputs were ``gap`` from the champion's on average."""
        with self._lock:
            self.compared_rows += rows
            self.gap_total += gap * rows

    @property
    def output_gap(self) -> float:
        return self.gap_total / self.compared_rows if self.compared_rows else 0.0

    def reset(self) -> None:
        """Forget what was seen: a new step (or a new rollout) is judged on its own traffic. The
        metric's look stays: it reads every labelled row since the rollout began."""
        with self._lock:
            self.arms = {CHAMPION: ArmStats(), CANDIDATE: ArmStats()}
            self.compared_rows, self.gap_total = 0, 0.0

    def metric_due(self, every_seconds: float) -> bool:
        """Whether the decisive metric is due another look."""
        return time.monotonic() - self.metric_looked >= every_seconds

    def looked(self, result: SequentialResult) -> None:
        with self._lock:
            self.metric, self.metric_looked = result, time.monotonic()

    def breaches(self, settings: RolloutSettings, *, service_only: bool = False) -> list[str]:
        """What the candidate's arm breaks, in words (empty: nothing, or too few requests yet);
        ``service_only`` judges errors and latency alone (an A/B test's versions may answer
        otherwise, and which is better is its verdict, not a breach)."""
        with self._lock:
            candidate, champion = self.arms[CANDIDATE], self.arms[CHAMPION]
            if candidate.requests < settings.guard_requests:
                return []
            found = []
            if candidate.error_rate > settings.max_error_rate:
                found.append(f"error rate {candidate.error_rate:.1%} of {candidate.requests} requests, above "
                             f"{settings.max_error_rate:.1%}")  # fmt: skip
            limit = settings.max_p99_ms
            if champion.requests >= settings.guard_requests:  # twice the champion's, with room for a tick's noise
                limit = min(limit, max(2 * champion.p99_ms, champion.p99_ms + LATENCY_SLACK_MS))
            if candidate.p99_ms > limit:
                found.append(f"p99 latency {candidate.p99_ms:.1f} ms, above {limit:.1f} ms (champion "
                             f"{champion.p99_ms:.1f} ms)")  # fmt: skip
            if service_only:
                return found
            if self.compared_rows and self.output_gap > settings.max_output_gap:
                found.append(f"outputs {self.output_gap:.2f} from the champion's on the same {self.compared_rows} "
                             f"rows, above {settings.max_output_gap}")  # fmt: skip
            metric = self.metric
            enough = metric is not None and min(metric.n_first, metric.n_second) >= settings.metric_rows
            if metric is not None and enough and metric.decided(settings.metric_alpha) and metric.difference > 0:
                found.append(f"its decisive metric is worse than the champion's with {1 - settings.metric_alpha:.0%} "
                             f"confidence: mean loss {metric.mean_second:.3g} against {metric.mean_first:.3g} on "
                             f"{metric.n_second} and {metric.n_first} labelled rows (always-valid p = "
                             f"{metric.p_value:.2g})")  # fmt: skip
            return found

    def summary(self) -> dict[str, float]:
        """The numbers the guards judge, for the rollout's record."""
        with self._lock:
            candidate, champion = self.arms[CANDIDATE], self.arms[CHAMPION]
            return {
                "candidate_requests": candidate.requests, "candidate_error_rate": candidate.error_rate,
                "candidate_p99_ms": candidate.p99_ms, "champion_requests": champion.requests,
                "champion_p99_ms": champion.p99_ms, "output_gap": self.output_gap, "compared_rows": self.compared_rows,
                **({} if self.metric is None else {
                    "metric_rows_champion": self.metric.n_first, "metric_rows_candidate": self.metric.n_second,
                    "metric_loss_champion": self.metric.mean_first, "metric_loss_candidate": self.metric.mean_second,
                    "metric_p_value": self.metric.p_value,
                }),
            }  # fmt: skip


def output_gap(champion: pl.DataFrame, candidate: pl.DataFrame, heads: Targets) -> float:
    """How far the candidate's outputs are from the champion's on the same rows: per target, the
    mean absolute difference over the target's training spread (a label: the share of rows it
    predicts another class), the largest over the targets."""
    gaps = []
    for target in heads.names:
        if target in heads.classes:
            other = champion[target].cast(pl.String).to_numpy() != candidate[target].cast(pl.String).to_numpy()
            gaps.append(float(np.mean(other)) if other.size else 0.0)
        else:
            difference = np.abs(
                candidate[target].cast(pl.Float64).to_numpy() - champion[target].cast(pl.Float64).to_numpy()
            )
            gaps.append(float(np.nanmean(difference)) / heads.std.get(target, 1.0) if difference.size else 0.0)
    return max(gaps, default=0.0)


__all__ = ["CANDIDATE", "CHAMPION", "ArmStats", "GuardWatch", "output_gap"]
