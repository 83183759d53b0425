"""Micro-batching: concurrent requests gathered into one forward pass, run off the event loop.

The first waiting request opens a batch; requests arriving within ``max_wait`` (or until
``max_rows`` rows) join it. The batch is checked and scored in a worker thread in one pass;
if any request in it breaks the contract, each is checked alone so only that one is refused.
Each request gets its own rows back, with the model that scored them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from driftloop.errors import RequestRefused
from driftloop.serve.models import LoadedModel


@dataclass(frozen=True)
class Scored:
    """One request's answer: its typed rows, the outputs, and the model that made them."""

    typed: pl.DataFrame
    outputs: pl.DataFrame
    model: LoadedModel
    shadow: tuple[LoadedModel, pl.DataFrame] | None = None


@dataclass
class _Job:
    frame: pl.DataFrame
    future: asyncio.Future[Scored]


class MicroBatcher:
    """Gathers requests and scores each batch with the models ``current()`` gives at its start."""

    def __init__(
        self,
        current: Callable[[], tuple[LoadedModel | None, LoadedModel | None]],
        *,
        max_rows: int,
        max_wait_ms: float,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.current = current
        self.max_rows = max_rows
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch or (lambda rows, seconds: None)
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    async def score(self, frame: pl.DataFrame) -> Scored:
        """Score ``frame`` with the next batch; raises RequestRefused for input the contract refuses."""
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(frame, future))
        return await future

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="driftloop-batcher")

    async def stop(self) -> None:
        """Finish every request already queued, then stop."""
        await self._queue.put(None)
        if self._worker is not None:
            await self._worker

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            jobs, rows = [first], first.frame.height
            deadline = loop.time() + self.max_wait
            while rows < self.max_rows:
                try:
                    job = await asyncio.wait_for(self._queue.get(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
                rows += job.frame.height
            started = time.perf_counter()
            try:
                results = await asyncio.to_thread(self._score_batch, [j.frame for j in jobs])
            except Exception as exc:  # an unexpected failure reaches every waiting request as a 500
                results = [exc] * len(jobs)
            self.on_batch(rows, time.perf_counter() - started)
            for job, result in zip(jobs, results, strict=True):
                if job.future.done():
                    continue  # the client went away
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    def _score_batch(self, frames: list[pl.DataFrame]) -> list[Scored | BaseException]:
        champion, challenger = self.current()
        if champion is None:
            return [RequestRefused("no model is loaded yet: the project has no champion", status=503)] * len(frames)
        try:
            typed_all = champion.check(pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0])
        except RequestRefused as refused:
            if len(frames) == 1:
                return [refused]
            return [self._score_one(frame, champion, challenger) for frame in frames]  # find who is at fault
        outputs = champion.predict(typed_all)
        shadow = challenger.predict(typed_all) if challenger is not None else None
        answers: list[Scored | BaseException] = []
        offset = 0
        for frame in frames:
            part = slice(offset, offset + frame.height)
            offset += frame.height
            answers.append(
                Scored(
                    typed_all[part],
                    outputs[part],
                    champion,
                    (challenger, shadow[part]) if challenger is not None and shadow is not None else None,
                )
            )
        return answers

    def _score_one(
        self, frame: pl.DataFrame, champion: LoadedModel, challenger: LoadedModel | None
    ) -> Scored | BaseException:
        try:
            typed = champion.check(frame)
        except RequestRefused as refused:
            return refused
        shadow = (challenger, challenger.predict(typed)) if challenger is not None else None
        return Scored(typed, champion.predict(typed), champion, shadow)
