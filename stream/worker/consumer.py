"""The worker's Kafka consumer: Faust's own, minus the ways it skips input events.

Every topic an agent of this app reads is a plain log (neither compacted nor written in
transactions), so its offsets have no holes and each one must be folded or dead-lettered.
Faust's consumer assumes holes can be real, and around a rebalance (the fetcher runs on between
the revoke and the seek back to committed offsets: faust-streaming#216, #221) that loses events:

- a jump in fetched offsets is counted as acknowledged (meant for compacted-away records);
- its commit test lets the first unacknowledged offset through when the next one is acked;
- a message fetched during a rebalance is skipped by the stream and never acknowledged;
- the seek back after a rebalance leaves a partition with no committed offset (or offset 0)
  where the fetcher was, past the events it dropped.

Here a commit stops at the first offset not acknowledged, a jump is fetched again, a partition
with nothing committed starts again at the log start, and a hole that stands still is fetched
again (``rewind_holes``, on a timer): one with a later offset acknowledged, and one at the end
of a partition (nothing acknowledged, the fetch position past it; seen after a SIGKILL
handover: skipped prefetched events can move the read offset past the refetched ones, which
the drain loop then drops as older). Events fetched twice are
dropped by the fold's dedup window. A jump that is still there after it was fetched again is a
real one (retention, transaction markers) and is let through as Faust would. Last, whatever the
cause, a commit that stands still behind the log end with nothing in flight for a minute is
logged with the partition's state and fetched again from it; acks below the committed offset
(left by a revoke, see ``_drop_stale_acks``) are dropped so they cannot hide a hole. And a
fetched batch Faust would drop undelivered (its partition paused, or the flow stopped, while
the fetch waited) is sought back, changelogs included: recovery waits for every record of an
active changelog partition, and one such batch lost stalls it for good.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import ConsumerStoppedError
from faust.transport.drivers import aiokafka as faust_kafka
from faust.types import TP, Message
from faust.types.transports import TransportT

log = logging.getLogger("moodstream.consumer")


@dataclass
class Partition:
    """What the watch last saw of one partition, and what it did about it."""

    committed: int | None = None
    still: int = 0  # consecutive looks with the same committed offset and a hole after it
    stalled: int = 0  # consecutive looks with the same committed offset behind the log end
    rewound_to: int | None = None  # the offset last fetched again (a jump that stays is real)


@dataclass
class Holes:
    """The hole bookkeeping, kept apart from Faust's consumer so it can be tested alone."""

    looks: int = 2  # looks a hole must stand still before it is fetched again
    tail_looks: int = 4  # the same for a hole with nothing acked after it
    # Looks a commit may stand still behind the log end with nothing in flight (a backlog's
    # events queued for the agent are not tracked yet: 4,096 reviews take ~40 s here).
    stall_looks: int = 30
    parts: dict[TP, Partition] = field(default_factory=dict)
    pending: dict[TP, int] = field(default_factory=dict)  # partition -> offset to fetch again
    refetched: int = 0

    def on_jump(self, tp: TP, expected: int) -> int | None:
        """A fetched offset skipped ``expected``: fetch again from there (None), or, when the
        jump is still there after fetching again from ``rewound_to``, the first offset of the
        real gap. After a seek to X the drain loop reports a jump from X + 1 (it takes X for
        the last offset read), yet X was not read either: the gap starts at X."""
        part = self.parts.setdefault(tp, Partition())
        seek = part.rewound_to
        if seek is not None and seek <= expected <= seek + 1:
            part.rewound_to = None
            return seek
        self.request(tp, expected)
        return None

    def look(
        self,
        tp: TP,
        committed: int | None,
        first_acked: int | None,
        in_flight: bool,
        fetched_past: bool = False,
        behind: bool = False,
    ) -> bool:
        """One look at a partition. A hole is a committed offset that is neither acked nor in
        flight while a later one is acked (refetched after ``looks`` looks standing still), or,
        with nothing acked, while the fetch position is past it (after ``tail_looks``: its
        events may still be queued for the agent, untracked). Whatever the cause, a commit
        that stands still behind the log end with nothing in flight for ``stall_looks`` looks
        is fetched again too; True then, for the caller to log the partition's state."""
        part = self.parts.setdefault(tp, Partition())
        moved = committed != part.committed
        part.stalled = 0 if moved or not behind or in_flight else part.stalled + 1
        stalled = part.stalled >= self.stall_looks
        if stalled and committed is not None:
            self.request(tp, committed)
            part.stalled = 0
        if committed is None or in_flight:
            part.committed, part.still = committed, 0
            return stalled
        head = first_acked is not None and first_acked > committed
        tail = first_acked is None and fetched_past
        if not (head or tail) or moved:
            part.committed, part.still = committed, (1 if head or tail else 0)
            return stalled
        part.still += 1
        if part.still >= (self.looks if head else self.tail_looks):
            self.request(tp, committed)
            part.still = 0
        return stalled

    def request(self, tp: TP, offset: int) -> None:
        current = self.pending.get(tp)
        self.pending[tp] = offset if current is None else min(current, offset)
        self.parts.setdefault(tp, Partition()).rewound_to = self.pending[tp]

    def take(self) -> dict[TP, int]:
        pending, self.pending = self.pending, {}
        self.refetched += len(pending)
        return pending

    def forget(self, keep: set[TP]) -> None:
        """Drop what is known of partitions this worker no longer owns."""
        for tp in [tp for tp in self.parts if tp not in keep]:
            del self.parts[tp]
        for tp in [tp for tp in self.pending if tp not in keep]:
            del self.pending[tp]


