"""One event at a time: clicks, skips, ratings and spells follow the hidden causes."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

from stream.sim.simulate import (
    SimEvent,
    Simulation,
)


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
