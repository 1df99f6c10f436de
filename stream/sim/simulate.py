"""Seeded simulation of a music-gear shop: a catalog, users with latent tastes and drifting moods,
and a time-ordered stream of reviews, chats and clicks that validate against the topic schemas.

It exists so the demo, load benchmarks and tests have data whose hidden causes are known:
``Simulation.truth()`` says what each user really likes, so a test can check that the recommender
recovers it better than popularity. Pure: no Kafka, no files, no wall clock; the same seed gives
the same catalog, users and events.

Randomness comes in independent streams (catalog, users, events, clock, bad values), so the catalog
does not change with the number of users, ``rate`` changes only timestamps, and ``bad_rate`` only
adds values between otherwise identical events.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from random import Random
from typing import Any

from stream.errors import ConfigError
from stream.sim.phrases import (
    BRANDS,
    CATALOG_DETAILS,
    CATALOG_INTROS,
    CATEGORY_BANKS,
    CHAT_TAILS,
    CHAT_TEMPLATES,
    MOODS,
    REVIEW_CLOSERS,
    REVIEW_GENERIC_BAD,
    REVIEW_GENERIC_GOOD,
    REVIEW_OPENERS,
    REVIEW_STORIES,
)

KINDS: tuple[str, ...] = ("reviews", "chats", "clicks")
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_BANKS)
ACTIONS: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase", "skip")
BAD_KINDS: tuple[str, ...] = ("malformed_json", "unknown_action", "oversize", "encoding", "schema")
SPELLS: tuple[str, ...] = ("sad", "angry", "fearful", "joyful")
DEFAULT_START_MS = 1_764_100_000_000  # 2025-11-25T19:46:40Z, a fixed start keeps files reproducible
DEFAULT_RATE = 50.0
MAX_TS = 32_503_680_000_000  # the schemas' upper bound on ts
_ID_LETTER = {"reviews": "r", "chats": "c", "clicks": "k"}

# Behaviour constants: tuned so purchases are a few percent of clicks, ratings skew positive like
# real shops, and about a fifth of a user's events fall inside a mood spell.
_EXPLORE_CLICK = 0.25  # share of impressions drawn by popularity alone (a feed, not the user)
_EXPLORE_REVIEW = 0.15  # reviews of items bought outside the stream, drawn by popularity alone
_CONTINUE = 0.7  # chance a click event continues the user's current funnel
_ADVANCE = (0.8, 0.65, 0.75)  # view->click, click->add_to_cart, add_to_cart->purchase (x appeal)
_REVIEW_PENDING = 0.7  # chance a review goes to a user who bought in-stream and has not reviewed
_SPELL_START = 0.03  # per user event
_SPELL_MEAN_EVENTS = 10.0
_SPELL_WEIGHTS = (0.3, 0.25, 0.15, 0.3)  # sad, angry, fearful, joyful
_SPELL_TARGET = {"sad": -0.75, "angry": -0.65, "fearful": -0.45, "joyful": 0.8}
_WORDING_NOISE = 0.1  # chats worded in a random mood (people are not always legible)
_RATING_CUTS = (0.28, 0.4, 0.52, 0.65)  # observed satisfaction -> 1..5 stars
_SESSION_GAP_MS = 30 * 60 * 1000


@dataclass(frozen=True)
class Mix:
    """Shares of the event kinds; normalised, so ``clicks=6,chats=3,reviews=1`` works too."""

    clicks: float = 0.6
    chats: float = 0.25
    reviews: float = 0.15

    def __post_init__(self) -> None:
        values = (self.clicks, self.chats, self.reviews)
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise ConfigError(
                "mix shares must be finite and >= 0, got "
                f"clicks={self.clicks:g},chats={self.chats:g},reviews={self.reviews:g}"
            )
        if sum(values) <= 0:
            raise ConfigError("mix shares sum to 0: give at least one kind a positive share")

    def shares(self) -> dict[str, float]:
        total = self.clicks + self.chats + self.reviews
        return {kind: getattr(self, kind) / total for kind in KINDS}

    def __str__(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in self.shares().items())


def parse_mix(text: str) -> Mix:
    """``clicks=0.6,chats=0.25,reviews=0.15`` -> ``Mix``; missing kinds get 0."""
    values: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, number = part.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"--mix part {part!r} is not kind=share (e.g. clicks=0.6)")
        if name not in KINDS:
            raise ConfigError(f"--mix kind {name!r} is not one of {', '.join(KINDS)}")
        if name in values:
            raise ConfigError(f"--mix gives {name} twice")
        try:
            values[name] = float(number)
        except ValueError:
            raise ConfigError(f"--mix share {number.strip()!r} of {name} is not a number") from None
    if not values:
        raise ConfigError("--mix is empty: use e.g. clicks=0.6,chats=0.25,reviews=0.15")
    return Mix(**{kind: values.get(kind, 0.0) for kind in KINDS})


@dataclass(frozen=True)
class Item:
    """A catalog item and its hidden attributes (popularity sums to 1 over the catalog)."""

    item_id: str
    title: str
    text: str
    category: str
    tags: tuple[str, ...]
    noun: str  # what a customer calls it ("amp", "set of strings")
    popularity: float
    quality: float

    def catalog_row(self) -> dict[str, Any]:
        """The catalog JSON line ``stream/catalog.py`` reads."""
        return {
            "item_id": self.item_id,
            "title": self.title,
            "text": self.text,
            "category": self.category,
            "tags": list(self.tags),
        }


@dataclass(frozen=True)
class User:
    """A user's hidden traits; ``taste`` is a distribution over ``CATEGORIES``."""

    user_id: str
    taste: tuple[float, ...]
    quality_sensitivity: float  # 0: any item of a liked category pleases, 1: only good ones
    activity: float  # relative share of the event stream
    base_valence: float  # the mood the random walk reverts to
    volatility: float  # step size of the mood walk
    anger_prone: float  # chance a bad mood comes out as anger rather than sadness

    def top_categories(self, n: int = 2) -> list[str]:
        order = sorted(range(len(self.taste)), key=lambda i: (-self.taste[i], i))
        return [CATEGORIES[i] for i in order[:n]]


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. ``n_events`` and ``duration_s`` both None = an endless stream."""

    seed: int = 0
    n_users: int = 200
    n_items: int = 500
    n_events: int | None = 10_000
    duration_s: float | None = None  # of simulated time
    rate: float = DEFAULT_RATE  # events per simulated second (Poisson arrivals)
    mix: Mix = field(default_factory=Mix)
    start_ms: int = DEFAULT_START_MS
    bad_rate: float = 0.0  # chance of a bad value after each event, in ``messages()`` only
    id_prefix: str | None = None  # event/session id prefix; None = ``sim<seed>-``
    taste_concentration: float = 0.3  # Dirichlet alpha: small = few liked categories
    zipf_s: float = 0.9  # popularity exponent over the random item ranks

    def __post_init__(self) -> None:
        if self.n_users < 1:
            raise ConfigError(f"users must be >= 1, got {self.n_users}")
        if self.n_items < len(CATEGORIES):
            raise ConfigError(f"items must be >= {len(CATEGORIES)} (one per category)")
        if self.n_events is not None and self.n_events < 0:
            raise ConfigError(f"events must be >= 0, got {self.n_events}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"duration must be > 0 seconds, got {self.duration_s}")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ConfigError(f"simulated rate must be > 0 events/s, got {self.rate}")
        if not 0 <= self.start_ms < MAX_TS:
            raise ConfigError(f"start must be epoch ms in [0, {MAX_TS}), got {self.start_ms}")
        if not 0.0 <= self.bad_rate < 1.0:
            raise ConfigError(f"bad rate must be in [0, 1), got {self.bad_rate}")
        if not self.taste_concentration > 0:
            raise ConfigError("taste concentration must be > 0")
        if self.id_prefix is not None and any(ord(ch) < 0x20 for ch in self.id_prefix):
            raise ConfigError("id prefix must not contain control characters")

    @property
    def prefix(self) -> str:
        return f"sim{self.seed}-" if self.id_prefix is None else self.id_prefix


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
class Message:
    """A value as it goes on the wire; ``bad`` names the dead-letter kind it must cause."""

    kind: str
    key: bytes
    value: bytes
    ts: int
    bad: str | None = None


def _rng(seed: int, stream: str) -> Random:
    return Random(f"moodstream-sim:{seed}:{stream}")


def _pick(rng: Random, cumulative: Sequence[float]) -> int:
    return min(bisect_right(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)


def _clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _width(n: int) -> int:
    return max(4, len(str(n)))


def encode_value(value: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the form values take on the topics and in JSON-lines files."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def make_catalog(seed: int, n_items: int = 500, *, zipf_s: float = 0.9) -> list[Item]:
    """``n_items`` items over ``CATEGORIES`` (at least one each), with Zipf popularity."""
    if n_items < len(CATEGORIES):
        raise ConfigError(f"items must be >= {len(CATEGORIES)} (one per category)")
    rng = _rng(seed, "catalog")
    counts = Counter(CATEGORIES)
    weights = [rng.uniform(0.7, 1.3) for _ in CATEGORIES]
    counts.update(rng.choices(CATEGORIES, weights=weights, k=n_items - len(CATEGORIES)))
    ranks = list(range(n_items))
    rng.shuffle(ranks)
    raw_pop = [1.0 / (r + 1) ** zipf_s for r in ranks]
    total_pop = sum(raw_pop)
    items: list[Item] = []
    for category in CATEGORIES:
        bank = CATEGORY_BANKS[category]
        width = _width(counts[category])
        for number in range(1, counts[category] + 1):
            title_kind, kind, noun = rng.choice(bank.kinds)
            brand = rng.choice(BRANDS)
            model = f"{brand[0]}{rng.choice('ABCDEFGHJKLMNPRSTVX')}-{rng.randint(10, 99) * 10}"
            title = f"{brand} {model} {title_kind}"
            text = _catalog_text(rng, bank.features, bank.uses, title, kind)
            tags = list(dict.fromkeys([category, *rng.sample(bank.tags, rng.randint(2, 3))]))
            index = len(items)
            items.append(
                Item(
                    item_id=f"{bank.prefix}-{number:0{width}d}",
                    title=title,
                    text=text,
                    category=category,
                    tags=tuple(tags),
                    noun=noun,
                    popularity=raw_pop[index] / total_pop,
                    quality=round(rng.betavariate(3.0, 1.6), 4),
                )
            )
    return items


def _catalog_text(
    rng: Random, features: Sequence[str], uses: Sequence[str], title: str, kind: str
) -> str:
    """2-4 sentences, all from the category's own bank (keeps categories apart in embedding)."""
    n_sentences = rng.choice((2, 3, 3, 4))
    feats = rng.sample(list(features), 4)
    sentences = [
        rng.choice(CATALOG_INTROS).format(
            title=title, kind=kind, feature=feats[0], feature2=feats[1]
        )
    ]
    if n_sentences >= 3 and rng.random() < 0.6:
        sentences.append(rng.choice(CATALOG_DETAILS).format(feature=feats[2], feature2=feats[3]))
    sentences += rng.sample(list(uses), n_sentences - len(sentences))
    return " ".join(s[0].upper() + s[1:] for s in sentences)


