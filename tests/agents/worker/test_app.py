"""The Faust agents without a broker (``agent.test_context()``, ``memory://``): the wiring of
decode -> processor -> send, with outbound sends captured."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stream.adapters.index import FaissItemIndex, build_index
from stream.adapters.sentiment import OnnxSentimentModel
from stream.core.coalesce import Coalescer
from stream.settings import Settings
from stream.worker.app import make_app
from tests.fixtures.tiny_model import build_tiny_model


@pytest.fixture
def app(tmp_path: Path) -> Any:
    model_dir = build_tiny_model(tmp_path / "model")
    rng = np.random.default_rng(1)
    ids = [f"item-{i}" for i in range(20)]
    build_index(ids, rng.normal(size=(20, 384)).astype(np.float32), tmp_path / "index", "sha")
    settings = Settings(
        model_dir=str(model_dir),
        index_dir=str(tmp_path / "index"),
        web_port=0,
        data_dir=str(tmp_path / "data"),
        batch_wait_ms=1,
        recommend_interval_ms=0,
        app_id="agent-test",
    )
    model = OnnxSentimentModel.from_settings(settings)
    return make_app(settings, model=model, index=FaissItemIndex.load(tmp_path / "index"))


async def test_user_events_agent_sends_recommendations_and_dead_letters(
    app: Any, monkeypatch: Any
) -> None:
    sent: list[tuple[str, Any]] = []

    async def capture(self: Any, *args: Any, key: Any = None, value: Any = None, **kw: Any) -> None:
        sent.append((self.get_topic_name(), value))

    monkeypatch.setattr(type(app.app.topic("x")), "send", capture)
    user_events = app.user_events
    good = {
        "event_id": "k1",
        "user_id": "u1",
        "item_id": "item-3",
        "action": "purchase",
        "ts": 1_000,
    }
    async with user_events.test_context() as agent:
        await put(agent, "moodstream.clicks.v1", b"{broken", 0)
        await put(agent, "moodstream.clicks.v1", json.dumps(good).encode(), 1)
        for _ in range(250):  # the folding task sends on its own turn of the event loop
            if any(name.endswith("recommendations.v1") for name, _ in sent):
                break
            await asyncio.sleep(0.02)
    assert sent, "nothing was sent"
    kinds = {name: value for name, value in sent}
    assert any(name.endswith("recommendations.v1") for name, _ in sent)
    assert kinds.get("moodstream.deadletter.v1", {}).get("error_kind") == "malformed_json"


async def test_a_fold_that_fails_crashes_the_app(app: Any, monkeypatch: Any) -> None:
    """An exception while folding must stop the worker (its unacknowledged events then go to a
    successor), not leave the agent consuming into a dead pipeline."""
    import asyncio

    crashed: list[BaseException] = []

    async def crash(reason: BaseException) -> None:
        crashed.append(reason)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("fold bug")

    monkeypatch.setattr(app.app, "crash", crash)
    monkeypatch.setattr(app.processor, "fold_batch", broken)
    user_events = app.user_events
    good = {"event_id": "k1", "user_id": "u1", "item_id": "item-3", "action": "view", "ts": 1}
    async with user_events.test_context() as agent:
        await put(agent, "moodstream.clicks.v1", json.dumps(good).encode(), 0)
        for _ in range(100):
            if crashed:
                break
            await asyncio.sleep(0.02)
    assert [str(e) for e in crashed] == ["fold bug"]


async def put(agent: Any, topic: str, value: bytes, offset: int) -> None:
    """``agent.put`` with the source topic set: the agent reads several topics."""
    message = agent.to_message(b"u1", value, offset=offset)
    message.topic = topic
    channel = agent.stream().channel
    await channel.put(await channel.decode(message))
    async with agent.new_value_processed:
        await agent.new_value_processed.wait()
    if agent._crash_reason:
        raise agent._crash_reason


def test_coalescer_holds_back_and_hands_out_the_latest() -> None:
    c = Coalescer(interval_ms=100)
    assert c.offer("u", "e1", 1, now=1000)
    assert not c.offer("u", "e2", 2, now=1050)
    assert not c.offer("u", "e3", 3, now=1060)
    assert c.due(1090) == []
    assert c.due(1100) == [("u", "e3", 3)]
    assert c.offer("v", "x", 1, now=1100)
    c.forget("v")
    assert c.offer("v", "y", 2, now=1101)


async def test_a_failing_fold_reaches_the_agent_instead_of_stalling_it() -> None:
    """The agent hands pieces to a folding task through a bounded queue; if that task dies, the
    next hand-over raises its error (Faust then crashes the worker) rather than waiting forever
    on a queue nobody drains."""
    import asyncio

    from stream.worker.pipeline import Piece, push

    loop = asyncio.get_running_loop()

    def piece() -> Piece:
        done: asyncio.Future[Any] = loop.create_future()
        done.set_result(None)
        return Piece([], done, [])

    queue: asyncio.Queue[Piece] = asyncio.Queue(maxsize=1)
    alive: asyncio.Future[None] = loop.create_future()
    await push(queue, piece(), alive)  # room: returns at once
    assert queue.qsize() == 1

    async def fold_then_fail() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("fold failed")

    folder = asyncio.ensure_future(fold_then_fail())
    with pytest.raises(ValueError, match="fold failed"):
        await asyncio.wait_for(push(queue, piece(), folder), timeout=5)  # full queue
    alive.cancel()


def test_the_worker_model_threads_leave_one_core_to_the_event_loop() -> None:
    from stream.worker.pipeline import model_threads

    assert [model_threads(0, 1, cores) for cores in (1, 2, 16)] == [1, 1, 15]
    assert [model_threads(0, 2, cores) for cores in (1, 2, 3, 16)] == [1, 1, 1, 7]
    assert model_threads(3, 2, 16) == 3  # configured: as given


def test_the_topics_the_worker_prepares_are_the_ones_faust_uses(app: Any) -> None:
    """``worker_topics`` names Faust's internal topics by its conventions; this pins them to the
    made app, so a rename in either place cannot leave a topic to be created by Faust alone."""
    from faust.assignor.leader_assignor import LeaderAssignor

    from stream.contract.topics import worker_topics

    planned = {s.name: s for s in worker_topics(app.settings)}
    faust_app = app.app
    used = {
        app.users.changelog_topic.get_topic_name(),
        app.items.changelog_topic.get_topic_name(),
        app.pipeline.outputs.item_events.get_topic_name(),
        *app.user_events.channel.topics,
        LeaderAssignor(faust_app)._leader_topic_name,
    }
    assert used <= set(planned)
    for table in (app.users, app.items):
        spec = planned[table.changelog_topic.get_topic_name()]
        assert dict(spec.config)["cleanup.policy"] == "compact"
        assert spec.partitions == table.partitions == app.settings.partitions
    conf = faust_app.conf
    assert conf.web_host == "127.0.0.1"
    assert not conf.web_tables_enabled and not conf.web_router_enabled
