"""The image server's model and its scoring: the champion, followed in the registry, and the
micro-batches that score concurrent requests' images in one forward pass.

A request's files are decoded and checked against the served package's image contract on the
event loop's side of the batch (a refusal names each file and rule, and never costs the other
requests of the batch); the standardisation, the network and the statistics run in a worker
thread, for the whole batch at once. That is what the server gains over scoring each request
on its own: at 8 concurrent uploads, one pass of 8 images instead of 8 passes of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from driftloop.errors import DriftloopError, RequestRefused
from driftloop.images import Decoded, decode
from driftloop.runtime.image_package import ImagePackage, ImagePredictions
from driftloop.runtime.kinds import image_package

if TYPE_CHECKING:
    from driftloop.registry import Registry  # imported where used: it needs MLflow and PyTorch

logger = logging.getLogger("driftloop.serve")
# Files named in one refusal.
FILES_SHOWN = 5


@dataclass(frozen=True)
class ServedImageModel:
    """One registered version of the image network, ready to score."""

    name: str
    version: str
    run_id: str
    package: ImagePackage

    def decoded(self, files: list[bytes]) -> list[Decoded]:
        """The files decoded under the package's image contract; RequestRefused (422) naming each
        file that breaks it, and its rules."""
        decoded, errors = [], []
        for position, content in enumerate(files):
            outcome = decode(content, self.package.rules)
            if isinstance(outcome, Decoded):
                decoded.append(outcome)
            else:
                errors += [{"image": position, "rule": b.rule, "detail": b.detail} for b in outcome]
        if errors:
            shown = "; ".join(f"image {e['image']}: {e['rule']} ({e['detail']})" for e in errors[:FILES_SHOWN])
            raise RequestRefused(f"the image breaks the image contract: {shown}", errors)
        return decoded


class ImageFollowing:
    """What every keeper of an image server's model shares, wherever its versions come from (the
    registry, a device's store): the model answering, and replacing it without going dark."""

    # Where the versions come from, for the log line of a failed refresh.
    source = "the registry"

    def __init__(self) -> None:
        self.current: ServedImageModel | None = None
        self.swaps = 0  # times the served version changed
        self._lock = threading.Lock()  # one refresh at a time (poller and /admin/reload)

    def wanted(self) -> str | None:
        """The version the source names now (None: none yet)."""
        raise NotImplementedError

    def load(self, version: str) -> ServedImageModel:
        """``version`` loaded and ready to score."""
        raise NotImplementedError

    def refresh(self) -> bool:
        """Load the version the source names if it is not the one served; whether it changed."""
        with self._lock:
            version = self.wanted()
            if version is None or (self.current is not None and self.current.version == version):
                return False
            self.current = self.load(version)  # loaded whole first: one assignment swaps it in
            self.swaps += 1
            return True

    def serving(self) -> tuple[str, str] | None:
        """The name and version of the model answering (None before there is one)."""
        return None if self.current is None else (self.current.name, self.current.version)

    def try_refresh(self) -> None:
        """:meth:`refresh`, logging (not raising) a failure: the server goes on with what it has."""
        try:
            self.refresh()
        except DriftloopError as exc:
            logger.error("could not load the version %s names, still serving the old one: %s", self.source, exc)


class ImageChampion(ImageFollowing):
    """The champion of an image project's registry, loaded, and swapped when the alias moves."""

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry

    def wanted(self) -> str | None:
        return self.registry.champion()

    def load(self, version: str) -> ServedImageModel:
        package = image_package(self.registry.package(version), f"version {version} of {self.registry.name!r}")
        return ServedImageModel(self.registry.name, version, self.registry.version(version).run_id, package)


@dataclass
class ScoredImages:
    """One request's images as a batch scored them."""

    model: ServedImageModel
    predictions: ImagePredictions
    scored_at: datetime
    request_id: str


@dataclass
class _Waiting:
    model: ServedImageModel
    images: list[Decoded]
    request_id: str
    future: asyncio.Future[ScoredImages] = field(repr=False)


class ImageBatcher:
    """Gathers concurrent requests' images into one forward pass (at most ``max_images``, waiting
    at most ``max_wait_ms`` for company, and closing the batch once none came for ``gap_ms``);
    ``on_scored`` gets each request's result (the server logs it)."""

    def __init__(
        self,
        on_scored: Callable[[ScoredImages], None],
        *,
        max_images: int,
        max_wait_ms: float,
        gap_ms: float,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.on_scored = on_scored
        self.max_images, self.max_wait, self.gap = max_images, max_wait_ms / 1000, gap_ms / 1000
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="driftloop-image-batcher")

    async def stop(self) -> None:
        """Score what is queued, then stop."""
        if self._worker is not None:
            while not self._queue.empty():
                await asyncio.sleep(self.gap or 0.001)
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def score(self, model: ServedImageModel, images: list[Decoded], request_id: str) -> ScoredImages:
        """The request's images scored, with the others waiting at the same moment."""
        future: asyncio.Future[ScoredImages] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Waiting(model, images, request_id, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].images)
            deadline = time.perf_counter() + self.max_wait
            while size < self.max_images and time.perf_counter() < deadline:
                try:
                    waiting = await asyncio.wait_for(self._queue.get(), timeout=self.gap)
                except TimeoutError:
                    break
                batch.append(waiting)
                size += len(waiting.images)
            for members in _by_model(batch):
                await self._score(members[0].model, members)

    async def _score(self, model: ServedImageModel, members: list[_Waiting]) -> None:
        started = time.perf_counter()
        try:
            predictions = await asyncio.to_thread(model.package.predict_decoded, [i for m in members for i in m.images])
        except Exception as exc:  # every waiting request hears of it; the batcher goes on
            for member in members:
                if not member.future.done():
                    member.future.set_exception(exc)
            return
        scored_at = datetime.now(UTC)
        start = 0
        for member in members:
            end = start + len(member.images)
            result = ScoredImages(model, _slice(predictions, start, end), scored_at, member.request_id)
            start = end
            self.on_scored(result)
            if not member.future.done():
                member.future.set_result(result)
        if self.on_batch is not None:
            self.on_batch(start, time.perf_counter() - started)


def _by_model(batch: list[_Waiting]) -> list[list[_Waiting]]:
    """The batch split by the model version each request was taken for (a swap may fall inside one)."""
    groups: dict[str, list[_Waiting]] = {}
    for waiting in batch:
        groups.setdefault(waiting.model.version, []).append(waiting)
    return list(groups.values())


def _slice(predictions: ImagePredictions, start: int, end: int) -> ImagePredictions:
    return ImagePredictions(
        predictions.target,
        predictions.classes,
        np.asarray(predictions.probabilities[start:end]),
        np.asarray(predictions.embeddings[start:end]),
        predictions.image_ids[start:end],
        predictions.stats[start:end],
    )
