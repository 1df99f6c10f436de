"""The consumer's hole bookkeeping: no commit over an offset that was never acknowledged, a jump
fetched again once, a hole that stands still fetched again; Faust's own consumer shown doing
the opposite where it differs."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP

from stream.worker.consumer import Holes, PlainLogApp, PlainLogConsumer, first_hole

TP0 = TP("moodstream.reviews.v1", 0)


def _consumer() -> PlainLogConsumer:
    app = PlainLogApp("test-consumer", broker="kafka://127.0.0.1:1", autodiscover=False)
    consumer = app.consumer
    assert isinstance(consumer, PlainLogConsumer)
    return consumer


def test_first_hole_is_the_committed_offset_when_a_later_one_is_acked_first() -> None:
    assert first_hole(20, [21, 22]) == 20
    assert first_hole(20, [20, 21]) is None
    assert first_hole(None, [21]) is None
    assert first_hole(20, []) is None


def test_a_commit_stops_at_an_offset_never_acknowledged() -> None:
    consumer = _consumer()
    consumer._committed_offset[TP0] = 20
    consumer._acked[TP0] = [21, 22]
    assert FaustConsumer._new_offset(consumer, TP0) == 23  # Faust's own: offset 20 is skipped
    consumer._acked[TP0] = [21, 22]
    assert consumer._new_offset(TP0) is None
    consumer._acked[TP0] = [20, 21, 22]
    assert consumer._new_offset(TP0) == 23


def test_a_jump_in_fetched_offsets_is_fetched_again_not_acknowledged() -> None:
    consumer = _consumer()
    consumer._committed_offset[TP0] = 10
    asyncio.run(consumer._add_gap(TP0, 11, 22))  # read offset 10, then offset 22
    assert not consumer._gap[TP0]  # Faust would count 11..22 as acknowledged
    assert consumer.holes.take() == {TP0: 11}
    # After the seek to 11 the drain loop takes 11 for read and reports the jump from 12; the
    # same jump is a real one (retention, markers): let through from 11, without offset 22.
    asyncio.run(consumer._add_gap(TP0, 12, 22))
    assert sorted((i.begin, i.end) for i in consumer._gap[TP0]) == [(11, 22)]
    assert consumer.holes.take() == {}


def test_a_hole_that_stands_still_is_fetched_again() -> None:
    holes = Holes(looks=2)
    holes.look(TP0, 20, 25, in_flight=False)
    assert holes.take() == {}
    holes.look(TP0, 20, 26, in_flight=False)
    assert holes.take() == {TP0: 20}
    assert holes.refetched == 1


def test_a_hole_being_folded_or_a_moving_commit_is_left_alone() -> None:
    holes = Holes(looks=2)
    for _ in range(3):
        holes.look(TP0, 20, 25, in_flight=True)  # offset 20 is still on its way
    for committed in (21, 22, 23):
        holes.look(TP0, committed, committed + 2, in_flight=False)
    holes.look(TP0, 30, None, in_flight=False)  # nothing acked after it: no hole
    holes.look(TP0, 30, None, in_flight=False)
    assert holes.take() == {}


def test_partitions_no_longer_owned_are_forgotten() -> None:
    holes = Holes()
    other = TP("moodstream.reviews.v1", 1)
    holes.request(TP0, 5)
    holes.request(other, 7)
    holes.forget({other})
    assert holes.take() == {other: 7}
    assert set(holes.parts) == {other}


def test_a_hole_with_nothing_acked_after_it_waits_longer() -> None:
    """Skipped events at the end of a partition: nothing acked, the fetch position past the
    committed offset. Its events may still be queued for the agent, so it waits longer."""
    holes = Holes(looks=2, tail_looks=4)
    for _ in range(3):
        holes.look(TP0, 30, None, in_flight=False, fetched_past=True)
    assert holes.take() == {}
    holes.look(TP0, 30, None, in_flight=False, fetched_past=True)
    assert holes.take() == {TP0: 30}
    for _ in range(6):  # caught up: the position is the committed offset
        holes.look(TP0, 36, None, in_flight=False, fetched_past=False)
    assert holes.take() == {}


def test_a_real_jump_at_the_committed_offset_lets_the_commit_through() -> None:
    """Retention deleted offsets 10-29 before they were read. The hole watch seeks to the
    committed offset 10; the fetch still starts at 30: the commit must pass 10-29."""
    consumer = _consumer()
    consumer._committed_offset[TP0] = 10
    consumer._acked[TP0] = [30, 31]
    assert consumer._new_offset(TP0) is None  # a hole at 10
    consumer.holes.request(TP0, 10)  # what the watch does
    assert consumer.holes.take() == {TP0: 10}
    asyncio.run(consumer._add_gap(TP0, 11, 30))  # read offset 10 after the seek, then 30
    assert consumer.holes.take() == {}
    consumer._acked[TP0] = [30, 31]
    assert consumer._new_offset(TP0) == 32


def test_a_commit_standing_still_behind_the_log_end_is_fetched_again() -> None:
    """Whatever left it there: nothing in flight, nothing acked, the log end past the commit."""
    holes = Holes(stall_looks=3)
    for _ in range(3):  # the first look finds the commit, three more see it stand still
        assert not holes.look(TP0, 40, None, in_flight=False, behind=True)
    assert holes.look(TP0, 40, None, in_flight=False, behind=True)
    assert holes.take() == {TP0: 40}
    for committed in (41, 42, 43, 44):  # moving: left alone
        assert not holes.look(TP0, committed, None, in_flight=False, behind=True)
    for _ in range(5):  # caught up, or an event of it being folded
        assert not holes.look(TP0, 44, None, in_flight=False, behind=False)
        assert not holes.look(TP0, 44, 45, in_flight=True, behind=True)
    assert holes.take() == {}


def test_acks_below_the_committed_offset_are_dropped() -> None:
    """A revoked partition's late acks come back with it; left there they hide a hole (the
    watch takes the lowest ack for the first one after the committed offset)."""
    consumer = _consumer()
    consumer._committed_offset[TP0] = 20
    consumer._acked[TP0] = [5, 6, 22]
    consumer._acked_index[TP0].update({5, 6, 22})
    consumer._drop_stale_acks(TP0)
    assert consumer._acked[TP0] == [22]
    assert consumer._acked_index[TP0] == {22}
    assert first_hole(20, consumer._acked[TP0]) == 20


class _Fetcher:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def stop(self) -> None:
        self.calls.append("stop")

    def service_reset(self) -> None:
        self.calls.append("reset")

    async def maybe_start(self) -> None:
        self.calls.append("start")


def test_a_fetcher_silent_with_the_flow_on_is_restarted(monkeypatch: Any) -> None:
    """Seen in CI: recovery resumed the flow and nothing fetched for minutes."""
    from stream.worker import consumer as module

    consumer = _consumer()
    fetcher = _Fetcher()
    monkeypatch.setattr(type(consumer.app), "_fetcher", fetcher, raising=False)
    consumer.flow_active = False
    consumer._last_fetch -= 10 * module.FETCH_STALL_S
    assert not asyncio.run(consumer.restart_stalled_fetcher())  # flow off: the clock restarts
    consumer.flow_active = True
    assert not asyncio.run(consumer.restart_stalled_fetcher())
    consumer._last_fetch -= module.FETCH_STALL_S + 1
    assert asyncio.run(consumer.restart_stalled_fetcher())
    assert fetcher.calls == ["stop", "reset", "start"]
    assert consumer.fetcher_restarts == 1
    assert not asyncio.run(consumer.restart_stalled_fetcher())  # fetched "now" again


@dataclass(frozen=True)
class _Record:
    offset: int


class _State:
    """aiokafka's per-partition state: the fetch position (a new object per assignment)."""

    def __init__(self, position: int) -> None:
        self._position = position


