"""The training loop: mini-batches sliced from in-memory tensors, a loss per target, AdamW,
a learning-rate schedule and early stopping on the validation loss.

Observers (MLflow tracking, a progress bar) attach as :class:`Callback` objects, so the loop
itself logs nothing. The same seed gives the same model.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from driftloop.errors import TrainingError
from driftloop.model.network import NetworkSpec, TabularNet
from driftloop.model.settings import TrainSettings


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


@dataclass
class FitResult:
    """The best model (by validation loss) and how training went."""

    model: TabularNet
    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    samples_seen: int = 0
    stopped_early: bool = False


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
) -> FitResult:
    """Train a :class:`TabularNet` on ``train``, stopping when ``validation`` stops improving."""
    if len(train) < 2 or len(validation) < 1:
        raise TrainingError(
            f"too few rows to train: {len(train)} training and {len(validation)} validation rows; "
            "ingest more data or change validation_fraction/test_fraction"
        )
    torch.manual_seed(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    model = TabularNet(spec)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = _scheduler(optimizer, settings)
    losses = [_loss(settings.target(t).loss) for t in targets]
    weights = torch.tensor([settings.target(t).weight for t in targets])
    generator = torch.Generator().manual_seed(settings.seed)
    result = FitResult(model)
    best, best_state, waited = float("inf"), copy.deepcopy(model.state_dict()), 0
    started = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        tick = time.perf_counter()
        model.train()
        order = torch.randperm(len(train), generator=generator)
        total, batches = 0.0, 0
        for start in range(0, len(train), settings.batch_size):
            index = order[start : start + settings.batch_size]
            if len(index) < 2 and spec.batch_norm:
                continue  # batch norm needs two rows; a lone last row is skipped this epoch
            output = model(train.numbers[index], train.categories[index])
            loss = _total_loss(output, train.targets[index], losses, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
            result.samples_seen += len(index)
        by_target = evaluate_loss(model, validation, losses)
        score = float(sum(w * v for w, v in zip(weights.tolist(), by_target, strict=True)))
        _step(scheduler, score)
        log = EpochLog(
            epoch,
            total / max(batches, 1),
            score,
            dict(zip(targets, by_target, strict=True)),
            float(optimizer.param_groups[0]["lr"]),
            time.perf_counter() - tick,
        )
        result.history.append(log)
        for callback in callbacks:
            callback.on_epoch_end(log)
        if score < best - 1e-6:
            best, best_state, waited, result.best_epoch = score, copy.deepcopy(model.state_dict()), 0, epoch
        else:
            waited += 1
            if waited >= settings.patience:
                result.stopped_early = True
                break
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


def predict_scaled(model: TabularNet, numbers: np.ndarray, categories: np.ndarray, batch: int = 65536) -> np.ndarray:
    """Scaled outputs of ``model`` in evaluation mode, computed in chunks."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, numbers.shape[0], batch):
            chunk = model(
                torch.from_numpy(numbers[start : start + batch]), torch.from_numpy(categories[start : start + batch])
            )
            outputs.append(chunk.numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, model.spec.targets), np.float32)


def evaluate_loss(model: TabularNet, data: Tensors, losses: Sequence[nn.Module]) -> list[float]:
    """The loss of each target on ``data`` (rows missing that target are left out)."""
    model.eval()
    with torch.inference_mode():
        output = model(data.numbers, data.categories)
    return [float(_masked(loss, output[:, i], data.targets[:, i])) for i, loss in enumerate(losses)]


def _total_loss(
    output: torch.Tensor, target: torch.Tensor, losses: Sequence[nn.Module], weights: torch.Tensor
) -> torch.Tensor:
    parts = [_masked(loss, output[:, i], target[:, i]) for i, loss in enumerate(losses)]
    return (torch.stack(parts) * weights).sum()


def _masked(loss: nn.Module, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    known = ~torch.isnan(target)
    if not bool(known.any()):
        return output.sum() * 0.0  # no label for this target in the batch: contributes nothing
    value: torch.Tensor = loss(output[known], target[known])
    return value


def _loss(name: str) -> nn.Module:
    return {"mse": nn.MSELoss(), "huber": nn.HuberLoss(delta=1.0), "mae": nn.L1Loss()}[name]


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