def make_users(seed: int, n_users: int = 200, *, concentration: float = 0.3) -> list[User]:
    """Users whose taste is Dirichlet(``concentration``) over categories: a few liked ones each."""
    if n_users < 1:
        raise ConfigError(f"users must be >= 1, got {n_users}")
    rng = _rng(seed, "users")
    width = _width(n_users)
    users = []
    for number in range(1, n_users + 1):
        draws = [rng.gammavariate(concentration, 1.0) for _ in CATEGORIES]
        total = sum(draws)
        if total <= 0:  # every draw underflowed: fall back to one liked category
            draws = [0.0] * len(CATEGORIES)
            draws[rng.randrange(len(CATEGORIES))] = total = 1.0
        users.append(
            User(
                user_id=f"u{number:0{width}d}",
                taste=tuple(d / total for d in draws),
                quality_sensitivity=rng.betavariate(2.0, 2.0),
                activity=rng.lognormvariate(0.0, 0.7),
                base_valence=_clip(rng.gauss(0.1, 0.2), -0.6, 0.7),
                volatility=rng.uniform(0.04, 0.12),
                anger_prone=rng.random(),
            )
        )
    return users


@dataclass
class _UserState:
    """What the simulation remembers about a user while it runs (and reports in the truth)."""

    valence: float
    spell: dict[str, Any] | None = None
    spell_left: int = 0
    focus: tuple[int, int] | None = None  # (item index, funnel stage 0..2)
    pending: deque[int] = field(default_factory=deque)  # bought in-stream, not reviewed yet
    session: str | None = None
    n_sessions: int = 0
    last_chat_ts: int = 0
    events: int = 0
    valence_sum: float = 0.0
    valence_min: float = 1.0
    valence_max: float = -1.0
    moods: Counter[str] = field(default_factory=Counter)
    spells: list[dict[str, Any]] = field(default_factory=list)
    purchases: list[str] = field(default_factory=list)
    reviewed: list[str] = field(default_factory=list)


