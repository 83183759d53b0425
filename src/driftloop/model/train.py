"""The training loop: mini-batches sliced from in-memory tensors, a loss per target, AdamW,
a learning-rate schedule and early stopping on the validation loss.

Observers (MLflow tracking, a progress bar) attach as :class:`Callback` objects, so the loop
itself logs nothing. The same seed gives the same model. The loop also runs data-parallel
(:mod:`driftloop.model.distributed`): each process of a :class:`Shard` trains on its part of
every epoch's rows with its gradients averaged, and scores the whole validation split itself,
so every process reaches the same decisions.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from driftloop.errors import TrainingError
from driftloop.model.network import TabularNet
from driftloop.runtime.spec import NetworkSpec
from driftloop.settings.train import CLASSIFICATION_LOSS, TrainSettings

LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "mse": functional.mse_loss,
    "huber": functional.huber_loss,
    "mae": functional.l1_loss,
}


@dataclass(frozen=True)
class Tensors:
    """One split, ready for the network: numbers, category indices and scaled targets (NaN = missing)."""

    numbers: torch.Tensor
    categories: torch.Tensor
    targets: torch.Tensor

    @classmethod
    def of(cls, numbers: np.ndarray, categories: np.ndarray, targets: np.ndarray) -> Tensors:
        return cls(torch.from_numpy(numbers), torch.from_numpy(categories), torch.from_numpy(targets))

    def __len__(self) -> int:
        return int(self.numbers.shape[0])


@dataclass(frozen=True)
class EpochLog:
    """What one epoch did."""

    epoch: int
    train_loss: float
    validation_loss: float
    validation_by_target: dict[str, float]
    learning_rate: float
    seconds: float


Net = TypeVar("Net", bound=nn.Module)


@dataclass
class Fit(Generic[Net]):
    """The best network (by validation loss) and how training went: of a table's network
    (:data:`FitResult`) or an image's (:data:`driftloop.model.train_images.ImageFit`)."""

    model: Net
    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    samples_seen: int = 0
    stopped_early: bool = False

    def log(self, epoch: EpochLog, callbacks: Sequence[Callback]) -> None:
        """Keep an epoch's log and tell the observers."""
        self.history.append(epoch)
        for callback in callbacks:
            callback.on_epoch_end(epoch)

    def end(self, stopping: EarlyStopping, started: float) -> Fit[Net]:
        """Training is over: the best epoch's weights back in the model, and the time it took."""
        stopping.restore()
        self.best_epoch = stopping.best_epoch
        self.seconds = time.perf_counter() - started
        return self


FitResult = Fit[TabularNet]
# Below this, a validation loss is no better than the best so far.
MIN_IMPROVEMENT = 1e-6


class EarlyStopping:
    """The weights of the epoch with the best validation loss so far, and whether patience has
    run out; ``best`` is where training begins (the untrained model's loss, when it competes)."""

    def __init__(self, model: nn.Module, patience: int, best: float = float("inf")) -> None:
        self.model, self.patience, self.best = model, patience, best
        self.state = copy.deepcopy(model.state_dict())
        self.best_epoch, self.waited = 0, 0

    def out_of_patience(self, loss: float, epoch: int) -> bool:
        """Keep the weights if ``loss`` is the best yet; True once ``patience`` epochs in a row were not."""
        if loss < self.best - MIN_IMPROVEMENT:
            self.best, self.state, self.best_epoch, self.waited = loss, copy.deepcopy(self.model.state_dict()), epoch, 0
            return False
        self.waited += 1
        return self.waited >= self.patience

    def restore(self) -> None:
        """Put the best weights back, in evaluation mode."""
        self.model.load_state_dict(self.state)
        self.model.eval()


