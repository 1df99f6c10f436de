"""Replay through the worker's Processor: event-time order, dead letters counted, determinism."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stream.adapters.index import FaissItemIndex, build_index
from stream.adapters.model_card import model_fingerprint
from stream.adapters.sentiment import OnnxSentimentModel
from stream.cli import cli
from stream.contract.decoding import validate_value
from stream.errors import BrokerError, ConfigError
from stream.offline.replay import (
    Bound,
    RawRecord,
    Replay,
    dataset_records,
    parse_bound,
    publish_order,
    read_topics,
)
from stream.settings import Settings
from stream.worker.processor import Processor
from tests.fixtures.tiny_model import build_tiny_model

T0 = 1_700_000_000_000
ITEMS = {
    "g1": "guitar strings",
    "g2": "guitar sound",
    "g3": "guitar product",
    "m1": "movie day",
    "m2": "movie very",
    "m3": "movie my",
}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", max_length=16)


@pytest.fixture(scope="module")
def index_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = OnnxSentimentModel.load(tiny_dir)
    out = tmp_path_factory.mktemp("index") / "items"
    emb = model.predict(list(ITEMS.values())).embedding
    build_index(list(ITEMS), emb, out, model_fingerprint(tiny_dir))
    return out


@pytest.fixture(scope="module")
def settings(tiny_dir: Path, index_dir: Path) -> Settings:
    return Settings(model_dir=str(tiny_dir), index_dir=str(index_dir), batch_size=4)


def processor(settings: Settings) -> Processor:
    model = OnnxSentimentModel.from_settings(settings)
    return Processor(settings, model, FaissItemIndex.load(settings.index_dir))


def review(n: int, user: str, item: str, text: str, rating: int | None = None) -> RawRecord:
    value: dict[str, Any] = {
        "event_id": f"r{n}",
        "user_id": user,
        "item_id": item,
        "text": text,
        "ts": T0 + n * 1000,
    }
    if rating is not None:
        value["rating"] = rating
    return RawRecord("reviews", json.dumps(value).encode(), user.encode(), offset=n)


def stream_records() -> list[RawRecord]:
    recs = [
        review(1, "ann", "g1", "great guitar strings", 5),
        review(2, "bob", "m1", "awful movie", 1),
        review(3, "ann", "g2", "wonderful sound", 5),
        RawRecord(
            "clicks",
            json.dumps(
                {
                    "event_id": "c4",
                    "user_id": "bob",
                    "item_id": "m2",
                    "action": "purchase",
                    "ts": T0 + 4000,
                }
            ).encode(),
            b"bob",
        ),
        RawRecord(
            "chats",
            json.dumps(
                {
                    "event_id": "h5",
                    "user_id": "ann",
                    "text": "i am happy",
                    "session_id": "s",
                    "ts": T0 + 5000,
                }
            ).encode(),
            b"ann",
        ),
        review(6, "cat", "m3", "the movie was good", 4),
        review(7, "bob", "g3", "bad product", 2),
    ]
    bad = [
        RawRecord("reviews", b"{not json", b"ann"),
        RawRecord("reviews", json.dumps({"user_id": "ann"}).encode(), b"ann"),
        dataclasses.replace(review(8, "dan", "g1", "good", 5), key=b"someone-else"),
        review(9, "eve", "nope", "good"),  # not in the index
        review(1, "ann", "g1", "great guitar strings", 5),  # a redelivery
    ]
    return recs + bad


def test_parse_bound() -> None:
    assert parse_bound("o:42") == Bound(offset=42)
    assert parse_bound("1700000000000") == Bound(ts=1_700_000_000_000)
    assert parse_bound("2023-11-14T22:13:20Z") == Bound(ts=1_700_000_000_000)
    assert parse_bound(None) == Bound()
    for bad in ("o:x", "yesterday"):
        with pytest.raises(ConfigError):
            parse_bound(bad)


def test_replay_counts_events_dead_letters_and_recommends(settings: Settings) -> None:
    recs: list[dict[str, Any]] = []
    summary = Replay(processor(settings), settings, on_recommendation=recs.append).run(
        stream_records()
    )
    assert dict(summary.events) == {"reviews": 5, "clicks": 1, "chats": 1}
    assert dict(summary.dead_letters) == {"malformed_json": 1, "schema": 2, "unknown_item": 1}
    assert summary.duplicates == 1
    assert summary.read == len(stream_records())
    assert summary.users == 3 and summary.items == 6
    assert summary.recommendations == len(recs) > 0
    for value in recs:
        validate_value("recommendations", value)  # what the worker would publish
        assert value["latency_ms"] == 0.0  # event time is the clock
    ann = [r for r in recs if r["user_id"] == "ann"][-1]
    assert not {"g1", "g2"} & {i["item_id"] for i in ann["items"]}  # her reviewed items
    assert summary.first_ts == T0 + 1000 and summary.last_ts == T0 + 9000


def test_replay_folds_in_event_time_order_whatever_the_arrival(settings: Settings) -> None:
    def run(records: list[RawRecord]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        out: list[dict[str, Any]] = []
        replay = Replay(processor(settings), settings, on_recommendation=out.append)
        replay.run(records)
        return out, replay.users

    ordered = stream_records()
    shuffled = ordered[:]
    random.Random(3).shuffle(shuffled)
    a, users_a = run(ordered)
    b, users_b = run(shuffled)
    assert users_a == users_b
    assert a == b


def test_erasure_removes_the_user(settings: Settings) -> None:
    erase = RawRecord("erasure", json.dumps({"user_id": "ann", "ts": T0 + 9000}).encode(), b"ann")
    replay = Replay(processor(settings), settings)
    summary = replay.run([*stream_records(), erase])
    assert summary.erased == 1 and "ann" not in replay.users


def test_dataset_records_filter_by_event_time(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    rows = [
        {
            "reviewerID": f"u{i}",
            "asin": "g1",
            "overall": 5.0,
            "summary": "great",
            "reviewText": "guitar",
            "unixReviewTime": 1_700_000_000 + i,
        }
        for i in range(5)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records, note = dataset_records(
        path, Bound(ts=T0 + 1000), Bound(ts=T0 + 3000), max_text_bytes=8192
    )
    assert [r.key for r in records] == [b"u1", b"u2"] and "5 events" in note
    assert json.loads(records[0].value or b"")["event_id"] == "u1:g1:1700000001"
    with pytest.raises(ConfigError, match="offset"):
        dataset_records(path, Bound(offset=1), Bound(), max_text_bytes=8192)


def test_publish_order_is_the_fold_order(settings: Settings) -> None:
    records = stream_records()
    ordered = list(publish_order(list(reversed(records)), settings))
    assert {r.value for r in ordered[:2]} == {b"{not json", b'{"user_id": "ann"}'}
    assert len(ordered) == len(records)
    times = [json.loads(r.value or b"")["ts"] for r in ordered[2:]]
    assert times == sorted(times)


def test_cli_replays_a_dataset(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "reviews.json"
    rows = [
        {
            "reviewerID": "A",
            "asin": "g1",
            "overall": 5.0,
            "summary": "great",
            "reviewText": "guitar strings",
            "unixReviewTime": 1_700_000_000,
        },
        {
            "reviewerID": "A",
            "asin": "m1",
            "overall": 1.0,
            "summary": "awful",
            "reviewText": "movie day",
            "unixReviewTime": 1_700_000_100,
        },
        {
            "reviewerID": "B",
            "asin": "unknown",
            "overall": 4.0,
            "summary": "good",
            "reviewText": "x",
            "unixReviewTime": 1_700_000_050,
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "recs.jsonl"
    args = [
        "replay",
        "--dataset",
        str(path),
        "--out",
        str(out),
        "--model-dir",
        settings.model_dir,
        "--index-dir",
        settings.index_dir,
        "--no-progress",
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["events"] == {"reviews": 2}
    assert summary["dead_letters"] == {"unknown_item": 1}
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == summary["recommendations"] == 2
    assert [x["trigger_event_id"] for x in lines] == ["A:g1:1700000000", "A:m1:1700000100"]


def test_output_does_not_depend_on_the_batch_size(settings: Settings) -> None:
    def run(batch_size: int) -> list[tuple[str, list[str]]]:
        s = settings.replace(batch_size=batch_size)
        out: list[dict[str, Any]] = []
        Replay(processor(s), s, on_recommendation=out.append).run(stream_records())
        return [(r["trigger_event_id"], [i["item_id"] for i in r["items"]]) for r in out]

    one = run(1)
    assert len(one) == 7  # every folded event triggers its own recommendation
    assert run(3) == one == run(64)


def test_an_unreachable_broker_is_a_broker_error(settings: Settings) -> None:
    with pytest.raises(BrokerError, match="cannot reach the broker"):
        asyncio.run(read_topics(settings.replace(broker="kafka://127.0.0.1:1"), Bound(), Bound()))


def test_cli_stops_early_when_the_index_knows_none_of_the_items(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stream.cli import main

    path = tmp_path / "reviews.json"
    rows = [
        {
            "reviewerID": "A",
            "asin": f"other-{n}",
            "overall": 5.0,
            "summary": "great",
            "reviewText": "fine",
            "unixReviewTime": 1_700_000_000 + n,
        }
        for n in range(3)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "recs.jsonl"
    flags = ["--model-dir", settings.model_dir, "--index-dir", settings.index_dir]
    with pytest.raises(SystemExit) as exit_:
        main(["replay", "--dataset", str(path), "--out", str(out), "--no-progress", *flags])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("moodstream: error: index ")
    assert "knows none of the 3 item(s) the records name" in last
    assert not out.exists()
