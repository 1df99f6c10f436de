"""MicroBatcher without Kafka: size and time triggers, ordering, errors, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from stream.batching import MicroBatcher


class Recorder:
    """A batch function that records its batches and the thread it ran on."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.delay_s = delay_s

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.get_ident())
        if self.delay_s:
            time.sleep(self.delay_s)
        return [item * 10 for item in items]


async def test_full_batch_runs_without_waiting_for_the_timer() -> None:
    fn = Recorder()
    async with MicroBatcher(fn, batch_size=4, batch_wait_ms=60_000) as batcher:
        results = await asyncio.wait_for(batcher.submit_many([1, 2, 3, 4]), timeout=5)
    assert results == [10, 20, 30, 40]
    assert fn.batches == [[1, 2, 3, 4]]


async def test_partial_batch_runs_when_the_wait_expires() -> None:
    fn = Recorder()
    async with MicroBatcher(fn, batch_size=100, batch_wait_ms=30) as batcher:
        started = time.perf_counter()
        result = await asyncio.wait_for(batcher.submit(7), timeout=5)
        waited = time.perf_counter() - started
    assert result == 70
    assert fn.batches == [[7]]
    assert 0.025 <= waited < 2.0


async def test_items_arriving_within_the_wait_share_a_batch() -> None:
    fn = Recorder()
    async with MicroBatcher(fn, batch_size=100, batch_wait_ms=200) as batcher:
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.02)
        second = asyncio.create_task(batcher.submit(2))
        assert await asyncio.wait_for(asyncio.gather(first, second), timeout=5) == [10, 20]
    assert fn.batches == [[1, 2]]


async def test_batches_are_bounded_and_results_stay_with_their_items() -> None:
    fn = Recorder()
    async with MicroBatcher(fn, batch_size=4, batch_wait_ms=5) as batcher:
        items = list(range(1, 11))
        results = await asyncio.wait_for(batcher.submit_many(items), timeout=5)
    assert results == [i * 10 for i in items]
    assert all(1 <= len(b) <= 4 for b in fn.batches)
    assert [i for b in fn.batches for i in b] == items  # arrival order kept across batches


async def test_items_arriving_during_a_slow_batch_form_the_next_one() -> None:
    fn = Recorder(delay_s=0.1)
    async with MicroBatcher(fn, batch_size=8, batch_wait_ms=1) as batcher:
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.03)  # the first batch is running in the thread now
        rest = [asyncio.create_task(batcher.submit(i)) for i in (2, 3, 4)]
        await asyncio.wait_for(asyncio.gather(first, *rest), timeout=5)
    assert fn.batches == [[1], [2, 3, 4]]


async def test_batch_function_runs_off_the_event_loop_thread() -> None:
    fn = Recorder()
    async with MicroBatcher(fn, batch_size=2, batch_wait_ms=1) as batcher:
        await batcher.submit_many([1, 2, 3])
    assert threading.get_ident() not in fn.threads


async def test_error_reaches_every_caller_of_that_batch_only() -> None:
    calls = 0

    def flaky(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("model exploded")
        return items

    async with MicroBatcher(flaky, batch_size=3, batch_wait_ms=1) as batcher:
        failed = await asyncio.gather(
            *(batcher.submit(i) for i in (1, 2, 3)), return_exceptions=True
        )
        assert all(isinstance(r, ValueError) and "exploded" in str(r) for r in failed)
        assert await batcher.submit(4) == 4


async def test_wrong_number_of_results_is_an_error() -> None:
    async with MicroBatcher(lambda items: items[:-1], batch_size=2, batch_wait_ms=1) as batcher:
        with pytest.raises(ValueError, match="1 results for 2"):
            await batcher.submit_many([1, 2])


async def test_close_scores_what_is_pending() -> None:
    fn = Recorder()
    batcher = MicroBatcher(fn, batch_size=100, batch_wait_ms=60_000)
    waiting = [asyncio.create_task(batcher.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    await asyncio.wait_for(batcher.close(), timeout=5)
    assert [t.result() for t in waiting] == [10, 20]
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.submit(3)


async def test_cancelled_caller_is_left_out_of_the_batch() -> None:
    fn = Recorder()
    async with MicroBatcher(fn, batch_size=100, batch_wait_ms=50) as batcher:
        gone = asyncio.create_task(batcher.submit(1))
        kept = asyncio.create_task(batcher.submit(2))
        await asyncio.sleep(0)
        gone.cancel()
        assert await asyncio.wait_for(kept, timeout=5) == 20
    assert fn.batches == [[2]]


async def test_on_batch_hook_sees_each_batch() -> None:
    seen: list[tuple[int, float]] = []
    async with MicroBatcher(
        Recorder(), batch_size=2, batch_wait_ms=1, on_batch=lambda n, s: seen.append((n, s))
    ) as batcher:
        await batcher.submit_many([1, 2, 3])
    assert sorted(n for n, _ in seen) == [1, 2]
    assert all(s >= 0 for _, s in seen)


def test_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), batch_size=0, batch_wait_ms=1)
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), batch_size=1, batch_wait_ms=-1)