@dataclass(frozen=True)
class Shard:
    """This process's part of data-parallel training: its ``rank`` among ``world`` processes (one
    process trains on every row)."""

    rank: int = 0
    world: int = 1

    def rows(self, order: torch.Tensor) -> torch.Tensor:
        """This process's rows of an epoch's shuffled ``order`` (the same on every process): every
        ``world``-th, as many on each, so every process takes as many steps."""
        if self.world == 1:
            return order
        return order[self.rank :: self.world][: len(order) // self.world]

    def batch_size(self, size: int) -> int:
        """Rows a process takes per step: the global ``size`` split between the processes."""
        return size if self.world == 1 else max(2, -(-size // self.world))

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the processes (one process: itself)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        total = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(total)
        return float(total.item()) / self.world


ONE_PROCESS = Shard()


class Callback(Protocol):
    """Something that watches training; every method is optional to act on."""

    def on_epoch_end(self, log: EpochLog) -> None: ...


def fit(
    train: Tensors,
    validation: Tensors,
    spec: NetworkSpec,
    settings: TrainSettings,
    targets: Sequence[str],
    callbacks: Sequence[Callback] = (),
    classes: dict[str, list[str]] | None = None,
    linear_start: tuple[np.ndarray, list[np.ndarray], np.ndarray] | None = None,
    shard: Shard = ONE_PROCESS,
) -> FitResult:
    """Train a :class:`TabularNet` on ``train``, stopping when ``validation`` stops improving.

    ``classes`` names the labels of each classification target (its head has one output per
    class); every other target is a number. ``linear_start`` is a fitted linear model for the
    network's linear path to begin from (:meth:`TabularNet.start_from_linear`). The model before
    the first epoch competes too (as epoch 0): training never returns one worse on validation
    than where it began."""
    if len(train) < 2 or len(validation) < 1:
        raise TrainingError(
            f"too few rows to train: {len(train)} training and {len(validation)} validation rows; "
            "ingest more data or change validation_fraction/test_fraction"
        )
    model, optimizer, heads, weights, generator = _begin(spec, settings, targets, train, classes, linear_start)
    scheduler = _scheduler(optimizer, settings)
    result = FitResult(model)
    trained = _parallel(model, shard)
    stopping = EarlyStopping(model, settings.patience, best=_weighted(weights, evaluate_loss(model, validation, heads)))
    started = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        tick = time.perf_counter()
        loss = _epoch(trained, optimizer, train, heads, weights, settings, generator, result, shard)
        by_target = evaluate_loss(model, validation, heads)  # the whole split on every process: one decision
        score = _weighted(weights, by_target)
        _step(scheduler, score)
        log = EpochLog(
            epoch,
            loss,
            score,
            dict(zip(targets, by_target, strict=True)),
            float(optimizer.param_groups[0]["lr"]),
            time.perf_counter() - tick,
        )
        result.log(log, callbacks)
        if stopping.out_of_patience(score, epoch):
            result.stopped_early = True
            break
    return result.end(stopping, started)


def refit(
    rows: Tensors,
    spec: NetworkSpec,
    settings: TrainSettings,
    targets: Sequence[str],
    history: Sequence[EpochLog],
    classes: dict[str, list[str]] | None = None,
    linear_start: tuple[np.ndarray, list[np.ndarray], np.ndarray] | None = None,
    shard: Shard = ONE_PROCESS,
) -> FitResult:
    """Train a fresh :class:`TabularNet` on all of ``rows`` for as many epochs as ``history``
    (an early-stopped :func:`fit`, cut at its best epoch) ran, at the learning rate each of its
    epochs used.

    No rows are held back, so nothing decides when to stop: the number of epochs, and the
    schedule, are the ones the held-out fit chose. ``history`` may be empty (the fit's best model
    was its start, the linear baseline): the refit is then that start, fitted on all the rows."""
    if len(rows) < 2:
        raise TrainingError(f"too few rows to refit on: {len(rows)}")
    model, optimizer, heads, weights, generator = _begin(spec, settings, targets, rows, classes, linear_start)
    result = FitResult(model, best_epoch=len(history))
    trained = _parallel(model, shard)
    started = time.perf_counter()
    for planned in history:
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = planned.learning_rate
        loss = _epoch(trained, optimizer, rows, heads, weights, settings, generator, result, shard)
        result.history.append(
            EpochLog(planned.epoch, loss, float("nan"), {}, planned.learning_rate, time.perf_counter() - tick)
        )
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


def _begin(
    spec: NetworkSpec,
    settings: TrainSettings,
    targets: Sequence[str],
    rows: Tensors,
    classes: dict[str, list[str]] | None,
    linear_start: tuple[np.ndarray, list[np.ndarray], np.ndarray] | None,
) -> tuple[TabularNet, torch.optim.Optimizer, list[Head], torch.Tensor, torch.Generator]:
    """A seeded fresh network (from the linear start, if given), its optimiser, the heads'
    losses, the targets' weights and the generator that shuffles the batches."""
    torch.manual_seed(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    model = TabularNet(spec)
    if linear_start is not None:
        model.start_from_linear(*linear_start)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    heads = heads_of(spec, settings, targets, rows, classes or {})
    weights = torch.tensor([settings.target(t).weight for t in targets])
    return model, optimizer, heads, weights, torch.Generator().manual_seed(settings.seed)


def _parallel(model: TabularNet, shard: Shard) -> torch.nn.Module:
    """The module a process trains through: the network itself, or, on several processes, the
    network wrapped so that each step's gradients are averaged over them (its buffers, batch
    norm's running statistics, follow rank 0's)."""
    if shard.world == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(model)


def _epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train: Tensors,
    heads: Sequence[Head],
    weights: torch.Tensor,
    settings: TrainSettings,
    generator: torch.Generator,
    result: FitResult,
    shard: Shard = ONE_PROCESS,
) -> float:
    """One pass over this process's part of ``train`` in shuffled mini-batches; the mean batch loss
    (over every process)."""
    model.train()
    gaps = bool(torch.isnan(train.targets).any())  # some labels missing: mask them in every batch
    order = shard.rows(torch.randperm(len(train), generator=generator))
    size = shard.batch_size(settings.batch_size)
    batch_norm = bool(result.model.spec.batch_norm)
    total, batches = 0.0, 0
    for start in range(0, len(order), size):
        index = order[start : start + size]
        if len(index) < 2 and batch_norm:
            continue  # batch norm needs two rows; a lone last row is skipped this epoch
        output = model(train.numbers[index], train.categories[index])
        loss = (per_target_loss(output, train.targets[index], heads, masked=gaps) * weights).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        total, batches = total + loss.item(), batches + 1
        result.samples_seen += len(index) * shard.world
    return shard.mean(total / max(batches, 1))


def _weighted(weights: torch.Tensor, losses: list[float]) -> float:
    """The validation score: each target's loss times its weight, summed."""
    return float(sum(w * v for w, v in zip(weights.tolist(), losses, strict=True)))


def evaluate_loss(model: TabularNet, data: Tensors, heads: Sequence[Head]) -> list[float]:
    """The loss of each target on ``data`` (rows missing that target are left out)."""
    model.eval()
    with torch.inference_mode():
        output = model(data.numbers, data.categories)
        return [float(v) for v in per_target_loss(output, data.targets, heads, masked=True)]


@dataclass(frozen=True)
class Head:
    """One target's head: its loss, its width (one output, or one per class) and, for a label,
    the weight of each class in the loss."""

    loss: str
    size: int = 1
    class_weights: torch.Tensor | None = None

    @property
    def is_label(self) -> bool:
        return self.loss == CLASSIFICATION_LOSS


def heads_of(
    spec: NetworkSpec, settings: TrainSettings, targets: Sequence[str], train: Tensors, classes: dict[str, list[str]]
) -> list[Head]:
    """The heads of ``targets``: a label head's class weights come from its training labels."""
    heads = []
    for i, (name, size) in enumerate(zip(targets, spec.head_sizes, strict=True)):
        options = settings.target(name)
        try:
            loss = options.loss_for(name in classes)
        except ValueError as exc:
            raise TrainingError(f"[train.targets.{name}]: {exc}") from exc
        weights = _class_weights(options.class_weights, train.targets[:, i], size, classes.get(name, []), name)
        heads.append(Head(loss, size, weights))
    return heads


def _class_weights(
    chosen: str | dict[str, float] | None, labels: torch.Tensor, size: int, classes: list[str], name: str
) -> torch.Tensor | None:
    if chosen is None or size == 1:
        return None
    if isinstance(chosen, dict):
        unknown = sorted(set(chosen) - set(classes))
        if unknown:
            raise TrainingError(f"[train.targets.{name}] class_weights name {unknown}, not classes of {name} {classes}")
        return torch.tensor([float(chosen.get(c, 1.0)) for c in classes])
    known = labels[~torch.isnan(labels)].long()
    counts = torch.bincount(known, minlength=size).float()
    # Inverse to each class's share; a class absent from training gets the largest weight seen.
    weights = known.numel() / (size * counts.clamp(min=1))
    return torch.where(counts > 0, weights, weights.max())


def per_target_loss(output: torch.Tensor, target: torch.Tensor, heads: Sequence[Head], *, masked: bool) -> torch.Tensor:
    """Mean loss of each target, over the rows that have that target.

    ``output`` holds the heads side by side (one column a number, one per class a label);
    ``target`` one column per target (a scaled number, or a class index). When every head is one
    number with the same loss, one elementwise loss call covers them all: no Python loop per
    target on the hot path. A missing label is replaced by the prediction itself, which adds
    zero loss and zero gradient, and is left out of the count.
    """
    if all(h.size == 1 for h in heads) and len({h.loss for h in heads}) == 1:
        return _numbers_loss(output, target, heads[0].loss, masked=masked)
    losses, start = [], 0
    for i, head in enumerate(heads):
        column, block = target[:, i], output[:, start : start + head.size]
        start += head.size
        if not head.is_label:
            losses.append(_numbers_loss(block, column[:, None], head.loss, masked=masked)[0])
            continue
        known = ~torch.isnan(column) if masked else torch.ones_like(column, dtype=torch.bool)
        if not known.any():
            losses.append(block.sum() * 0.0)  # no label in this batch: no loss, no gradient
            continue
        losses.append(functional.cross_entropy(block[known], column[known].long(), weight=head.class_weights))
    return torch.stack(losses)


def _numbers_loss(output: torch.Tensor, target: torch.Tensor, loss: str, *, masked: bool) -> torch.Tensor:
    if masked:
        known = ~torch.isnan(target)
        target = torch.where(known, target, output.detach())
    elementwise = LOSSES[loss](output, target, reduction="none")
    if not masked:
        return elementwise.mean(dim=0)
    return elementwise.sum(dim=0) / known.sum(dim=0).clamp(min=1)


def _scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings) -> object | None:
    if settings.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=max(1, settings.patience // 3)
        )
    if settings.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    return None


def _step(scheduler: object | None, score: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(score)
    elif isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
        scheduler.step()
