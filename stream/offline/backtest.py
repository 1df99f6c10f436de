"""Temporal backtest of ranker variants on a review data set: protocol, metrics, bootstrap, tuning.

Protocol (no leakage: everything a test point sees happened strictly before it):

- Events are folded in event-time order; events that share a timestamp form a group. Every test
  point of a group is ranked from the state left by all earlier groups, then the group is folded.
- A test point is a review by a user who already has a review at an earlier time, at or after the
  global warm-up (``--warmup``: a share of the events, a number of days, or a date). The list is
  the one the system would show that user at that moment: the same core ``recommend`` the worker
  calls, on the user's state, drop seen items, re-rank, top-K. Its target is the reviewed item.
- The item index is rebuilt at a fixed cadence (``--rebuild``, monthly by default) from reviews
  before the rebuild time only: an item's vector is the normalised mean embedding of its most
  recent ``REVIEWS_PER_ITEM`` reviews, as ``moodstream index build --from-reviews --until`` makes
  it. Items with no review before the rebuild are not in the index, so they cannot be
  recommended, not even as popular fill-ins: the index is the catalog of the moment.
- Where the worker dead-letters a review of an item missing from its (catalog) index, the backtest
  still folds it into mood, seen items, popularity and affect (only not into taste: there is no
  vector for it yet). Its index is a snapshot of past reviews, not a catalog.
- Metrics per test point: HR@K and NDCG@K (one relevant item: 1/log2(1 + rank)) on the top K,
  reciprocal rank on the ranked list down to ``depth`` (MRR@depth, 0 beyond it). Catalog
  coverage = distinct items in the top-K lists / items in the index at the last test point.
  Each variant's mean difference to ``popularity`` and ``taste_only`` gets a paired bootstrap
  95% interval (the same seeded resamples of test points for every comparison).
- Tuning: the evidence and ranker weights of ``sentiment_aware``, chosen by a coordinate search
  on NDCG@K of the first ``tune_share`` of the test points (by time); the reported table holds
  only the later ones, where every tuned variant runs with the selection.

Every review text is scored once and cached under ``cache_dir/<model>/<texts sha>.npz``.
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

import faiss
import numpy as np
import numpy.typing as npt

from stream.adapters.index import (
    CENTRE_MIN_ITEMS,
    FaissItemIndex,
    IndexManifest,
    centre_rows,
    normalise_rows,
)
from stream.contract.records import Review
from stream.core.emotion import normalise_ekman
from stream.core.popularity import Popularity, top_popular
from stream.core.rank import RankParams
from stream.core.state import (
    ItemParams,
    ItemState,
    ReviewObs,
    UserParams,
    UserState,
    fold_item,
    fold_user,
    recommend,
)
from stream.core.taste import EvidenceWeights
from stream.errors import ConfigError, DatasetError
from stream.offline.times import parse_when
from stream.ports import EKMAN, EMOTIONS, SENTIMENTS, Scores, SentimentModel
from stream.settings import Settings
from stream.worker.processor import affect_of

log = logging.getLogger(__name__)

REVIEWS_PER_ITEM = 8  # as `moodstream index build --reviews-per-item` (its default)
SCORE_CHUNK = 256  # texts per predict() call while filling the cache (progress granularity)
DAY_MS = 86_400_000
NEUTRAL_EKMAN = normalise_ekman([0.0] * len(EKMAN))

# ----------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """One system configuration under test.

    ``sentiment``: where review sentiment comes from: ``model`` (the text, scored by the model),
    ``stars`` (the star rating, (stars - 3) / 2: an oracle for the model's valence) or ``none``.
    ``stars``: also hand the rating to the core, which then blends it into taste evidence.
    ``tuned``: uses the evidence and rank weights chosen by tuning (else the fixed ones below).
    """

    name: str
    ranker: str
    sentiment: str
    stars: bool = False
    tuned: bool = True
    about: str = ""


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "popularity",
            "popularity",
            "none",
            tuned=False,
            about="decayed review counts, same list for everyone (cold-start baseline)",
        ),
        Variant(
            "taste_only",
            "taste_only",
            "none",
            tuned=False,
            about="taste vector where every review pulls (no model sentiment), no re-rank",
        ),
        Variant(
            "seed_formula",
            "seed_formula",
            "model",
            about="the seeds' z = w * r * s on model sentiment",
        ),
        Variant(
            "sentiment_aware",
            "default",
            "model",
            about="the full system: model sentiment in taste, mood and item affect; re-rank",
        ),
        Variant(
            "rating_oracle",
            "default",
            "stars",
            about="sentiment_aware with the star rating in place of the model's valence",
        ),
        Variant(
            "sentiment_stars",
            "default",
            "model",
            stars=True,
            about="sentiment_aware with the rating also sent (the core blends it in)",
        ),
    )
}
DEFAULT_VARIANTS: tuple[str, ...] = tuple(VARIANTS)
BASELINES: tuple[str, ...] = ("popularity", "taste_only")
TUNED_ON = "sentiment_aware"

# taste_only: every review is positive evidence of the same size, whatever it says
NO_SENTIMENT = EvidenceWeights(review_gain=0.0)


def _axis(default: float, values: tuple[float, ...]) -> tuple[float, ...]:
    return (default, *(v for v in values if v != default))


# Tuning searches one weight at a time (coordinate search, up to TUNE_ROUNDS rounds): each axis
# starts at the core's default, and a value replaces the current one only if it beats it by more
# than MIN_GAIN (relative): differences inside the noise keep the defaults.
_EVIDENCE, _RANK = EvidenceWeights(), RankParams()
EVIDENCE_AXES: dict[str, tuple[float, ...]] = {
    # How far review sentiment moves taste evidence. Kept above review_interest (0.3) so that a
    # negative review still pushes taste away, as designed: unconstrained, this data prefers 0.25
    # (in a 5-core set, reviewing an item at all says the user shops its category).
    "review_gain": _axis(_EVIDENCE.review_gain, (0.5, 1.0, 2.0)),
}
RANK_AXES: dict[str, tuple[float, ...]] = {
    "popularity_weight": _axis(_RANK.popularity_weight, (0.0, 0.05, 0.2, 0.5, 1.0, 2.0, 4.0)),
    "affect_weight": _axis(_RANK.affect_weight, (0.0, 0.1, 0.3, 0.6, 1.0, 2.0)),
    "comfort_gain": _axis(_RANK.comfort_gain, (0.0, 2.0, 4.0)),
    "mmr_lambda": _axis(_RANK.mmr_lambda, (0.6, 0.8, 1.0)),
}
TUNE_ROUNDS = 2
MIN_GAIN = 0.01


def parse_variants(text: str | None) -> tuple[str, ...]:
    if not text:
        return DEFAULT_VARIANTS
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise ConfigError(
            f"unknown variant(s) {', '.join(unknown) or '(none)'}; known: {', '.join(VARIANTS)}"
        )
    return names


# ----------------------------------------------------------------------------- metrics


def point_metrics(ranks: npt.ArrayLike, k: int) -> dict[str, npt.NDArray[np.float64]]:
    """Per test point: hr@k, ndcg@k, rr. ``ranks`` are 1-based positions, 0 = not in the list."""
    r = np.asarray(ranks, dtype=np.float64)
    hit = (r >= 1) & (r <= k)
    ndcg = np.zeros_like(r)
    np.divide(1.0, np.log2(r + 1.0), out=ndcg, where=hit)
    rr = np.zeros_like(r)
    np.divide(1.0, r, out=rr, where=r >= 1)
    return {f"hr@{k}": hit.astype(np.float64), f"ndcg@{k}": ndcg, "mrr": rr}


@dataclass(frozen=True)
class Interval:
    diff: float  # mean paired difference on the real sample
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"diff": round(self.diff, 6), "low": round(self.low, 6), "high": round(self.high, 6)}


def bootstrap_indices(n: int, resamples: int, seed: int) -> npt.NDArray[np.int64]:
    """(resamples, n) indices drawn with replacement; one draw shared by every comparison."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, max(n, 1), size=(resamples, n), dtype=np.int64)


def paired_bootstrap(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    indices: npt.NDArray[np.int64] | None = None,
) -> Interval:
    """Percentile interval of mean(a - b) over test points resampled with replacement."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size == 0:
        return Interval(0.0, 0.0, 0.0)
    idx = bootstrap_indices(d.size, resamples, seed) if indices is None else indices
    means = d[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(d.mean()), float(low), float(high))


# ----------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class Protocol:
    k: int = 10
    depth: int = 100  # length of the ranked list MRR is computed over
    rebuild: str = "monthly"
    warmup: str = "10%"
    tune: bool = True
    tune_share: float = 0.6
    resamples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.depth:
            raise ConfigError("need 1 <= k <= depth")
        if not 0.0 < self.tune_share < 1.0:
            raise ConfigError("tune share must be between 0 and 1")
        if self.resamples < 1:
            raise ConfigError("resamples must be >= 1")
        rebuild_times(0, 0, self.rebuild)  # fail on a bad spec before any work is done
        warmup_time(self.warmup, [0, 1])


def _month_start(ms: int, months_ahead: int) -> int:
    day = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    month = day.month - 1 + months_ahead
    year, month = day.year + month // 12, month % 12 + 1
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000


def rebuild_times(first_ms: int, last_ms: int, cadence: str) -> list[int]:
    """Index rebuild times after ``first_ms`` up to ``last_ms`` (inclusive).

    ``monthly``/``quarterly``/``yearly``: the first of each (UTC) calendar period; ``weekly`` or
    ``<N>d``: every N days from the first event; ``once``: a single build at ``first_ms`` (the
    caller passes the warm-up time), so items first reviewed later never enter the index.
    """
    spec = cadence.strip().lower()
    if spec == "once":
        return [first_ms]
    months = {"monthly": 1, "quarterly": 3, "yearly": 12}.get(spec)
    if months is not None:
        day = dt.datetime.fromtimestamp(first_ms / 1000, dt.UTC)
        back = (day.month - 1) % months  # months since the start of the period holding first_ms
        out, t = [], _month_start(first_ms, months - back)
        while t <= last_ms:
            out.append(t)
            t = _month_start(t, months)
        return out
    days = 7 if spec == "weekly" else None
    match = re.fullmatch(r"(\d+)d", spec)
    if match:
        days = int(match.group(1))
    if not days:
        raise ConfigError(
            f"--rebuild {cadence!r}: use monthly, quarterly, yearly, weekly, <N>d or once"
        )
    return list(range(first_ms + days * DAY_MS, last_ms + 1, days * DAY_MS))


def warmup_time(spec: str, ts: Sequence[int]) -> int:
    """Earliest time a test point may have: ``N%`` of the events, ``Nd`` after the first, a date.

    ``0`` means no global warm-up (a user's first review still never is a test point).
    """
    value = spec.strip()
    if not ts:
        return 0
    if value in ("0", "0%", "0d"):
        return ts[0]
    if value.endswith("%"):
        try:
            share = float(value[:-1]) / 100.0
        except ValueError:
            raise ConfigError(f"--warmup {spec!r}: not a percentage") from None
        if not 0.0 <= share < 1.0:
            raise ConfigError(f"--warmup {spec!r}: must be below 100%")
        return ts[min(int(share * len(ts)), len(ts) - 1)]
    match = re.fullmatch(r"(\d+(?:\.\d+)?)d", value)
    if match:
        return ts[0] + int(float(match.group(1)) * DAY_MS)
    return parse_when(value)


def iso_day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Keep BLAS on one thread: the ranker's small matmuls (MMR similarities, ~200 x 384) ran
    10-40x slower with OpenBLAS's threads on a busy 2-core machine (0.4 ms vs 4-18 ms)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the run is only slower
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


# ----------------------------------------------------------------------------- scores cache


class Steps(TypingProtocol):
    """Progress sink (a rich progress bar at the CLI, nothing in tests)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class NoSteps:
    def start(self, label: str, total: int) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None


def model_key(model: SentimentModel, model_dir: str | Path | None = None) -> str:
    """Names the model's outputs: sha256 of its card.json (which hashes every artifact) and the
    variant running (int8 and fp16 score slightly differently)."""
    h = hashlib.sha256()
    card = Path(model_dir) / "card.json" if model_dir else None
    if card is not None and card.is_file():
        h.update(card.read_bytes())
    else:
        h.update(model.version.encode("utf-8"))
    h.update(str(getattr(model, "variant", "")).encode("utf-8"))
    return h.hexdigest()[:16]


def texts_key(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def score_texts(
    texts: Sequence[str],
    model: SentimentModel,
    *,
    cache_file: Path | None = None,
    steps: Steps | None = None,
) -> tuple[Scores, bool]:
    """Scores for every text (row i = text i), from the cache when it holds them; (scores, hit).

    Texts are fed in length order, ``SCORE_CHUNK`` at a time, so each call pads little.
    """
    steps = steps or NoSteps()
    if cache_file is not None and cache_file.is_file():
        try:
            with np.load(cache_file) as data:
                scores = Scores(
                    data["sentiment"], data["emotions"], data["embedding"], data["truncated"]
                )
            if scores.sentiment.shape[0] == len(texts):
                return scores, True
            log.warning(
                "cache %s holds %d rows, not %d: rescoring",
                cache_file,
                scores.sentiment.shape[0],
                len(texts),
            )
        except (OSError, ValueError, KeyError) as exc:
            log.warning("cache %s is unreadable (%s): rescoring", cache_file, exc)
    n = len(texts)
    order = sorted(range(n), key=lambda i: len(texts[i]))
    parts: dict[str, npt.NDArray[Any]] = {}
    steps.start("scoring review texts", n)
    for start in range(0, n, SCORE_CHUNK):
        rows = order[start : start + SCORE_CHUNK]
        out = model.predict([texts[i] for i in rows])
        for name in ("sentiment", "emotions", "embedding", "truncated"):
            arr = np.asarray(getattr(out, name))
            if name not in parts:
                parts[name] = np.zeros((n, *arr.shape[1:]), dtype=arr.dtype)
            parts[name][rows] = arr
        steps.advance(len(rows))
    if not parts:
        parts = {
            "sentiment": np.zeros((0, len(SENTIMENTS)), np.float32),
            "emotions": np.zeros((0, len(EMOTIONS)), np.float32),
            "embedding": np.zeros((0, 0), np.float32),
            "truncated": np.zeros(0, np.bool_),
        }
    scores = Scores(parts["sentiment"], parts["emotions"], parts["embedding"], parts["truncated"])
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.name}.{uuid.uuid4().hex[:8]}.tmp.npz")
        np.savez(
            tmp,
            sentiment=parts["sentiment"],
            emotions=parts["emotions"],
            embedding=parts["embedding"],
            truncated=parts["truncated"],
        )
        os.replace(tmp, cache_file)
    return scores, False


# ----------------------------------------------------------------------------- timeline


@dataclass(frozen=True, eq=False)
class Timeline:
    """The events and everything about them that does not depend on the variant."""

    events: list[Review]
    ts: npt.NDArray[np.int64]
    scores: Scores
    groups: list[tuple[int, int]]  # [start, end) of events sharing a timestamp
    test: npt.NDArray[np.bool_]  # per event: is it a test point
    warmup_ms: int
    rebuilds: list[int]
    model_obs: list[tuple[float, tuple[float, ...], float, float]]  # valence, ekman, arousal, conf
    first_seen: dict[str, int]  # item -> time of its first review

    @property
    def test_index(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.test)


def build_timeline(events: Sequence[Review], scores: Scores, protocol: Protocol) -> Timeline:
    """Group events by time and mark the test points (see the module docstring)."""
    if not events:
        raise DatasetError("no review events to backtest")
    ts = np.fromiter((e.ts for e in events), dtype=np.int64, count=len(events))
    if np.any(np.diff(ts) < 0):
        raise ValueError("events must be sorted by ts")
    groups: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(events) + 1):
        if i == len(events) or ts[i] != ts[start]:
            groups.append((start, i))
            start = i
    warm = warmup_time(protocol.warmup, ts.tolist())
    first_user: dict[str, int] = {}
    first_item: dict[str, int] = {}
    test = np.zeros(len(events), dtype=np.bool_)
    for i, e in enumerate(events):
        first = first_user.setdefault(e.user_id, e.ts)
        first_item.setdefault(e.item_id, e.ts)
        test[i] = first < e.ts and e.ts >= warm
    model_obs = [affect_of(scores, i, e.text) for i, e in enumerate(events)]
    rebuilds = rebuild_times(
        warm if protocol.rebuild.strip().lower() == "once" else int(ts[0]),
        int(ts[-1]),
        protocol.rebuild,
    )
    return Timeline(list(events), ts, scores, groups, test, warm, rebuilds, model_obs, first_item)


class Snapshots:
    """The item index as rebuilt at each rebuild time, from reviews strictly before it.

    Incremental: a rebuild recomputes only the items reviewed since the previous one.
    """

    def __init__(self, timeline: Timeline, model_sha: str = "") -> None:
        self._tl = timeline
        self._model_sha = model_sha
        self._recent: dict[str, list[int]] = {}  # item -> its last REVIEWS_PER_ITEM event rows
        self._vectors: dict[str, npt.NDArray[np.float64]] = {}
        self._next = 0  # next rebuild time to apply
        self._folded = 0  # events [0, folded) are in _recent
        self.index: FaissItemIndex | None = None
        self.members: frozenset[str] = frozenset()

    def advance(self, now_ms: int) -> None:
        """Apply every rebuild at or before ``now_ms`` (events before each one only)."""
        tl = self._tl
        while self._next < len(tl.rebuilds) and tl.rebuilds[self._next] <= now_ms:
            cut = tl.rebuilds[self._next]
            touched: set[str] = set()
            while self._folded < len(tl.events) and tl.ts[self._folded] < cut:
                item = tl.events[self._folded].item_id
                rows = self._recent.setdefault(item, [])
                rows.append(self._folded)
                del rows[:-REVIEWS_PER_ITEM]
                touched.add(item)
                self._folded += 1
            emb = tl.scores.embedding
            for item in touched:
                mean = emb[self._recent[item]].astype(np.float64).sum(axis=0)
                if float(np.linalg.norm(mean)) > 1e-12:
                    self._vectors[item] = mean
                else:  # only empty texts so far: nothing to search with
                    self._vectors.pop(item, None)
            if touched:
                self.index = self._build(cut)
            self._next += 1

    def _build(self, cut: int) -> FaissItemIndex | None:
        ids = sorted(self._vectors)
        self.members = frozenset(ids)
        if not ids:
            return None
        vectors = normalise_rows(np.vstack([self._vectors[i] for i in ids]))
        centered = len(ids) >= CENTRE_MIN_ITEMS
        if centered:
            vectors = centre_rows(vectors)  # as build_index does for the worker's indexes
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(vectors)
        manifest = IndexManifest(
            version=f"backtest-{iso_day(cut)}",
            dim=int(vectors.shape[1]),
            count=len(ids),
            kind="flat",
            metric="inner_product",
            model_sha256=self._model_sha,
            built_at=dt.datetime.fromtimestamp(cut / 1000, dt.UTC).isoformat(timespec="seconds"),
            source=f"reviews before {iso_day(cut)}",
            centered=centered,
        )
        return FaissItemIndex(flat, ids, vectors, manifest, threads=1)


# ----------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class Params:
    """What a variant runs with: the core's evidence weights and ranking weights."""

    evidence: EvidenceWeights = field(default_factory=EvidenceWeights)
    rank: Mapping[str, float] = field(default_factory=dict)  # RankParams overrides


@dataclass
class PointResults:
    """Per test point of one variant (order: the timeline's test points)."""

    ranks: npt.NDArray[np.int64]  # 1-based rank of the target in the list, 0 = absent
    top: list[tuple[str, ...]]  # the top-K item ids
    catalog: npt.NDArray[np.int64]  # items in the index at the point


def observe(tl: Timeline, i: int, variant: Variant, vector: Any) -> ReviewObs:
    """Event i as the core sees it under ``variant``'s sentiment source."""
    e = tl.events[i]
    valence, ekman, arousal, confidence = tl.model_obs[i]
    if variant.sentiment == "stars":
        valence = 0.0 if e.rating is None else (e.rating - 3) / 2.0
        confidence = 1.0
    elif variant.sentiment == "none":
        valence, ekman, arousal, confidence = 0.0, NEUTRAL_EKMAN, 0.0, 1.0
    rating = e.rating if variant.stars else None
    return ReviewObs(
        e.user_id, e.item_id, valence, ekman, arousal, rating, e.ts, vector, confidence
    )


def simulate(
    tl: Timeline,
    variant: Variant,
    params: Params,
    settings: Settings,
    protocol: Protocol,
    **kwargs: Any,
) -> list[PointResults]:
    """Replay the timeline through the core under one variant; one result per ranker setting.

    ``rank_overrides``: several RankParams settings ranked from the same states (tuning); by
    default the single ``params.rank``. ``until_ms``: stop before the first group at that time.
    ``top_k``: length of the ranked lists (default ``protocol.depth``).
    """
    with single_threaded_blas():
        return _simulate(tl, variant, params, settings, protocol, **kwargs)


def _simulate(
    tl: Timeline,
    variant: Variant,
    params: Params,
    settings: Settings,
    protocol: Protocol,
    *,
    rank_overrides: Sequence[Mapping[str, float]] | None = None,
    top_k: int | None = None,
    until_ms: int | None = None,
    steps: Steps | None = None,
    model_sha: str = "",
) -> list[PointResults]:
    steps = steps or NoSteps()
    overrides = list(rank_overrides) if rank_overrides is not None else [params.rank]
    depth = top_k or protocol.depth
    rankers = [
        RankParams.from_settings(settings, variant=variant.ranker, top_k=depth, **o)
        for o in overrides
    ]
    user_params = UserParams.from_settings(
        settings, evidence=params.evidence, recommend_interval_ms=0
    )
    item_params = ItemParams.from_settings(settings)
    users: dict[str, UserState] = {}
    items: dict[str, ItemState] = {}
    pops: dict[str, Popularity] = {}
    snaps = Snapshots(tl, model_sha)
    pop_n = depth + user_params.seen_max
    pop_hl = item_params.popularity_half_life_s

    def affect(item_id: str) -> Any:
        state = items.get(item_id)
        return None if state is None else state.affect

    ranks: list[list[int]] = [[] for _ in rankers]
    tops: list[list[tuple[str, ...]]] = [[] for _ in rankers]
    catalog: list[int] = []
    for start, end in tl.groups:
        now = int(tl.ts[start])
        if until_ms is not None and now >= until_ms:
            break
        snaps.advance(now)
        index = snaps.index
        tests = [i for i in range(start, end) if tl.test[i]]
        if tests:
            members = snaps.members
            popular = top_popular(
                ((k, p) for k, p in pops.items() if k in members), pop_n, now, pop_hl
            )
            for i in tests:
                e = tl.events[i]
                state = users[e.user_id]
                catalog.append(len(members))
                for r, rp in enumerate(rankers):
                    rec = recommend(
                        state,
                        index=index,
                        affect=affect,
                        popular=popular,
                        rank_params=rp,
                        user_params=user_params,
                        now_ms=now,
                        n_candidates=settings.candidates,
                    )
                    ids = [x.item_id for x in rec.items]
                    ranks[r].append(ids.index(e.item_id) + 1 if e.item_id in ids else 0)
                    tops[r].append(tuple(ids[: protocol.k]))
            steps.advance(len(tests))
        for i in range(start, end):
            e = tl.events[i]
            vector = None
            if index is not None and e.item_id in snaps.members:
                vector = index.vectors([e.item_id])[0]
            obs = observe(tl, i, variant, vector)
            state = users.get(e.user_id) or UserState()
            users[e.user_id], _ = fold_user(state, obs, user_params)
            items[e.item_id], _ = fold_item(items.get(e.item_id) or ItemState(), obs, item_params)
            pops[e.item_id] = items[e.item_id].popularity
    cat = np.asarray(catalog, dtype=np.int64)
    return [
        PointResults(np.asarray(r, dtype=np.int64), t, cat)
        for r, t in zip(ranks, tops, strict=True)
    ]


# ----------------------------------------------------------------------------- tuning


@dataclass(frozen=True)
class Tuning:
    evidence: dict[str, float]
    rank: dict[str, float]
    score: float  # NDCG@K on the tuning points with the selection
    default_score: float  # NDCG@K on the tuning points with the core's defaults
    points: int
    until_ms: int
    trials: list[tuple[dict[str, float], float]]  # every setting tried (evidence + rank), in order
    rounds: int


def tune(
    tl: Timeline,
    settings: Settings,
    protocol: Protocol,
    split_ms: int,
    *,
    steps: Steps | None = None,
    model_sha: str = "",
) -> Tuning:
    """Coordinate search of the evidence and rank weights of ``sentiment_aware`` by NDCG@K on the
    test points before ``split_ms``: one axis at a time, the others held at their current best;
    all values of a rank axis are ranked from the same states in one pass."""
    steps = steps or NoSteps()
    variant = VARIANTS[TUNED_ON]
    n_points = int(np.count_nonzero(tl.test & (tl.ts < split_ms)))
    key = f"ndcg@{protocol.k}"
    done: dict[tuple[tuple[str, float], ...], float] = {}
    trials: list[tuple[dict[str, float], float]] = []

    def ident(evidence: dict[str, float], rank: dict[str, float]) -> tuple[tuple[str, float], ...]:
        return tuple(sorted({**evidence, **rank}.items()))

    def evaluate(evidence: dict[str, float], ranks: list[dict[str, float]]) -> list[float]:
        todo = [r for r in ranks if ident(evidence, r) not in done]
        if todo:
            steps.start(f"tuning ({len(trials) + len(todo)} settings)", n_points)
            params = Params(dataclasses.replace(EvidenceWeights(), **evidence))
            results = simulate(
                tl,
                variant,
                params,
                settings,
                protocol,
                rank_overrides=todo,
                top_k=protocol.k,
                until_ms=split_ms,
                steps=steps,
                model_sha=model_sha,
            )
            for r, res in zip(todo, results, strict=True):
                score = float(point_metrics(res.ranks, protocol.k)[key].mean()) if n_points else 0.0
                done[ident(evidence, r)] = score
                trials.append(({**evidence, **r}, score))
        return [done[ident(evidence, r)] for r in ranks]

    evidence = {k: v[0] for k, v in EVIDENCE_AXES.items()}
    rank = {k: v[0] for k, v in RANK_AXES.items()}
    (default_score,) = evaluate(evidence, [rank])
    best, rounds = default_score, 0
    for _ in range(TUNE_ROUNDS):
        rounds += 1
        moved = False
        for axis, values in RANK_AXES.items():
            options = [{**rank, axis: v} for v in values]
            for option, score in zip(options, evaluate(evidence, options), strict=True):
                if score > best * (1 + MIN_GAIN):
                    best, rank, moved = score, option, True
        for axis, values in EVIDENCE_AXES.items():
            for v in values:
                option = {**evidence, axis: v}
                (score,) = evaluate(option, [rank])
                if score > best * (1 + MIN_GAIN):
                    best, evidence, moved = score, option, True
        if not moved:
            break
    return Tuning(evidence, rank, best, default_score, n_points, split_ms, trials, rounds)


def _fmt(combo: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in combo.items())


# ----------------------------------------------------------------------------- the whole run


@dataclass
class VariantResult:
    name: str
    about: str
    params: dict[str, Any]
    points: PointResults
    metrics: dict[str, float] = field(default_factory=dict)  # on the reported points
    ci: dict[str, dict[str, Interval]] = field(default_factory=dict)  # baseline -> metric -> CI
    seconds: float = 0.0


@dataclass
class BacktestResult:
    dataset: dict[str, Any]
    protocol: dict[str, Any]
    variants: dict[str, VariantResult]
    tuning: Tuning | None
    timeline: Timeline
    report_mask: npt.NDArray[np.bool_]  # over test points: those the table is computed on
    timings: dict[str, float]
    cache_hit: bool = False  # the model scores came from the cache
    # tuned vs the core's defaults for sentiment_aware on the reported points: does tuning carry?
    tuning_check: dict[str, Interval] | None = None

    def metrics_json(self) -> dict[str, Any]:
        """``metrics.json``: variants -> ndcg@K, hr@K, mrr, coverage and the two CIs."""
        k = self.protocol["k"]
        out: dict[str, Any] = {}
        for name, v in self.variants.items():
            entry: dict[str, Any] = {
                f"ndcg@{k}": round(v.metrics[f"ndcg@{k}"], 6),
                f"hr@{k}": round(v.metrics[f"hr@{k}"], 6),
                "mrr": round(v.metrics["mrr"], 6),
                "coverage": round(v.metrics["coverage"], 6),
            }
            for base in BASELINES:
                cis = v.ci.get(base)
                entry[f"ci95_vs_{base}"] = (
                    None if cis is None else {m: ci.to_dict() for m, ci in cis.items()}
                )
            out[name] = entry
        return {"variants": out, "dataset": self.dataset, "protocol": self.protocol}


def split_time(tl: Timeline, share: float) -> int | None:
    """First time of the report part: the test point at ``share`` of them (by time), so that
    points sharing a timestamp stay on one side. None when either side would be empty."""
    times = tl.ts[tl.test]
    if times.size < 2:
        return None
    split = int(times[min(int(share * times.size), times.size - 1)])
    if split <= int(times[0]):
        return None
    return split


def summarise(points: PointResults, mask: npt.NDArray[np.bool_], k: int) -> dict[str, float]:
    per = point_metrics(points.ranks[mask], k)
    out = {name: float(v.mean()) if v.size else 0.0 for name, v in per.items()}
    shown = {item for top, keep in zip(points.top, mask, strict=True) if keep for item in top}
    catalog = int(points.catalog[mask].max()) if mask.any() else 0
    out["coverage"] = len(shown) / catalog if catalog else 0.0
    out["points"] = float(mask.sum())
    return out


def run_backtest(
    events: Sequence[Review],
    model: SentimentModel,
    settings: Settings,
    protocol: Protocol,
    *,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    dataset_info: Mapping[str, Any] | None = None,
    cache_dir: Path | None = None,
    steps: Steps | None = None,
) -> BacktestResult:
    """Score (or load cached scores), tune, run every variant, compute metrics and intervals."""
    steps = steps or NoSteps()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    texts = [e.text for e in events]
    mkey = model_key(model, settings.model_dir)
    tkey = texts_key(texts)
    cache_file = None if cache_dir is None else cache_dir / mkey / f"{tkey}.npz"
    scores, hit = score_texts(texts, model, cache_file=cache_file, steps=steps)
    timings["scoring_s"] = time.perf_counter() - started
    tl = build_timeline(events, scores, protocol)
    n_points = int(tl.test.sum())
    if n_points == 0:
        raise DatasetError(
            "no test points: no user has a review after both an earlier review of theirs and "
            f"the warm-up ({protocol.warmup}); lower --warmup or use more data"
        )

    split = split_time(tl, protocol.tune_share) if protocol.tune else None
    tuning: Tuning | None = None
    t0 = time.perf_counter()
    if split is not None:
        tuning = tune(tl, settings, protocol, split, steps=steps, model_sha=mkey)
    timings["tuning_s"] = time.perf_counter() - t0
    point_ts = tl.ts[tl.test]
    report_mask = point_ts >= split if split is not None else np.ones(n_points, dtype=np.bool_)

    results: dict[str, VariantResult] = {}
    for name in dict.fromkeys([*BASELINES, *variants]):
        v = VARIANTS[name]
        params = Params(NO_SENTIMENT) if name == "taste_only" else Params()
        if v.tuned and tuning is not None:
            params = Params(dataclasses.replace(EvidenceWeights(), **tuning.evidence), tuning.rank)
        steps.start(f"variant {name}", n_points)
        t0 = time.perf_counter()
        (points,) = simulate(tl, v, params, settings, protocol, steps=steps, model_sha=mkey)
        seconds = time.perf_counter() - t0
        described = {
            "ranker": v.ranker,
            "sentiment": v.sentiment,
            "stars_sent": v.stars,
            "evidence": dataclasses.asdict(params.evidence),
            "rank": dict(params.rank),
        }
        results[name] = VariantResult(
            name,
            v.about,
            described,
            points,
            summarise(points, report_mask, protocol.k),
            seconds=seconds,
        )
        timings[f"variant_{name}_s"] = seconds

    idx = bootstrap_indices(int(report_mask.sum()), protocol.resamples, protocol.seed)
    per = {n: point_metrics(r.points.ranks[report_mask], protocol.k) for n, r in results.items()}
    for name, r in results.items():
        # the two baselines go to metrics.json; the pairs against sentiment_aware only to the
        # report (what the model's errors cost, what the blend with stars or the seeds' formula do)
        extra = (TUNED_ON,) if name != TUNED_ON and TUNED_ON in results else ()
        for base in (*BASELINES, *extra):
            r.ci[base] = {
                m: paired_bootstrap(per[name][m], per[base][m], indices=idx) for m in per[name]
            }
    check: dict[str, Interval] | None = None
    if tuning is not None:
        steps.start(f"{TUNED_ON} at the defaults", n_points)
        t0 = time.perf_counter()
        (plain,) = simulate(
            tl, VARIANTS[TUNED_ON], Params(), settings, protocol, steps=steps, model_sha=mkey
        )
        timings["defaults_check_s"] = time.perf_counter() - t0
        tuned = results.get(TUNED_ON)
        if tuned is None:
            tuned_params = Params(
                dataclasses.replace(EvidenceWeights(), **tuning.evidence), tuning.rank
            )
            (tuned_points,) = simulate(
                tl, VARIANTS[TUNED_ON], tuned_params, settings, protocol, model_sha=mkey
            )
        else:
            tuned_points = tuned.points
        a = point_metrics(tuned_points.ranks[report_mask], protocol.k)
        b = point_metrics(plain.ranks[report_mask], protocol.k)
        check = {m: paired_bootstrap(a[m], b[m], indices=idx) for m in a}
    # only the variants asked for are reported (baselines always run: they anchor the CIs)
    shown = {n: results[n] for n in variants}
    history = _history_at_points(tl)[report_mask]
    timings["total_s"] = time.perf_counter() - started
    info = dict(dataset_info or {})
    info.update(
        events=len(events),
        users=len({e.user_id for e in events}),
        items=len({e.item_id for e in events}),
        first=iso_day(int(tl.ts[0])),
        last=iso_day(int(tl.ts[-1])),
        density=len(events)
        / max(len({e.user_id for e in events}) * len({e.item_id for e in events}), 1),
        reviews_per_user_median=float(np.median(list(Counter(e.user_id for e in events).values()))),
        texts_truncated_by_model=int(np.count_nonzero(scores.truncated)),
        model_vs_stars=model_agreement(events, scores),
        scores_cache=None if cache_file is None else str(cache_file),
    )
    proto = {
        "k": protocol.k,
        "depth": protocol.depth,
        "rebuild": protocol.rebuild,
        "rebuilds": len(tl.rebuilds),
        "reviews_per_item": REVIEWS_PER_ITEM,
        "warmup": protocol.warmup,
        "warmup_until": iso_day(tl.warmup_ms),
        "test_points": n_points,
        "reported_points": int(report_mask.sum()),
        "reported_from": iso_day(int(point_ts[report_mask][0])) if report_mask.any() else None,
        "tuned": tuning is not None,
        "tune_share": protocol.tune_share if tuning is not None else None,
        "tuning_points": tuning.points if tuning is not None else 0,
        "selected": None if tuning is None else {"evidence": tuning.evidence, "rank": tuning.rank},
        "target_in_index_share": round(_reachable_share(tl, report_mask), 4),
        "history_median": float(np.median(history)) if history.size else 0.0,
        "resamples": protocol.resamples,
        "seed": protocol.seed,
        "model_version": model.version,
        "model_key": mkey,
        "settings": {
            "candidates": settings.candidates,
            "taste_half_life_s": settings.taste_half_life_s,
            "affect_half_life_s": settings.affect_half_life_s,
            "popularity_half_life_s": settings.popularity_half_life_s,
            "half_life_review_s": settings.half_life_review_s,
        },
    }
    return BacktestResult(info, proto, shown, tuning, tl, report_mask, timings, hit, check)


def model_agreement(events: Sequence[Review], scores: Scores) -> dict[str, float] | None:
    """How well the model's valence matches the stars: the error the rating_oracle removes."""
    rows = [i for i, e in enumerate(events) if e.rating is not None]
    if len(rows) < 2:
        return None
    valence = np.asarray(scores.valence, dtype=np.float64)[rows]
    stars = np.array([(events[i].rating or 3) - 3 for i in rows], dtype=np.float64) / 2.0
    pearson = 0.0
    if valence.std() > 0 and stars.std() > 0:
        pearson = float(np.corrcoef(valence, stars)[0, 1])
    polar = stars != 0
    negative = stars < 0
    agree = np.sign(valence[polar]) == np.sign(stars[polar])
    return {
        "pearson": round(pearson, 4),
        "polar": int(polar.sum()),
        "sign_accuracy": round(float(agree.mean()) if agree.size else 0.0, 4),
        "negative_recall": round(
            float((valence[negative] < 0).mean()) if negative.any() else 0.0, 4
        ),
    }


def _history_at_points(tl: Timeline) -> npt.NDArray[np.int64]:
    """Per test point: how many reviews its user had written before it (what taste knows)."""
    written: dict[str, int] = {}
    out: list[int] = []
    for start, end in tl.groups:
        out += [written.get(tl.events[i].user_id, 0) for i in range(start, end) if tl.test[i]]
        for i in range(start, end):
            user = tl.events[i].user_id
            written[user] = written.get(user, 0) + 1
    return np.asarray(out, dtype=np.int64)


def _reachable_share(tl: Timeline, mask: npt.NDArray[np.bool_]) -> float:
    """Share of reported targets that were in the index at their time (the HR ceiling)."""
    idx = tl.test_index[mask]
    if idx.size == 0:
        return 0.0
    reach = 0
    for i in idx:
        e = tl.events[int(i)]
        cut = max((t for t in tl.rebuilds if t <= e.ts), default=None)
        reach += cut is not None and tl.first_seen[e.item_id] < cut
    return reach / idx.size


def ndcg_by_period(
    result: BacktestResult, days: int | None = None
) -> tuple[list[int], dict[str, list[float]], list[int]]:
    """Mean NDCG@K per calendar quarter (or ``days``-long bins) over every test point, with the
    point counts: (bin start times, variant -> means, counts)."""
    k = result.protocol["k"]
    times = result.timeline.ts[result.timeline.test]
    if times.size == 0:
        return [], {}, []
    if days:
        edges = list(range(int(times[0]), int(times[-1]) + days * DAY_MS, days * DAY_MS))
    else:
        day = dt.datetime.fromtimestamp(int(times[0]) / 1000, dt.UTC)
        edges = [_month_start(int(times[0]), -((day.month - 1) % 3))]
        while edges[-1] <= int(times[-1]):
            edges.append(_month_start(edges[-1], 3))
    bins = np.searchsorted(np.asarray(edges), times, side="right") - 1
    starts, counts = [], []
    means: dict[str, list[float]] = {n: [] for n in result.variants}
    per = {n: point_metrics(v.points.ranks, k)[f"ndcg@{k}"] for n, v in result.variants.items()}
    for b in range(len(edges)):
        sel = bins == b
        if not sel.any():
            continue
        starts.append(edges[b])
        counts.append(int(sel.sum()))
        for n in means:
            means[n].append(float(per[n][sel].mean()))
    return starts, means, counts
