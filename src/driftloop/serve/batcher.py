"""Micro-batching: concurrent requests gathered into one forward pass, run off the event loop.

The first waiting request opens a batch; requests already queued join it, and while other
requests are still on their way in, so do those that keep arriving (no pause longer than
``gap``) within ``max_wait`` (up to ``max_rows`` rows). Everything per batch happens once, in a
worker thread: one frame from all the requests' columns, one contract check, one forward pass,
one hand-over of the batch's rows to the prediction log. The event loop only parses JSON and
answers, so requests keep arriving while a batch is scored; up to two batches are in flight, so
the next one is gathered and started while the first is still scored.

If any request in a batch breaks the contract (a column it lacks and others sent counts as
missing), each is checked alone, so only the one at fault is refused, with its own row numbers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from driftloop.errors import RequestRefused
from driftloop.rollout.guards import GuardWatch, output_gaps
from driftloop.rollout.routing import arm_of
from driftloop.serve.deployments import Deployment, Live
from driftloop.serve.loaded import LoadedModel
from driftloop.serve.payloads import Rows, combined, row_count, to_frame

BATCHES_IN_FLIGHT = 2


@dataclass(frozen=True)
class Scored:
    """Scored rows: the typed inputs, the outputs, the deployment that answered with them, their
    prediction ids and when they were scored; ``shadows`` are the outputs each shadow deployment
    gave for the same rows. With a rollout live each arm scores the whole batch and ``keep`` says
    which rows it answered (None: all): the rows logged. The log's writer picks them, once for
    many batches, so the answers never wait for it."""

    typed: pl.DataFrame
    outputs: pl.DataFrame
    deployment: Deployment
    prediction_ids: list[str]
    shadows: tuple[tuple[Deployment, pl.DataFrame], ...] = ()
    scored_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    keep: np.ndarray | None = None

    @property
    def model(self) -> LoadedModel:
        return self.deployment.model

    @property
    def answered(self) -> int:
        """How many rows it answered (the rows it logs)."""
        return self.outputs.height if self.keep is None else int(self.keep.sum())


@dataclass(frozen=True)
class Answer:
    """One request's share of a scored batch: its output rows (one dict per row), their
    prediction ids, and the model that made them."""

    outputs: list[dict[str, Any]]
    prediction_ids: list[str]
    model: LoadedModel


@dataclass
class _Job:
    payload: Rows
    rows: int
    request_id: str
    future: asyncio.Future[Answer]
    key: str  # what a rollout routes it by (its entity, or its request id)
    enqueued: float = field(default_factory=time.perf_counter)
    arm: str | None = None  # the version whose arm of a rollout answered it (None: no rollout was live)


class MicroBatcher:
    """Gathers requests and scores each batch with the deployments ``current()`` gives at its start;
    ``on_scored`` receives every scored batch (the prediction log), in the worker thread."""

    def __init__(
        self,
        current: Callable[[], Live],
        on_scored: Callable[[Scored], None],
        *,
        max_rows: int,
        max_wait_ms: float,
        gap_ms: float,
        on_batch: Callable[[int, float], None] | None = None,
        watch: GuardWatch | None = None,
    ) -> None:
        self.current = current
        self.watch = watch  # what a canary's guards judge: each arm's requests, and the outputs' gap
        self.on_scored = on_scored
        self.max_rows = max_rows
        self.max_wait = max_wait_ms / 1000
        self.gap = gap_ms / 1000
        self.on_batch = on_batch or (lambda rows, seconds: None)
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._waiting = 0  # requests handed to score() and not answered yet
        self._dispatched = 0  # of which in a batch being scored

    async def score(self, payload: Rows, request_id: str, key: str | None = None) -> Answer:
        """Score one request's rows with the next batch (a canary routes it by ``key``, default its
        request id); raises RequestRefused for what the contract refuses."""
        rows = row_count(payload)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting += 1
        try:
            self._queue.put_nowait(_Job(payload, rows, request_id, future, key or request_id))  # unbounded: never waits
            return await future
        finally:
            self._waiting -= 1

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="driftloop-batcher")

    async def stop(self) -> None:
        """Finish every request already queued, then stop."""
        await self._queue.put(None)
        if self._worker is not None:
            await self._worker

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # Two batches in flight: while one is scored in a worker thread, the next is gathered and
        # dispatched, so the cores are not idle while answers go out and new requests come in.
        slots = asyncio.Semaphore(BATCHES_IN_FLIGHT)
        in_flight: set[asyncio.Task[None]] = set()
        stopping = False
        while not stopping:
            await slots.acquire()
            first = await self._queue.get()
            if first is None:
                break
            jobs, stopping = await self._gather(first)
            task = loop.create_task(self._dispatch(jobs, sum(job.rows for job in jobs), slots))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)

    async def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        """The jobs of the batch ``first`` opens, and whether :meth:`stop` was asked meanwhile.

        Every request already queued joins. A lone client is answered at once; when other
        requests are on their way, the batch also waits for them, but only while they keep
        coming: it closes once none arrived for ``gap``, or at ``max_wait`` (a batch that
        waited out the whole ``max_wait`` for stragglers left the cores idle at each round).
        """
        loop = asyncio.get_running_loop()
        jobs, rows = [first], first.rows
        deadline = loop.time() + (self.max_wait if self._waiting > self._dispatched + 1 else 0.0)
        while rows < self.max_rows:
            if self._queue.empty():
                timeout = min(self.gap, deadline - loop.time())
                if timeout <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            if job is None:
                return jobs, True
            jobs.append(job)
            rows += job.rows
        return jobs, False

    async def _dispatch(self, jobs: list[_Job], rows: int, slots: asyncio.Semaphore) -> None:
        """Score one batch in a worker thread and answer its requests."""
        started = time.perf_counter()
        self._dispatched += len(jobs)
        try:
            results = await asyncio.to_thread(self._score_batch, jobs)
        except Exception as exc:  # an unexpected failure reaches every waiting request as a 500
            results = [exc] * len(jobs)
        finally:
            self._dispatched -= len(jobs)
            slots.release()
        self.on_batch(rows, time.perf_counter() - started)
        if self.watch is not None:
            answered = time.perf_counter()
            for job, result in zip(jobs, results, strict=True):
                if job.arm is not None:
                    failed = isinstance(result, BaseException) and getattr(result, "status", 500) >= 500
                    self.watch.answered(job.arm, answered - job.enqueued, failed=failed)
        for job, result in zip(jobs, results, strict=True):
            if job.future.done():
                continue  # the client went away
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    def _score_batch(self, jobs: list[_Job]) -> list[Answer | BaseException]:
        live = self.current()
        if live.answering is None:
            return [RequestRefused("no model is loaded yet: the project has no champion", status=503)] * len(jobs)
        if not live.canaries:
            return self._score_group(jobs, live.answering, live.shadows)
        return self._score_arms(jobs, live.answering, live.shadows, live.canaries)

    def _score_arms(
        self, jobs: list[_Job], champion: Deployment, shadows: tuple[Deployment, ...], canaries: tuple[Deployment, ...]
    ) -> list[Answer | BaseException]:
        """A batch with a rollout live: each request to its arm, in one pass. The rows are checked
        once, and every arm with rows in the batch scores all of them: a few rows cost a network
        nearly what all of them do, far less than picking them out, and each candidate is
        compared with the champion on every row. Each arm answers and logs its own rows (``keep``)."""
        arms, indices = _route(jobs, champion, canaries)
        try:
            typed = champion.model.check(to_frame(combined([job.payload for job in jobs])))
        except RequestRefused as refused:
            if len(jobs) == 1:
                return [refused]
            return [self._score_alone(job, arms[i], shadows if i == 0 else ())  # find who is at fault
                    for job, i in zip(jobs, indices, strict=True)]  # fmt: skip
        per_row = np.repeat(indices, [job.rows for job in jobs])  # each row's arm
        ids = [f"{job.request_id}|{i}" for job in jobs for i in range(job.rows)]
        ours = champion.model.package
        featured = ours.features.apply(typed)  # once: versions of one project mostly compute the same features
        inputs = ours.read_inputs(featured)  # once too: each version transforms its own copy
        answered = ours.predict_featured(featured, inputs)
        records: list[list[dict[str, Any]]] = []
        for index, deployment in enumerate(arms):
            keep = per_row == index
            if not keep.any():  # nothing to answer (a lone request, most often): nothing to score
                records.append([])
                continue
            if index == 0:
                outputs = answered
                shadowed = tuple((s, s.model.predict(typed)) for s in shadows)
            else:
                theirs = deployment.model.package
                same = theirs.features.same_as(ours.features)
                outputs = theirs.predict_featured(featured, inputs) if same else deployment.model.predict(typed)
                shadowed = ()
                if self.watch is not None:
                    gaps = output_gaps(answered, outputs, theirs.heads)
                    self.watch.compared(deployment.model.version, outputs.height, gaps, theirs.heads.classes)
            self.on_scored(Scored(typed, outputs, deployment, ids, shadowed, keep=keep))
            records.append(outputs.to_dicts())
        answers: list[Answer | BaseException] = []
        offset = 0
        for job, index in zip(jobs, indices, strict=True):
            answers.append(Answer(records[index][offset : offset + job.rows], ids[offset : offset + job.rows],
                                  arms[index].model))  # fmt: skip
            offset += job.rows
        return answers

    def _score_group(
        self,
        jobs: list[_Job],
        answering: Deployment,
        shadows: tuple[Deployment, ...],
    ) -> list[Answer | BaseException]:
        """Score ``jobs`` with ``answering`` (and ``shadows``)."""
        try:
            scored = self._scored(to_frame(combined([job.payload for job in jobs])), jobs, answering, shadows)
        except RequestRefused as refused:
            if len(jobs) == 1:
                return [refused]
            return [self._score_alone(job, answering, shadows) for job in jobs]  # find who is at fault
        self.on_scored(scored)
        records = scored.outputs.to_dicts()  # once a batch: each request takes its slice of plain rows
        answers: list[Answer | BaseException] = []
        offset = 0
        for job in jobs:
            part = slice(offset, offset + job.rows)
            offset += job.rows
            answers.append(Answer(records[part], scored.prediction_ids[part], scored.model))
        return answers

    def _score_alone(self, job: _Job, answering: Deployment, shadows: tuple[Deployment, ...]) -> Answer | BaseException:
        try:
            scored = self._scored(to_frame(combined([job.payload])), [job], answering, shadows)
        except RequestRefused as refused:
            return refused
        self.on_scored(scored)
        return Answer(scored.outputs.to_dicts(), scored.prediction_ids, scored.model)

    @staticmethod
    def _scored(
        frame: pl.DataFrame, jobs: list[_Job], answering: Deployment, shadows: tuple[Deployment, ...]
    ) -> Scored:
        typed = answering.model.check(frame)
        ids = [f"{job.request_id}|{i}" for job in jobs for i in range(job.rows)]
        shadowed = tuple((shadow, shadow.model.predict(typed)) for shadow in shadows)
        return Scored(typed, answering.model.predict(typed), answering, ids, shadowed)


def _route(
    jobs: list[_Job], champion: Deployment, canaries: tuple[Deployment, ...]
) -> tuple[list[Deployment], list[int]]:
    """The arms of a rollout's batch (the champion first, then each candidate) and each job's
    place among them; each job's ``arm`` is set to the version that answers it. A candidate that
    could not be loaded leaves its share to the champion."""
    by_place = {getattr(c.kind, "arm", 0): c for c in canaries}
    rollout = getattr(canaries[0].kind, "rollout", None)
    count = len(rollout.candidates) if rollout is not None else len(canaries)
    percent = getattr(canaries[0].kind, "percent", 0.0)
    arms = [champion, *by_place.values()]
    index_of = {place: index for index, place in enumerate(by_place, start=1)}
    indices = []
    for job in jobs:
        place = arm_of(job.key, percent, count)
        index = 0 if place is None else index_of.get(place, 0)
        job.arm = arms[index].model.version
        indices.append(index)
    return arms, indices