class _BufferedFetcher:
    """aiokafka's fetcher as the consumer thread sees it: buffered records per partition,
    drained in the order they were fetched, an empty partition set meaning every one, and the
    fetch position moving past what it hands over."""

    def __init__(self, records: dict[TP, list[int]]) -> None:
        self._records = {tp: [_Record(o) for o in offsets] for tp, offsets in records.items()}
        self._closed = False
        self.calls: list[tuple[set[TP], int | None]] = []
        self.states = {tp: _State(offsets[0] if offsets else 0) for tp, offsets in records.items()}
        self.seeks: list[tuple[TP, int]] = []
        self._subscriptions = self
        self.subscription = self
        self.assignment = self

    def state_value(self, tp: TP) -> _State | None:
        return self.states.get(tp)

    def fetch_context(self) -> Any:
        return contextlib.nullcontext()

    def seek_to(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))
        self.states[tp]._position = offset

    async def fetched_records(
        self, partitions: set[TP], timeout: float = 0, max_records: int | None = None
    ) -> dict[TP, list[_Record]]:
        self.calls.append((set(partitions), max_records))
        out: dict[TP, list[_Record]] = {}
        left = max_records
        for tp in list(self._records):
            if partitions and tp not in partitions:
                continue
            take = self._records[tp] if left is None else self._records[tp][:left]
            self._records[tp] = self._records[tp][len(take) :]
            if not self._records[tp]:
                del self._records[tp]
            if take:
                out[tp] = take
                self.states[tp]._position = take[-1].offset + 1
            if left is not None:
                left -= len(take)
                if left == 0:
                    break
        return out


def _fetch(consumer: PlainLogConsumer, fetcher: _BufferedFetcher, active: set[TP]) -> Any:
    aiokafka_consumer = type("C", (), {"_fetcher": fetcher, "_closed": False})()
    thread = consumer._thread
    thread._ensure_consumer = lambda: aiokafka_consumer  # type: ignore[method-assign]
    got = asyncio.run(thread._fetch_records(aiokafka_consumer, active, timeout=0.1))
    return got