def first_hole(committed: int | None, acked: list[int]) -> int | None:
    """The first offset a commit must stop at: ``committed`` when it is not acked itself
    but a later one is (Faust's own test lets one such offset through)."""
    if committed is None or not acked:
        return None
    return committed if min(acked) > committed else None


# How long a stop waits for the Kafka client's thread (mode's default: 60 s). With the broker
# gone (``docker compose down`` stops all at once) that thread's stop never finishes; the
# offsets are committed (or not) before it, so cutting it short loses nothing, and the worker
# exits inside compose's 30 s ``stop_grace_period`` instead of being killed at it.
CLIENT_STOP_S = 15.0
# The fetch loop asks for records at least once a second while the flow is on. Seen in CI after
# a SIGKILL handover: recovery resumed the flow and waited for changelog records that never came
# ("No event received for active tp ... since recovery start", for minutes). Faust stops the
# fetcher at every rebalance and restarts it from two places (its supervisor, after the cancel
# it takes for a crash, and the recovery's ``maybe_start``). After this long without a fetch the
# watch restarts the fetcher. Long enough for a fetch batch queued behind a full stream buffer.
FETCH_STALL_S = 30.0


# Most input records one fetch hands the streams. Faust hands over a fetch's records in full
# before it fetches again, and aiokafka holds up to 1 MB per partition: with no bound, one fetch
# during a backlog held 26,158 clicks, and the item deltas produced meanwhile (sent to the
# item-events topic, read by this same consumer) waited 22 s for the next one. Bounded, a fetch
# takes a fraction of a second to hand over (64 against 256: freshness p99 2.5 s against 2.9 s,
# the same throughput; the stream buffer, not the fetch, paces the input). The bound is per
# fetch, not per partition: aiokafka drains partitions in the order it fetched them.
INPUT_RECORDS_PER_FETCH = 64
# How long the broker may hold a fetch that finds no new data. Faust sets 1,500 ms, and aiokafka
# has one fetch in flight per broker: a fetch for partitions with nothing new (a quiet input
# topic, changelogs) held the item-events partitions back for 1.5 s at a time (traced: item
# events were fetched in bursts 1.6 s apart during a drain). Shorter may cost mixed traffic
# (texts/s vs ceiling, one session: 250 ms 0.507-0.542 in three runs, 500 ms 0.550 and 0.688,
# 1,500 ms 0.591 and 0.702: within run-to-run noise except at 250) for freshness p99 in the
# clicks drain of 1.31, 1.43-1.45 and 2.48 s.
FETCH_MAX_WAIT_MS = 500


@dataclass(frozen=True)
class Handed:
    """Where one partition's fetch position stood when a batch of it was handed over."""

    first: int  # the batch's first offset
    state: Any  # aiokafka's partition state (a new one after every rebalance)
    position: int | None  # the fetch position just after the batch


def _partition_state(fetcher: Any, tp: TP) -> Any:
    subscription = fetcher._subscriptions.subscription
    assignment = subscription.assignment if subscription is not None else None
    return assignment.state_value(tp) if assignment is not None else None


