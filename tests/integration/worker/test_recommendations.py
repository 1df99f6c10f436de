"""Recommendations on the real broker follow what users say: negative reviews of a category push it
out, a positive review pulls similar items up, and a sad or angry chat shifts the emotion state and
steers the ranking toward well-loved items (the default ranker's intent)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.contract.topics import ALL_KINDS
from stream.devtools.demo_index import DEMO_ITEMS, DEMO_SEED
from stream.settings import Settings
from stream.sim.simulate import make_catalog
from tests.integration.harness import (
    WorkerProcess,
    consume,
    create_topics,
    produce,
    run,
    worker_env,
)
from tests.integration.worker.test_worker import NOW

pytestmark = pytest.mark.integration
CATALOG = make_catalog(DEMO_SEED, DEMO_ITEMS)


def by_category(category: str) -> list[str]:
    return [i.item_id for i in CATALOG if i.category == category]


def category_of(item_id: str) -> str:
    return next(i.category for i in CATALOG if i.item_id == item_id)


@pytest.fixture
def live(kafka_broker: Any, unique_name: str, tmp_path: Path) -> Iterator[tuple[Settings, str]]:
    env = worker_env(kafka_broker.url, unique_name, tmp_path)
    settings = Settings(topic_prefix=f"{unique_name}.", app_id=f"{unique_name}-app")
    run(create_topics(kafka_broker.bootstrap, [settings.topic(k) for k in ALL_KINDS]))
    proc = WorkerProcess(env, tmp_path / "worker.log")
    proc.start()
    yield settings, kafka_broker.bootstrap
    proc.stop()


def latest(boot: str, s: Settings, trigger: str) -> dict[str, Any]:
    recs = run(
        consume(
            boot,
            s.topic("recommendations"),
            timeout=60,
            until=lambda r: any(v["trigger_event_id"] == trigger for _, v in r),
        )
    )
    found = [v for _, v in recs if v["trigger_event_id"] == trigger]
    assert found, f"no recommendation triggered by {trigger}"
    return found[-1]


def on_board(s: Settings, items: list[str], timeout: float = 30.0) -> None:
    """Item state reaches the board a bounded delay after the reviews (README "Scale-out"):
    wait until the items changelog has the items, then for the feed and the popular list."""
    from tests.integration.faults.checker import read_changelog

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(items) <= set(run(read_changelog(s, "items"))):
            time.sleep(1.5)  # the board feed's poll and the ranker's one-second popular cache
            return
        time.sleep(0.3)
    raise AssertionError(f"items not on the changelog after {timeout}s")


def test_negative_reviews_push_a_category_out_and_a_positive_one_pulls_similar_items(
    live: tuple[Settings, str],
) -> None:
    s, boot = live
    amps, pedals = by_category("amps"), by_category("pedals")
    clicks = [
        {
            "event_id": f"k{i}",
            "user_id": "u1",
            "item_id": amps[i],
            "action": "click",
            "dwell_ms": 30000,
            "ts": NOW + i,
        }
        for i in range(3)
    ]
    run(produce(boot, s.topic("clicks"), clicks, key="u1"))
    before = latest(boot, s, "k2")
    assert sum(category_of(i["item_id"]) == "amps" for i in before["items"]) >= 6

    hate = "Terrible amp. It broke after a week, the hum is unbearable and I regret buying it."
    reviews = [
        {
            "event_id": f"r{i}",
            "user_id": "u1",
            "item_id": amps[i],
            "text": hate,
            "rating": 1,
            "ts": NOW + 10 + i,
        }
        for i in range(3)
    ]
    reviews.append(
        {
            "event_id": "r9",
            "user_id": "u1",
            "item_id": pedals[0],
            "rating": 5,
            "text": "Wonderful pedal, lush sound, I absolutely love it.",
            "ts": NOW + 20,
        }
    )
    run(produce(boot, s.topic("reviews"), reviews, key="u1"))
    after = latest(boot, s, "r9")
    cats = [category_of(i["item_id"]) for i in after["items"]]
    assert cats.count("amps") <= 1, cats
    assert cats.count("pedals") >= 6, cats
    assert after["emotion"]["valence"] < before["emotion"]["valence"] + 0.5


def test_sad_or_angry_chat_shifts_emotion_and_favours_well_loved_items(
    live: tuple[Settings, str],
) -> None:
    s, boot = live
    drums = by_category("drums")
    loved, panned = drums[:3], drums[3:6]
    # Other users' reviews give the items their affect.
    reviews = []
    for n, item in enumerate(loved + panned):
        good = item in loved
        for r in range(3):
            reviews.append(
                {
                    "event_id": f"a{n}-{r}",
                    "user_id": f"crowd{r}",
                    "item_id": item,
                    "ts": NOW + n,
                    "rating": 5 if good else 1,
                    "text": "Fantastic kit, sounds amazing, I love it."
                    if good
                    else "Awful, cheap and broken, a total waste of money.",
                }
            )
    run(produce(boot, s.topic("reviews"), reviews))
    latest(boot, s, reviews[-1]["event_id"])
    on_board(s.replace(broker=boot), loved + panned)
    # Our user likes drums (views of other drum items) and is calm.
    views = [
        {
            "event_id": f"v{i}",
            "user_id": "u2",
            "item_id": drums[6 + i],
            "action": "click",
            "dwell_ms": 30000,
            "ts": NOW + 100 + i,
        }
        for i in range(3)
    ]
    run(produce(boot, s.topic("clicks"), views, key="u2"))
    calm = latest(boot, s, "v2")
    chat = {
        "event_id": "c1",
        "user_id": "u2",
        "session_id": "s1",
        "ts": NOW + 200,
        "text": "I am so angry and sad, my band broke up and everything is ruined.",
    }
    run(produce(boot, s.topic("chats"), [chat], key="u2"))
    upset = latest(boot, s, "c1")

    assert upset["emotion"]["valence"] < calm["emotion"]["valence"] - 0.2
    assert upset["emotion"]["dominant"] in {"anger", "sadness", "disgust", "fear"}

    def boost(rec: dict[str, Any], items: list[str]) -> float:
        """How much affect lifts these items above their plain relevance (mean)."""
        rows = [i for i in rec["items"] if i["item_id"] in items]
        return sum(i["score"] - i["relevance"] for i in rows) / max(len(rows), 1)

    loved_calm, loved_upset = boost(calm, loved), boost(upset, loved)
    assert any(i["item_id"] in loved for i in upset["items"])
    assert loved_upset > loved_calm  # affect weighs more when the user is upset
    rank = [i["item_id"] for i in upset["items"]]
    panned_shown = [rank.index(p) for p in panned if p in rank]
    loved_shown = [rank.index(p) for p in loved if p in rank]
    assert not panned_shown or min(loved_shown) < min(panned_shown)