def _offsets(records: dict[TP, list[_Record]]) -> dict[TP, list[int]]:
    return {tp: [r.offset for r in batch] for tp, batch in records.items()}


def test_a_fetch_bounds_the_input_records_and_takes_every_item_event() -> None:
    from stream.worker.consumer import INPUT_RECORDS_PER_FETCH

    consumer = _consumer()
    consumer.app.input_topics = frozenset({TP0.topic})
    consumer.resume_flow()
    items = TP("app-item-events", 0)
    backlog = 3 * INPUT_RECORDS_PER_FETCH
    # The input partition was fetched first: drained in order, it would hand over every
    # buffered input record before the first item event.
    fetcher = _BufferedFetcher({TP0: list(range(backlog)), items: [1, 2, 3]})
    got = _offsets(_fetch(consumer, fetcher, {TP0, items}))
    assert got[items] == [1, 2, 3]
    assert got[TP0] == list(range(INPUT_RECORDS_PER_FETCH))
    got = _offsets(_fetch(consumer, fetcher, {TP0, items}))
    assert set(got) == {TP0}
    assert got[TP0][0] == INPUT_RECORDS_PER_FETCH  # the rest follows in order, nothing lost
    # A set with only one kind of partition active (the inputs paused on a full buffer): the
    # other kind is never asked for with an empty set, which means "every partition".
    fetcher = _BufferedFetcher({TP0: [7, 8], items: [9]})
    assert _offsets(_fetch(consumer, fetcher, {items})) == {items: [9]}
    assert all(partitions for partitions, _ in fetcher.calls)
    assert _offsets(fetcher._records) == {TP0: [7, 8]}


CHANGELOG = TP("app-users-changelog", 0)


def test_a_batch_faust_would_not_deliver_goes_back_to_the_fetcher() -> None:
    """Seen in CI after a 3 -> 1 scale-in: a changelog batch fetched after the recovery's seek,
    dropped by Faust because its partition was not resumed yet (or the flow not on), left the
    fetch position past records the recovery then waited for, for minutes."""
    consumer = _consumer()
    consumer.resume_flow()
    fetcher = _BufferedFetcher({CHANGELOG: [0, 1, 2], TP0: [5, 6]})
    records = _fetch(consumer, fetcher, {CHANGELOG, TP0})
    assert fetcher.states[CHANGELOG]._position == 3
    # The changelog partition paused meanwhile: its batch goes back, the input's is kept.
    kept = consumer._put_back_undelivered(records, {TP0})
    assert _offsets(kept) == {TP0: [5, 6]}
    assert fetcher.seeks == [(CHANGELOG, 0)]
    assert consumer.put_back == 1
    # The flow stopped meanwhile (a rebalance began): nothing is delivered, all goes back.
    fetcher = _BufferedFetcher({CHANGELOG: [0, 1, 2]})
    records = _fetch(consumer, fetcher, {CHANGELOG})
    consumer.stop_flow()
    assert consumer._put_back_undelivered(records, {CHANGELOG}) == {}
    assert fetcher.seeks == [(CHANGELOG, 0)]


def test_a_batch_is_not_put_back_over_a_later_seek_or_a_new_assignment() -> None:
    """A seek after the fetch (the recovery's) or a rebalance's new partition state decides
    where the partition reads from; putting the batch back then could skip or repeat."""
    consumer = _consumer()
    consumer.resume_flow()
    fetcher = _BufferedFetcher({CHANGELOG: [20, 21]})
    records = _fetch(consumer, fetcher, {CHANGELOG})
    fetcher.states[CHANGELOG]._position = 0  # sought to the log start since
    assert consumer._put_back_undelivered(records, set()) == {}
    fetcher.states[CHANGELOG] = _State(22)  # same position, a new assignment
    assert consumer._put_back_undelivered(records, set()) == {}
    assert fetcher.seeks == [] and consumer.put_back == 0
    # Delivered batches stay, whatever happened to the position.
    assert _offsets(consumer._put_back_undelivered(records, {CHANGELOG})) == {CHANGELOG: [20, 21]}


def test_the_worker_consumer_lets_the_broker_hold_an_empty_fetch_briefly() -> None:
    """One fetch is in flight per broker: Faust's 1,500 ms held item events back that long."""
    from stream.worker.consumer import FETCH_MAX_WAIT_MS

    consumer = _consumer()

    async def create() -> Any:
        return consumer._thread._create_worker_consumer(consumer.transport)

    client = asyncio.run(create())
    assert client._fetch_max_wait_ms == FETCH_MAX_WAIT_MS
    assert FETCH_MAX_WAIT_MS < 1500  # what Faust sets
