"""Data-parallel training: :func:`~driftloop.model.train.fit` and :func:`~.train.refit` on
several processes at once, started by the project's engine (Spark's TorchDistributor, which
runs them on the driver in local mode and on the executors of a cluster).

Each process is given the split's rows and trains on its part of every epoch's (a
:class:`~driftloop.model.train.Shard`), its gradients averaged with the others' after every
step (PyTorch's DistributedDataParallel over gloo, on CPUs). The global batch stays
``[train] batch_size``. Every process scores the whole validation split, so all of them choose
the same epoch to stop at; rank 0's weights and history come back, and the callbacks (a
progress bar, MLflow) hear of the epochs once training is over.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from driftloop.engine import Engine
from driftloop.model.network import TabularNet
from driftloop.model.train import Callback, EpochLog, FitResult, Shard, Tensors, fit, refit
from driftloop.runtime.spec import NetworkSpec
from driftloop.settings.train import TrainSettings


@dataclass(frozen=True)
class RankResult:
    """What rank 0 sends back: its weights and how training went (a module does not travel)."""

    state: dict[str, torch.Tensor]
    history: list[EpochLog]
    best_epoch: int
    seconds: float
    samples_seen: int
    stopped_early: bool

    @classmethod
    def of(cls, result: FitResult) -> RankResult:
        state = {k: v.detach().clone() for k, v in result.model.state_dict().items()}
        return cls(state, result.history, result.best_epoch, result.seconds, result.samples_seen, result.stopped_early)

    def fit_result(self, spec: NetworkSpec) -> FitResult:
        model = TabularNet(spec)
        model.load_state_dict(self.state)
        model.eval()
        return FitResult(model, self.history, self.best_epoch, self.seconds, self.samples_seen, self.stopped_early)


def fit_on(
    engine: Engine,
    processes: int,
    train: Tensors,
    validation: Tensors,
    spec: NetworkSpec,
    settings: TrainSettings,
    targets: Sequence[str],
    callbacks: Sequence[Callback] = (),
    **options: Any,
) -> FitResult:
    """:func:`~driftloop.model.train.fit` on ``processes`` processes started by ``engine`` (in
    this process when one)."""
    if processes == 1:
        return fit(train, validation, spec, settings, targets, callbacks, **options)
    work = partial(fit, train, validation, spec, settings, targets, (), **options)
    result = _on_ranks(engine, processes, work, settings).fit_result(spec)
    for log in result.history:
        for callback in callbacks:
            callback.on_epoch_end(log)
    return result


def refit_on(
    engine: Engine,
    processes: int,
    rows: Tensors,
    spec: NetworkSpec,
    settings: TrainSettings,
    targets: Sequence[str],
    history: Sequence[EpochLog],
    **options: Any,
) -> FitResult:
    """:func:`~driftloop.model.train.refit` on ``processes`` processes started by ``engine``."""
    if processes == 1:
        return refit(rows, spec, settings, targets, history, **options)
    work = partial(refit, rows, spec, settings, targets, list(history), **options)
    return _on_ranks(engine, processes, work, settings).fit_result(spec)


def _on_ranks(engine: Engine, processes: int, work: Callable[..., FitResult], settings: TrainSettings) -> RankResult:
    result = engine.distribute(partial(_rank, work=work, threads=settings.threads), processes)
    if not isinstance(result, RankResult):  # rank 0 always answers; anything else is a broken launch
        raise TypeError(f"data-parallel training returned {type(result).__name__}, not rank 0's result")
    return result


def _rank(work: Callable[..., FitResult], threads: int | None) -> RankResult:
    """One process: join the others (the launcher set RANK, WORLD_SIZE and where to meet), train
    its shard, and return rank 0's result.

    Every process returns rank 0's result, not only rank 0: TorchDistributor has each process
    of a node write what it returns to one file, and the last to finish wins; a None from
    another rank would replace rank 0's weights.
    """
    import torch.distributed as dist

    dist.init_process_group("gloo")
    try:
        shard = Shard(dist.get_rank(), dist.get_world_size())
        # The machine's cores shared out: processes that each take every core would fight over them.
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // shard.world))
        result = work(shard=shard)
        sent: list[RankResult | None] = [RankResult.of(result) if shard.rank == 0 else None]
        dist.broadcast_object_list(sent, src=0)
        assert sent[0] is not None
        return sent[0]
    finally:
        dist.destroy_process_group()


__all__ = ["RankResult", "fit_on", "refit_on"]
