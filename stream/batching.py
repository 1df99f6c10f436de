"""Micro-batching for asyncio callers of a blocking batch function (the model).

Agents score one event at a time, but the model is several times cheaper per text in batches. A
``MicroBatcher`` gathers concurrent ``submit`` calls and runs the batch function when
``batch_size`` items wait or ``batch_wait_ms`` has passed since the first of them, whichever comes
first. One batch runs at a time, in a worker thread so the event loop keeps consuming; items that
arrive meanwhile form the next batch, so batches grow by themselves under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

BatchHook = Callable[[int, float], None]  # (batch size, seconds spent in the batch function)


class MicroBatcher(Generic[T, R]):
    """``await batcher.submit(item)`` -> that item's result from ``fn(batch)``.

    ``fn`` takes a list of items and returns one result per item, in order. If it raises, every
    caller of that batch gets the exception; later batches are unaffected. ``on_batch`` is called
    after every batch (metrics). Use as ``async with MicroBatcher(...) as b`` or call ``close()``.
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        batch_size: int,
        batch_wait_ms: float,
        executor: Executor | None = None,
        on_batch: BatchHook | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if batch_wait_ms < 0:
            raise ValueError("batch_wait_ms must be >= 0")
        self._fn = fn
        self._batch_size = batch_size
        self._wait_s = batch_wait_ms / 1000.0
        self._own_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="moodstream-batch"
        )
        self._on_batch = on_batch
        # (item, its future, loop time it arrived): the oldest arrival sets the batch deadline
        self._pending: list[tuple[T, asyncio.Future[R], float]] = []
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result (or the batch's exception)."""
        if self._closed:
            raise RuntimeError("MicroBatcher is closed")
        loop = asyncio.get_running_loop()
        if self._worker is None:
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._work(), name="moodstream-microbatcher")
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future, loop.time()))
        if len(self._pending) == 1 or len(self._pending) >= self._batch_size:
            assert self._wakeup is not None
            self._wakeup.set()
        return await future

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        """Submit several items at once; results in the same order."""
        return list(await asyncio.gather(*(self.submit(item) for item in items)))

    async def close(self) -> None:
        """Score what is still pending, stop the worker, release the thread."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            assert self._wakeup is not None
            self._wakeup.set()
            await self._worker
        if self._own_executor:
            self._executor.shutdown(wait=False)

    async def __aenter__(self) -> MicroBatcher[T, R]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _work(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._pending:
                    if self._closed:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                deadline = self._pending[0][2] + self._wait_s
                remaining = deadline - loop.time()
                if len(self._pending) < self._batch_size and remaining > 0 and not self._closed:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    continue
                await self._run_batch(loop)
        finally:  # cancelled or crashed: nobody may wait forever on a future we own
            self._closed = True
            for _, fut, _ in self._pending:
                fut.cancel()
            self._pending.clear()

    async def _run_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        taken = self._pending[: self._batch_size]
        del self._pending[: self._batch_size]
        live = [(item, fut) for item, fut, _ in taken if not fut.cancelled()]
        if not live:
            return
        items = [item for item, _ in live]
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, self._fn, items)
            if len(results) != len(items):
                raise ValueError(f"batch function returned {len(results)} results for {len(items)}")
        except Exception as exc:
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(exc)
            return
        except BaseException:
            for _, fut in live:
                fut.cancel()
            raise
        finally:
            if self._on_batch is not None:
                self._on_batch(len(items), time.perf_counter() - started)
        for (_, fut), result in zip(live, results, strict=True):
            if not fut.done():
                fut.set_result(result)
