"""One event at a time: the records a run yields and how a user's mood, clicks, reviews and chats
come about (``EventModel``, the base of ``Simulation``)."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate
from random import Random
from typing import Any

from stream.sim.catalog import Item, make_catalog
from stream.sim.common import CATEGORIES, KINDS, SPELLS, clip, pick
from stream.sim.config import SimConfig
from stream.sim.phrases import CATEGORY_BANKS, MOODS
from stream.sim.text import chat_text, review_text
from stream.sim.users import User, UserState, make_users

# Behaviour constants: tuned so purchases are a few percent of clicks, ratings skew positive like
# real shops, and about a fifth of a user's events fall inside a mood spell.
_EXPLORE_CLICK = 0.25  # share of impressions drawn by popularity alone (a feed, not the user)
_EXPLORE_REVIEW = 0.15  # reviews of items bought outside the stream, drawn by popularity alone
_CONTINUE = 0.7  # chance a click event continues the user's current funnel
_ADVANCE = (0.8, 0.65, 0.75)  # view->click, click->add_to_cart, add_to_cart->purchase (x appeal)
_SPELL_START = 0.03  # per user event
_SPELL_MEAN_EVENTS = 10.0
_SPELL_WEIGHTS = (0.3, 0.25, 0.15, 0.3)  # sad, angry, fearful, joyful
_SPELL_TARGET = {"sad": -0.75, "angry": -0.65, "fearful": -0.45, "joyful": 0.8}
_WORDING_NOISE = 0.1  # chats worded in a random mood (people are not always legible)
_RATING_CUTS = (0.28, 0.4, 0.52, 0.65)  # observed satisfaction -> 1..5 stars
_SESSION_GAP_MS = 30 * 60 * 1000


@dataclass(frozen=True, slots=True)
class Latent:
    """The hidden causes of one event, for tests: what a perfect model would recover."""

    mood: str  # one of phrases.MOODS
    valence: float
    spell: str | None
    category: str | None = None  # of the item involved, if any
    fit: float | None = None  # the user's taste for that category relative to their favourite
    satisfaction: float | None = None  # reviews: taste fit x quality, before noise


@dataclass(frozen=True, slots=True)
class SimEvent:
    kind: str  # reviews | chats | clicks
    value: dict[str, Any]  # valid against schemas/<kind>.v1.json
    latent: Latent


@dataclass(frozen=True, slots=True)
class Step:
    """One event in the making (who, when, in what mood): what every kind's step reads."""

    rng: Random
    u: int
    state: UserState
    ts: int
    event_id: str
    mood: str
    spell: str | None

    def value(self, user_id: str, **fields: Any) -> dict[str, Any]:
        """A topic value: event_id and user_id first, ts last, as the schemas list them."""
        return {"event_id": self.event_id, "user_id": user_id, **fields, "ts": self.ts}

    def latent(self, *causes: Any) -> Latent:
        """The hidden causes: this step's mood and the user's valence, then the kind's own."""
        return Latent(self.mood, self.state.valence, self.spell, *causes)


@dataclass(frozen=True, slots=True)
class Message:
    """A value as it goes on the wire; ``bad`` names the dead-letter kind it must cause."""

    kind: str
    key: bytes
    value: bytes
    ts: int
    bad: str | None = None