class FairFetchThread(faust_kafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with every fetch taking all buffered records of the internal
    topics (item events; changelogs while recovering) and at most ``INPUT_RECORDS_PER_FETCH``
    of the input topics, so the item stage keeps pace while an input backlog stands. It notes
    where each partition's position stood after a fetch, so that records Faust then does not
    deliver can be put back (``PlainLogConsumer._put_back_undelivered``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handed: dict[TP, Handed] = {}

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: set[TP],
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        if not self.consumer.flow_active:
            return {}
        fetcher = consumer._fetcher
        if consumer._closed or fetcher._closed:
            raise ConsumerStoppedError()
        # Faust's live set, changed by the event loop's thread while this one waits: copied, as
        # an empty set means "every partition" to fetched_records (so one is never passed).
        active = frozenset(active_partitions)
        inputs: frozenset[str] = getattr(self.consumer.app, "input_topics", frozenset())
        bounded = {tp for tp in active if tp.topic in inputs}
        free = set(active) - bounded
        limit = INPUT_RECORDS_PER_FETCH
        with fetcher._subscriptions.fetch_context():
            records = {}
            if free:
                records.update(await fetcher.fetched_records(free, timeout=0))
            if bounded:
                records.update(await fetcher.fetched_records(bounded, timeout=0, max_records=limit))
            if not records and active:
                # Nothing buffered: wait for whatever comes first (the bound still holds).
                records = await fetcher.fetched_records(active, timeout=timeout, max_records=limit)
        self.handed = {}
        for tp, batch in records.items():
            state = _partition_state(fetcher, tp)
            if batch and state is not None:
                self.handed[tp] = Handed(batch[0].offset, state, state._position)
        return records

    def put_back(self, tp: TP, handed: Handed) -> bool:
        """Seek a partition back to a batch that was handed over but not delivered, unless
        it was sought since (a rebalance's seek, or a new assignment, decides then)."""
        fetcher = self._ensure_consumer()._fetcher
        state = _partition_state(fetcher, tp)
        if state is not handed.state or state._position != handed.position:
            return False
        fetcher.seek_to(tp, handed.first)
        return True


class PlainLogConsumer(faust_kafka.Consumer):
    """Faust's aiokafka consumer for topics whose offsets have no holes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.holes = Holes()
        self._starts: dict[TP, int] = {}
        self._last_fetch = time.monotonic()
        self.fetcher_restarts = 0
        self.put_back = 0  # batches handed over, not delivered, and put back

    def _new_consumer_thread(self) -> faust_kafka.AIOKafkaConsumerThread:
        thread = FairFetchThread(self, loop=self.loop, beacon=self.beacon)
        thread.shutdown_timeout = CLIENT_STOP_S
        return thread

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        if records and active is not None:
            records = self._put_back_undelivered(records, active)
        return records, active

    def _put_back_undelivered(
        self, records: Mapping[TP, list[Any]], active: set[TP]
    ) -> dict[TP, list[Any]]:
        """Faust drops a fetched batch it cannot deliver now (the flow stopped, or the
        partition paused, while the fetch waited), yet the fetch position has moved past it.
        Seen in CI after a 3 -> 1 scale-in: a changelog partition's records, fetched after the
        recovery's seek and dropped before its resume, never came again, and the recovery
        waited for them for minutes. Such a batch goes back to the fetcher instead."""
        thread = self._thread
        deliverable = active | self._buffered_partitions if self.flow_active else set()
        kept = {}
        for tp, batch in records.items():
            if tp in deliverable:
                kept[tp] = batch
                continue
            if not isinstance(thread, FairFetchThread):
                continue
            handed = thread.handed.get(tp)
            if handed is not None and thread.put_back(tp, handed):
                self.put_back += 1
                log.debug("%s[%d]: put back from %d", tp.topic, tp.partition, handed.first)
        return kept

    def _new_offset(self, tp: TP) -> int | None:
        committed = self._committed_offset[tp]
        if first_hole(committed, self._acked[tp]) is not None and not self._gap[tp].overlaps(
            committed
        ):
            return None  # wait for the missing offset (or its refetch)
        result: int | None = super()._new_offset(tp)
        return result

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Faust counts a jump as acknowledged; fetch it again instead, once."""
        start = self.holes.on_jump(tp, offset_from)
        if start is None:
            log.warning(
                "input %s[%d]: offsets %d-%d skipped by the fetch, fetching them again",
                tp.topic,
                tp.partition,
                offset_from,
                offset_to - 1,
            )
            return
        # A real jump (retention, transaction markers): let through, without the message that
        # revealed it (Faust's own _add_gap counts it, and never covers the committed offset).
        if start < offset_to:
            self._gap[tp].addi(start, offset_to)
            self._gap[tp].merge_overlaps()

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Seek the partitions to fetch again before the next fetch (between two fetches
        no message of an older position can still be on its way to the streams)."""
        self._last_fetch = time.monotonic()
        for tp, offset in self.holes.take().items():
            if tp in self.assignment():
                log.info("input %s[%d]: fetching again from %d", tp.topic, tp.partition, offset)
                try:
                    await self.seek(tp, offset)
                except Exception as exc:  # revoked meanwhile (the fetcher runs in its thread)
                    log.warning("input %s[%d]: no seek (%r)", tp.topic, tp.partition, exc)
        async for tp, message in super().getmany(timeout):
            if tp in self.holes.pending:
                continue  # fetched from before the seek that is coming
            yield tp, message

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """After a rebalance: every read partition at its committed offset, or at the log start
        when there is none (aiokafka seeks only to offsets above 0)."""
        committed = dict(await super().seek_to_committed())
        fresh = [
            tp
            for tp, offset in committed.items()
            if not offset and self.app.topics.acks_enabled_for(tp.topic)
        ]
        if fresh:
            starts = await self.earliest_offsets(*fresh)
            for tp in fresh:
                start = starts.get(tp) or 0
                await self._seek(tp, start)
                committed[tp] = start
                self._starts[tp] = start
        return committed

    async def perform_seek(self) -> None:
        """Faust keeps no committed offset 0 (it tests offsets for truth); the hole watch
        needs the offset a partition with nothing committed starts at."""
        await super().perform_seek()
        starts, self._starts = self._starts, {}
        for tp, start in starts.items():
            if self._committed_offset[tp] is None:
                self._committed_offset[tp] = start
        for tp in self.assignment():
            self._drop_stale_acks(tp)

    def _drop_stale_acks(self, tp: TP) -> None:
        """Acks below the committed offset: Faust forgets a revoked partition's acks before it
        waits for the streams to finish, so the acks that come in meanwhile stay behind, and
        come back with the partition. They would hide a hole from the watch."""
        committed = self._committed_offset[tp]
        acked = self._acked.get(tp)
        if committed is None or not acked or min(acked) >= committed:
            return
        stale = {offset for offset in acked if offset < committed}
        acked[:] = [offset for offset in acked if offset >= committed]
        self._acked_index[tp].difference_update(stale)

    async def restart_stalled_fetcher(self) -> bool:
        """Restart Faust's fetcher when the flow is on but nothing asked for records for
        ``FETCH_STALL_S`` (the clock starts when the flow resumes)."""
        now = time.monotonic()
        if not self.flow_active or self.should_stop or self.app.should_stop:
            self._last_fetch = now
            return False
        if now - self._last_fetch < FETCH_STALL_S:
            return False
        log.warning(
            "no fetch for %.0f s with the flow on (recovery %s): restarting the fetcher",
            now - self._last_fetch,
            self.app.in_recovery,
        )
        fetcher = self.app._fetcher  # type: ignore[attr-defined]
        await fetcher.stop()
        fetcher.service_reset()
        await fetcher.maybe_start()
        self._last_fetch = time.monotonic()
        self.fetcher_restarts += 1
        return True

    async def rewind_holes(self) -> None:
        """One look at every owned partition (a timer calls this)."""
        owned = set(self.assignment())
        self.holes.forget(owned)
        in_flight: dict[TP, int] = {}
        for message in list(self._unacked_messages):
            if not message.acked:
                low = in_flight.get(message.tp)
                in_flight[message.tp] = message.offset if low is None else min(low, message.offset)
        for tp in owned:
            if not self.app.topics.acks_enabled_for(tp.topic):
                continue
            self._drop_stale_acks(tp)
            committed = self._committed_offset[tp]
            acked = self._acked[tp]
            first_acked = min(acked) if acked else None
            low = in_flight.get(tp)
            busy = low is not None and (first_acked is None or low < first_acked)
            try:
                position = await self.position(tp)
                end = self.highwater(tp)
            except Exception:  # revoked meanwhile: looked at next time
                continue
            past = position is not None and committed is not None and position > committed
            behind = committed is not None and end is not None and end > committed
            behind = behind and self.flow_active and not self.app.in_recovery
            if self.holes.look(tp, committed, first_acked, busy, past and not busy, behind):
                log.warning(
                    "input %s[%d]: commit at %s stands still behind the log end %s (position "
                    "%s, %d acked from %s, paused %s); fetching again from it",
                    tp.topic,
                    tp.partition,
                    committed,
                    end,
                    position,
                    len(acked),
                    first_acked,
                    tp in self._paused_partitions or tp in self._buffered_partitions,
                )


class PlainLogTransport(faust_kafka.Transport):
    Consumer = PlainLogConsumer


class PlainLogApp(faust.App):
    """A Faust app whose agents' consumer is the ``PlainLogConsumer``."""

    input_topics: frozenset[str] = frozenset()  # topics whose records a fetch bounds

    def _new_transport(self) -> TransportT:
        return PlainLogTransport(self.conf.broker_consumer, self)