class Simulation:
    """A catalog, users and their event stream; iterate ``events()`` or ``messages()``.

    Each iteration starts from scratch (same seed -> same events); ``truth()`` describes the
    latest iteration (so far, if it was not exhausted).
    """

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
        self._states: list[_UserState] = []
        self._counts: Counter[str] = Counter()
        self._last_ts: int | None = None

    # -- public API -------------------------------------------------------------------------

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(kind, value)`` pairs in time order; every value is valid for its topic."""
        for event in self.generate():
            yield event.kind, event.value

    def messages(self) -> Iterator[Message]:
        """Encoded values keyed by user_id, with bad values injected at ``config.bad_rate``."""
        rng = _rng(self.config.seed, "bad")
        bad_rate = self.config.bad_rate
        for event in self.generate():
            raw = encode_value(event.value)
            key = event.value["user_id"].encode("utf-8")
            ts = event.value["ts"]
            yield Message(event.kind, key, raw, ts)
            if bad_rate > 0 and rng.random() < bad_rate:
                bad_kind, bad_value = _corrupt(rng, event)
                self._counts["bad"] += 1
                self._counts[f"bad.{bad_kind}"] += 1
                yield Message(event.kind, key, bad_value, ts, bad_kind)

    def generate(self) -> Iterator[SimEvent]:
        """Events with their hidden causes (``SimEvent.latent``), for tests and analysis."""
        cfg = self.config
        rng = _rng(cfg.seed, "events")
        clock = _rng(cfg.seed, "clock")
        self._states = [_UserState(valence=u.base_valence) for u in self.users]
        self._counts = Counter()
        self._last_ts = None
        pending_users: list[int] = []  # users with bought-but-unreviewed items
        pending_pos: dict[int, int] = {}
        min_gap = 1 if cfg.rate <= 1000 else 0  # strictly increasing while 1 ms can hold it
        limit_ms = None if cfg.duration_s is None else cfg.duration_s * 1000.0
        elapsed = 0.0
        seq = 0
        prev_ts = cfg.start_ms - 1
        while cfg.n_events is None or seq < cfg.n_events:
            elapsed += clock.expovariate(cfg.rate) * 1000.0
            ts = max(prev_ts + min_gap, cfg.start_ms + int(elapsed)) if seq else cfg.start_ms
            if limit_ms is not None and ts - cfg.start_ms >= limit_ms:
                break
            if ts >= MAX_TS:
                break
            prev_ts = ts
            kind = KINDS[_pick(rng, self._kind_cum)]
            if kind == "reviews" and pending_users and rng.random() < _REVIEW_PENDING:
                u = pending_users[rng.randrange(len(pending_users))]
            else:
                u = _pick(rng, self._user_cum)
            state = self._states[u]
            mood, spell = self._step_mood(rng, u, state, ts)
            event_id = f"{cfg.prefix}{_ID_LETTER[kind]}-{seq + 1:08d}"
            if kind == "clicks":
                value, latent = self._click(rng, u, state, ts, event_id, mood, spell)
                if value["action"] == "purchase" and u not in pending_pos:
                    pending_pos[u] = len(pending_users)
                    pending_users.append(u)
            elif kind == "reviews":
                value, latent = self._review(rng, u, state, ts, event_id, mood, spell)
                if not state.pending and u in pending_pos:  # swap-remove
                    pos = pending_pos.pop(u)
                    last = pending_users.pop()
                    if last != u:
                        pending_users[pos] = last
                        pending_pos[last] = pos
            else:
                value, latent = self._chat(rng, u, state, ts, event_id, mood, spell)
            seq += 1
            self._counts[kind] += 1
            self._last_ts = ts
            yield SimEvent(kind, value, latent)

    def truth(self) -> dict[str, Any]:
        """Ground truth of the latest iteration, JSON-ready (floats rounded to 6 places)."""
        states = self._states or [_UserState(valence=u.base_valence) for u in self.users]
        users: dict[str, Any] = {}
        for user, state in zip(self.users, states, strict=True):
            n = state.events
            users[user.user_id] = {
                "taste": {c: round(p, 6) for c, p in zip(CATEGORIES, user.taste, strict=True)},
                "top_categories": user.top_categories(3),
                "liked_categories": [
                    c
                    for c, p in sorted(
                        zip(CATEGORIES, user.taste, strict=True), key=lambda cp: -cp[1]
                    )
                    if p >= 0.15
                ],
                "quality_sensitivity": round(user.quality_sensitivity, 6),
                "activity": round(user.activity, 6),
                "events": n,
                "mood": {
                    "base_valence": round(user.base_valence, 6),
                    "mean_valence": round(state.valence_sum / n, 6) if n else None,
                    "min_valence": round(state.valence_min, 6) if n else None,
                    "max_valence": round(state.valence_max, 6) if n else None,
                    "final_valence": round(state.valence, 6),
                    "share": {m: round(state.moods[m] / n, 6) for m in MOODS} if n else {},
                    "spells": state.spells,
                },
                "purchases": state.purchases,
                "reviewed": state.reviewed,
            }
        cfg = self.config
        return {
            "seed": cfg.seed,
            "config": {
                "users": cfg.n_users,
                "items": cfg.n_items,
                "events": cfg.n_events,
                "duration_s": cfg.duration_s,
                "rate": cfg.rate,
                "mix": str(cfg.mix),
                "start_ms": cfg.start_ms,
                "bad_rate": cfg.bad_rate,
                "id_prefix": cfg.prefix,
            },
            "categories": list(CATEGORIES),
            "item_category": {item.item_id: item.category for item in self.catalog},
            "items": {
                item.item_id: {
                    "category": item.category,
                    "quality": item.quality,
                    "popularity": round(item.popularity, 8),
                }
                for item in self.catalog
            },
            "users": users,
            "counts": dict(sorted(self._counts.items())),
            "last_ts": self._last_ts,
        }

    # -- one event of each kind -----------------------------------------------------------------

    def _step_mood(self, rng: Random, u: int, state: _UserState, ts: int) -> tuple[str, str | None]:
        """Mean-reverting walk on valence, with spells that pull it to a mood for a while."""
        user = self.users[u]
        if state.spell is None and rng.random() < _SPELL_START:
            kind = SPELLS[_pick(rng, list(accumulate(_SPELL_WEIGHTS)))]
            state.spell = {"kind": kind, "start_ts": ts, "end_ts": ts, "events": 0}
            state.spell_left = 1 + int(rng.expovariate(1.0 / (_SPELL_MEAN_EVENTS - 1)))
            state.spells.append(state.spell)
        v = state.valence
        if state.spell is not None:
            v += 0.45 * (_SPELL_TARGET[state.spell["kind"]] - v) + rng.gauss(0, user.volatility / 2)
        else:
            v += 0.15 * (user.base_valence - v) + rng.gauss(0, user.volatility)
        v = state.valence = _clip(v, -1.0, 1.0)
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
        cat = _pick(rng, self._cat_pop_cum if explore else self._taste_cum[u])
        members = self._members[cat]
        if not members:  # a caller-supplied catalog may leave a category empty
            return _pick(rng, list(accumulate(i.popularity for i in self.catalog)))
        return members[_pick(rng, self._member_cum[cat])]

    def _fit(self, u: int, item: int) -> float:
        return self.users[u].taste[self._item_cat[item]] / self._taste_max[u]

    def _appeal(self, u: int, item: int, valence: float) -> float:
        user = self.users[u]
        q_eff = (
            user.quality_sensitivity * self.catalog[item].quality
            + (1 - user.quality_sensitivity) * 0.65
        )
        return self._fit(u, item) ** 0.7 * (0.4 + 0.6 * q_eff) * (1 + 0.2 * valence)

    def _click(
        self,
        rng: Random,
        u: int,
        state: _UserState,
        ts: int,
        event_id: str,
        mood: str,
        spell: str | None,
    ) -> tuple[dict[str, Any], Latent]:
        user = self.users[u]
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
        value: dict[str, Any] = {
            "event_id": event_id,
            "user_id": user.user_id,
            "item_id": self.catalog[item].item_id,
            "action": action,
            "ts": ts,
        }
        dwell = _dwell(rng, action, fit)
        if dwell is not None:
            value["dwell_ms"] = dwell
        latent = Latent(mood, state.valence, spell, CATEGORIES[self._item_cat[item]], fit)
        return value, latent

    def _review(
        self,
        rng: Random,
        u: int,
        state: _UserState,
        ts: int,
        event_id: str,
        mood: str,
        spell: str | None,
    ) -> tuple[dict[str, Any], Latent]:
        user = self.users[u]
        if state.pending:
            item = state.pending.popleft()
        else:  # bought before the stream started (or elsewhere)
            item = self._pick_item(rng, u, explore=rng.random() < _EXPLORE_REVIEW)
        it = self.catalog[item]
        fit = self._fit(u, item)
        q_eff = user.quality_sensitivity * it.quality + (1 - user.quality_sensitivity) * 0.65
        satisfaction = fit**0.5 * q_eff
        observed = _clip(satisfaction + rng.gauss(0, 0.07) + 0.05 * state.valence, 0.0, 1.0)
        band = bisect_right(_RATING_CUTS, observed)
        state.reviewed.append(it.item_id)
        value: dict[str, Any] = {
            "event_id": event_id,
            "user_id": user.user_id,
            "item_id": it.item_id,
            "text": _review_text(rng, band, it),
            "ts": ts,
        }
        if rng.random() < 0.9:
            value["rating"] = band + 1
        latent = Latent(mood, state.valence, spell, it.category, fit, satisfaction)
        return value, latent

    def _chat(
        self,
        rng: Random,
        u: int,
        state: _UserState,
        ts: int,
        event_id: str,
        mood: str,
        spell: str | None,
    ) -> tuple[dict[str, Any], Latent]:
        user = self.users[u]
        cfg = self.config
        if state.session is None or ts - state.last_chat_ts > _SESSION_GAP_MS or rng.random() < 0.1:
            state.n_sessions += 1
            state.session = f"{cfg.prefix}{user.user_id}-s{state.n_sessions}"
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
            category = CATEGORIES[_pick(rng, self._taste_cum[u])]
            noun = rng.choice(CATEGORY_BANKS[category].nouns)
        wording = mood if rng.random() >= _WORDING_NOISE else rng.choice(MOODS)
        value: dict[str, Any] = {
            "event_id": event_id,
            "user_id": user.user_id,
            "text": _chat_text(rng, wording, noun),
            "session_id": state.session,
            "ts": ts,
        }
        if item is not None:
            value["item_id"] = self.catalog[item].item_id
        return value, Latent(mood, state.valence, spell, category)


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
    return int(_clip(ms, 50, 86_400_000))


def _review_text(rng: Random, band: int, item: Item) -> str:
    """Opener and closer set the tone; the body mixes category aspects, service and a story.

    Length: log-normal around 55 words (mostly 30-120) with a long tail up to ~1000.
    """
    target = rng.lognormvariate(math.log(48), 0.45)
    if rng.random() < 0.05:
        target *= rng.uniform(2.0, 6.0)
    target = _clip(target, 15, 1000)
    p_positive = (0.05, 0.2, 0.5, 0.85, 0.97)[band]
    bank = CATEGORY_BANKS[item.category]
    pools: dict[str, list[str]] = {
        "praise": list(bank.praise),
        "complaint": list(bank.complaints),
        "good": list(REVIEW_GENERIC_GOOD),
        "bad": list(REVIEW_GENERIC_BAD),
        "story": list(REVIEW_STORIES),
    }
    opener = rng.choice(REVIEW_OPENERS[band]).format(noun=item.noun)
    closer = rng.choice(REVIEW_CLOSERS[band]) if rng.random() < 0.8 else ""
    sentences = [opener]
    words = len(opener.split()) + len(closer.split())
    while words < target:
        roll = rng.random()
        positive = rng.random() < p_positive
        if roll < 0.5:
            name = "praise" if positive else "complaint"
        elif roll < 0.8:
            name = "good" if positive else "bad"
        else:
            name = "story"
        pool = pools[name]
        sentence = _draw(rng, pool) if pool else rng.choice(_refill(name, bank))
        sentences.append(sentence)
        words += len(sentence.split())
    if closer:
        sentences.append(closer)
    text = " ".join(sentences)
    if len(text) > 8000:  # schema limit is 8192; keep whole sentences
        text = text[: text.rfind(". ", 0, 8000) + 1]
    return text


def _draw(rng: Random, pool: list[str]) -> str:
    """Remove and return a random element (no repeats until the pool runs dry)."""
    i = rng.randrange(len(pool))
    pool[i], pool[-1] = pool[-1], pool[i]
    return pool.pop()


def _refill(name: str, bank: Any) -> Sequence[str]:
    return {
        "praise": bank.praise,
        "complaint": bank.complaints,
        "good": REVIEW_GENERIC_GOOD,
        "bad": REVIEW_GENERIC_BAD,
        "story": REVIEW_STORIES,
    }[name]


def _chat_text(rng: Random, mood: str, noun: str) -> str:
    """One chat line of 8-20 words in the given mood."""
    text = rng.choice(CHAT_TEMPLATES[mood]).format(noun=noun)
    words = text.split()
    if len(words) < 8:
        text = f"{text}, {rng.choice(CHAT_TAILS[mood])}"
        words = text.split()
    if len(words) > 20:
        text = " ".join(words[:20])
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.3:
        text += "!" if mood in ("joyful", "angry") else "?" if mood == "neutral" else "..."
    return text


def _corrupt(rng: Random, event: SimEvent) -> tuple[str, bytes]:
    """A bad value derived from a good one; returns the dead-letter kind it must cause."""
    value = dict(event.value)
    value["event_id"] = f"{value['event_id']}-bad"
    choices = ["malformed_json", "encoding", "schema"]
    choices.append("unknown_action" if event.kind == "clicks" else "oversize")
    kind = rng.choice(choices)
    raw = encode_value(value)
    if kind == "malformed_json":
        if rng.random() < 0.5:
            return kind, raw[: rng.randint(1, len(raw) - 2)]
        return kind, repr(value).encode("utf-8")  # single quotes: Python, not JSON
    if kind == "encoding":
        marker = b'"event_id":"'
        cut = raw.index(marker) + len(marker)
        return kind, raw[:cut] + rng.choice((b"\xff\xfe", b"\xc3\x28", b"\x80")) + raw[cut:]
    if kind == "unknown_action":
        value["action"] = rng.choice(("like", "wishlist", "share", "PURCHASE"))
        return kind, encode_value(value)
    if kind == "oversize":
        text = str(value["text"]) + " "
        value["text"] = (text * (9000 // len(text) + 2))[: rng.randint(9000, 20000)]
        return kind, encode_value(value)
    if rng.random() < 0.5:
        del value["user_id"]
    else:
        value["ts"] = "2025-11-25T19:46:40Z"
    return kind, encode_value(value)


def generate_events(config: SimConfig | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Shorthand for ``Simulation(config).events()``."""
    return Simulation(config).events()