class EventModel:
    """A catalog and users, with the lookups and per-event steps a simulation run needs."""

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        catalog: list[Item] | None = None,
        users: list[User] | None = None,
    ) -> None:
        self.config = config or SimConfig()
        cfg = self.config
        self.catalog = (
            catalog
            if catalog is not None
            else make_catalog(cfg.seed, cfg.n_items, zipf_s=cfg.zipf_s)
        )
        self.users = (
            users
            if users is not None
            else make_users(cfg.seed, cfg.n_users, concentration=cfg.taste_concentration)
        )
        self._cat_index = {c: i for i, c in enumerate(CATEGORIES)}
        self._item_cat = [self._cat_index[item.category] for item in self.catalog]
        members: list[list[int]] = [[] for _ in CATEGORIES]
        for index, cat in enumerate(self._item_cat):
            members[cat].append(index)
        self._members = members
        self._member_cum = [
            list(accumulate(self.catalog[i].popularity for i in m)) if m else [0.0] for m in members
        ]
        self._cat_pop_cum = list(accumulate(c[-1] for c in self._member_cum))
        self._taste_cum = [list(accumulate(u.taste)) for u in self.users]
        self._taste_max = [max(u.taste) for u in self.users]
        self._user_cum = list(accumulate(u.activity for u in self.users))
        shares = cfg.mix.shares()
        self._kind_cum = list(accumulate(shares[k] for k in KINDS))
        self._states: list[UserState] = []
        self._counts: Counter[str] = Counter()
        self._last_ts: int | None = None

    def _step_mood(self, rng: Random, u: int, state: UserState, ts: int) -> tuple[str, str | None]:
        """Mean-reverting walk on valence, with spells that pull it to a mood for a while."""
        user = self.users[u]
        if state.spell is None and rng.random() < _SPELL_START:
            kind = SPELLS[pick(rng, list(accumulate(_SPELL_WEIGHTS)))]
            state.spell = {"kind": kind, "start_ts": ts, "end_ts": ts, "events": 0}
            state.spell_left = 1 + int(rng.expovariate(1.0 / (_SPELL_MEAN_EVENTS - 1)))
            state.spells.append(state.spell)
        v = state.valence
        if state.spell is not None:
            v += 0.45 * (_SPELL_TARGET[state.spell["kind"]] - v) + rng.gauss(0, user.volatility / 2)
        else:
            v += 0.15 * (user.base_valence - v) + rng.gauss(0, user.volatility)
        v = state.valence = clip(v, -1.0, 1.0)
        spell: str | None = None
        if state.spell is not None:
            spell = mood = state.spell["kind"]
            state.spell["end_ts"] = ts
            state.spell["events"] += 1
            state.spell_left -= 1
            if state.spell_left <= 0:
                state.spell = None
        elif v >= 0.4:
            mood = "joyful"
        elif v <= -0.3:
            mood = "angry" if rng.random() < user.anger_prone else "sad"
        else:
            mood = "neutral"
        state.events += 1
        state.valence_sum += v
        state.valence_min = min(state.valence_min, v)
        state.valence_max = max(state.valence_max, v)
        state.moods[mood] += 1
        return mood, spell

    def _pick_item(self, rng: Random, u: int, explore: bool) -> int:
        """Taste x popularity: a category by taste (or popularity mass), then an item in it."""
        cat = pick(rng, self._cat_pop_cum if explore else self._taste_cum[u])
        members = self._members[cat]
        if not members:  # a caller-supplied catalog may leave a category empty
            return pick(rng, list(accumulate(i.popularity for i in self.catalog)))
        return members[pick(rng, self._member_cum[cat])]

    def _fit(self, u: int, item: int) -> float:
        return self.users[u].taste[self._item_cat[item]] / self._taste_max[u]

    def _quality(self, u: int, item: int) -> float:
        """The item's quality as this user feels it (a quality-blind user sees 0.65 everywhere)."""
        sensitivity = self.users[u].quality_sensitivity
        return sensitivity * self.catalog[item].quality + (1 - sensitivity) * 0.65

    def _appeal(self, u: int, item: int, valence: float) -> float:
        return (
            self._fit(u, item) ** 0.7 * (0.4 + 0.6 * self._quality(u, item)) * (1 + 0.2 * valence)
        )

    def _click(self, step: Step) -> tuple[dict[str, Any], Latent]:
        rng, u, state = step.rng, step.u, step.state
        action = ""
        item = -1
        if state.focus is not None and rng.random() < _CONTINUE:
            item, stage = state.focus
            if rng.random() < _ADVANCE[stage] * self._appeal(u, item, state.valence):
                action = ("click", "add_to_cart", "purchase")[stage]
                state.focus = None if action == "purchase" else (item, stage + 1)
                if action == "purchase":
                    state.pending.append(item)
                    state.purchases.append(self.catalog[item].item_id)
            else:
                state.focus = None  # lost interest: this event is a fresh impression
        if not action:
            item = self._pick_item(rng, u, explore=rng.random() < _EXPLORE_CLICK)
            fit = self._fit(u, item)
            p_skip = 0.05 + 0.85 * (1 - fit) ** 1.5 + 0.1 * max(0.0, -state.valence)
            if rng.random() < p_skip:
                action = "skip"
            else:
                action = "view"
                state.focus = (item, 0)
        fit = self._fit(u, item)
        value = step.value(self.users[u].user_id, item_id=self.catalog[item].item_id, action=action)
        dwell = _dwell(rng, action, fit)
        if dwell is not None:
            value["dwell_ms"] = dwell
        return value, step.latent(CATEGORIES[self._item_cat[item]], fit)

    def _review(self, step: Step) -> tuple[dict[str, Any], Latent]:
        rng, u, state = step.rng, step.u, step.state
        if state.pending:
            item = state.pending.popleft()
        else:  # bought before the stream started (or elsewhere)
            item = self._pick_item(rng, u, explore=rng.random() < _EXPLORE_REVIEW)
        it = self.catalog[item]
        fit = self._fit(u, item)
        satisfaction = fit**0.5 * self._quality(u, item)
        observed = clip(satisfaction + rng.gauss(0, 0.07) + 0.05 * state.valence, 0.0, 1.0)
        band = bisect_right(_RATING_CUTS, observed)
        state.reviewed.append(it.item_id)
        value = step.value(
            self.users[u].user_id, item_id=it.item_id, text=review_text(rng, band, it)
        )
        if rng.random() < 0.9:
            value["rating"] = band + 1
        return value, step.latent(it.category, fit, satisfaction)

    def _chat(self, step: Step) -> tuple[dict[str, Any], Latent]:
        rng, u, state, ts = step.rng, step.u, step.state, step.ts
        user = self.users[u]
        if state.session is None or ts - state.last_chat_ts > _SESSION_GAP_MS or rng.random() < 0.1:
            state.n_sessions += 1
            state.session = f"{self.config.prefix}{user.user_id}-s{state.n_sessions}"
        state.last_chat_ts = ts
        context = (
            state.focus[0]
            if state.focus is not None
            else (state.pending[-1] if state.pending else None)
        )
        item: int | None = None
        if context is not None and rng.random() < 0.5:
            item = context
            noun = self.catalog[item].noun
            category: str | None = self.catalog[item].category
        else:
            category = CATEGORIES[pick(rng, self._taste_cum[u])]
            noun = rng.choice(CATEGORY_BANKS[category].nouns)
        wording = step.mood if rng.random() >= _WORDING_NOISE else rng.choice(MOODS)
        value = step.value(
            user.user_id, text=chat_text(rng, wording, noun), session_id=state.session
        )
        if item is not None:
            value["item_id"] = self.catalog[item].item_id
        return value, step.latent(category)


def _dwell(rng: Random, action: str, fit: float) -> int | None:
    """Milliseconds on the page: short skips, long reads of liked items; purchases may omit it."""
    if action == "skip":
        ms = rng.uniform(150, 1500)
    elif action == "view":
        ms = rng.lognormvariate(math.log(4000 * (0.5 + fit)), 0.6)
    elif action == "click":
        ms = rng.lognormvariate(math.log(15000 * (0.5 + fit)), 0.7)
    elif action == "add_to_cart":
        ms = rng.lognormvariate(math.log(3000), 0.5)
    else:
        if rng.random() < 0.3:
            return None
        ms = rng.lognormvariate(math.log(20000), 0.5)
    return int(clip(ms, 50, 86_400_000))
