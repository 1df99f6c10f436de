"""ReDial backtest: seeker chats replayed through the core the worker runs, recommender mentions
scored over every movie.

Protocol (see ``stream.offline.redial`` for the events and the test points):

- ``train`` dialogues are replayed first and never reported; ``dev`` dialogues after them, in
  conversationId order (synthetic time: one hour per dialogue). Every seeker turn is a
  ``chats.v1`` event per movie it mentions (``redial.chat_events`` with ``reply_context``: a
  seeker reply that names no movie is about the movies the recommender just mentioned).
- Each event goes through ``fold_user`` (mood, taste, recent engagements -> pair evidence),
  ``fold_item`` (a chat about a movie: affect and popularity) and ``fold_item_pairs`` (the
  neighbour list of each source movie), on an ``ItemBoard``, and a test point is ranked by the
  core ``recommend`` with the board as affect and neighbour lookup: what ``Processor`` does.
- A test point (``redial.eval_points``) is ranked from the state left by events strictly before
  its recommender turn; the movies mentioned earlier in the dialogue are excluded from the list;
  no later message and no questionnaire answer is ever folded (except by ``rating_oracle``,
  which reads the seeker's ``liked`` answers as the sentiment of their mentions: an upper bound).
- Item vectors: the model's embedding of each movie's name plus the turns around its mentions
  in the train dialogues only (``redial.item_documents``); one index for the whole run.
- Tuning: the rank and engagement weights of ``sentiment_aware``, by a coordinate search on
  Recall@10 of the test points of the last ``tune_share`` of the train dialogues (before every
  dev dialogue); the report holds only the dev points. Popularity and neighbours never decay
  (no dates), and co-mentions count both ways (``REVERSE_GAIN``).
- Metrics: Recall@1/10/50, NDCG@10, MRR (``ranking_metrics``), coverage of the top 10, and
  paired bootstrap 95% intervals against ``popularity`` and ``sentiment_aware_no_sentiment``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from stream.core.board import ItemBoard
from stream.core.neighbours import EngagementWeights, NeighbourParams
from stream.core.rank import RankParams
from stream.core.state import (
    ChatObs,
    ItemParams,
    ItemState,
    UserParams,
    UserState,
    fold_item,
    fold_item_pairs,
    fold_user,
    recommend,
)
from stream.core.taste import EvidenceWeights
from stream.errors import ConfigError, DatasetError
from stream.offline import ranking_metrics
from stream.offline.backtest import (
    NEUTRAL_EKMAN,
    Interval,
    NoSteps,
    Steps,
    bootstrap_indices,
    model_key,
    paired_bootstrap,
    score_texts,
    single_threaded_blas,
    texts_key,
)
from stream.offline.redial import (
    DIALOGUE_GAP_MS,
    START_MS,
    Dialogue,
    EvalPoint,
    Questionnaire,
    chat_events,
    eval_points,
    item_documents,
)
from stream.ports import ItemIndex, Scores, SentimentModel
from stream.settings import Settings
from stream.worker.processor import affect_of

KS = (1, 10, 50)
NDCG_K = 10
FOREVER_S = float("inf")  # dialogues have no dates: popularity and neighbours never forget
# In a chat the order in which two movies come up says nothing about which leads to which, so
# co-mentions count both ways (directed only: Recall@10 0.155 instead of 0.169 on the dev part).
REVERSE_GAIN = 1.0

# ----------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class RedialVariant:
    """``sentiment``: ``model`` (the seeker's text), ``positive`` (every mention is liked, mood
    ignored), ``liked`` (the questionnaire: liked +1, disliked -1, else the model)."""

    name: str
    ranker: str
    sentiment: str
    tuned: bool = True
    about: str = ""


VARIANTS: dict[str, RedialVariant] = {
    v.name: v
    for v in (
        RedialVariant(
            "popularity", "popularity", "positive", False, "mentions so far, same list for all"
        ),
        RedialVariant(
            "taste_only", "taste_only", "positive", False, "nearest movies to the taste vector"
        ),
        RedialVariant(
            "item_cf",
            "item_cf",
            "positive",
            False,
            "neighbours of the seeker's mentioned movies alone, popularity fill",
        ),
        RedialVariant(
            "sentiment_aware",
            "default",
            "model",
            about="the full system: taste + neighbours + popularity candidates, model sentiment "
            "in engagements, taste, mood and item affect",
        ),
        RedialVariant(
            "sentiment_aware_no_sentiment",
            "default",
            "positive",
            about="sentiment_aware with every mention counted positive and mood ignored",
        ),
        RedialVariant(
            "rating_oracle",
            "default",
            "liked",
            about="sentiment_aware with the seeker's questionnaire 'liked' as the sentiment of "
            "their mentions (upper bound: the questionnaire comes after the dialogue)",
        ),
    )
}
DEFAULT_VARIANTS: tuple[str, ...] = tuple(VARIANTS)
BASELINES: tuple[str, ...] = ("popularity", "sentiment_aware_no_sentiment")
TUNED_ON = "sentiment_aware"
# mood ignored: no comfort, no exploring, no item affect (all mentions would read +1)
NO_MOOD = {"comfort_gain": 0.0, "explore_gain": 0.0, "affect_weight": 0.0}

RANK_AXES: dict[str, tuple[float, ...]] = {
    "neighbour_weight": (1.0, 0.5, 2.0, 4.0),
    "popularity_weight": (0.5, 0.2, 1.0, 2.0),
    "affect_weight": (1.0, 0.0, 0.3),
    "mmr_lambda": (0.8, 1.0),
}
ENGAGEMENT_AXES: dict[str, tuple[float, ...]] = {
    "chat_interest": (0.5, 0.0, 0.8),
    "chat_gain": (0.6, 0.3),
}
MIN_GAIN = 0.01
TUNE_KEY = "recall@10"


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


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Protocol:
    depth: int = 150  # list length ranked per point (Recall@50 after exclusions)
    tune: bool = True
    tune_share: float = 0.1  # of the train dialogues (the last ones) give tuning points
    resamples: int = 1000
    seed: int = 0


@dataclass(frozen=True, eq=False)
class Step:
    """One thing in time order: a chat event to fold, or a test point to rank (``point``)."""

    ts: int
    event: dict[str, Any] | None = None
    text_row: int = -1
    liked: float | None = None  # rating_oracle: the seeker's answer for the event's movie
    point: EvalPoint | None = None
    part: str = "train"  # train | tune | dev


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything that does not depend on the variant: the steps, the scores, the index."""

    steps: list[Step]
    scores: Scores  # one row per distinct seeker text
    index: FaissItemIndex
    movies: int
    counts: dict[str, Any]

    @property
    def end_ms(self) -> int:
        return self.steps[-1].ts if self.steps else 0


def _liked(q: Questionnaire | None, movie: str | None) -> float | None:
    if q is None or movie is None:
        return None
    a = q.seeker.get(movie)
    if a is None or a.liked == 2:
        return None
    return 1.0 if a.liked == 1 else -1.0


def build_steps(
    train: Sequence[Dialogue],
    dev: Sequence[Dialogue],
    questionnaires: Mapping[str, Questionnaire],
    tune_share: float,
) -> tuple[list[Step], list[str], dict[str, int]]:
    """The steps of every dialogue in order (train first), their distinct texts, and counts."""
    texts: dict[str, int] = {}
    steps: list[Step] = []
    counts = {"train_points": 0, "tune_points": 0, "dev_points": 0, "events": 0}
    left: dict[str, int] = {}
    n_tune = round(len(train) * tune_share)
    tune_from = len(train) - n_tune
    for k, d in enumerate([*train, *dev]):
        start = START_MS + k * DIALOGUE_GAP_MS
        part = "dev" if k >= len(train) else ("tune" if k >= tune_from else "train")
        q = questionnaires.get(d.conversation_id)
        points: list[EvalPoint] = []
        if part != "train":
            points, out = eval_points(d, start)
            for reason, n in out.items():
                left[f"{part}_{reason}"] = left.get(f"{part}_{reason}", 0) + n
        items: list[Step] = [Step(p.before_ts, point=p, part=part) for p in points]
        for e in chat_events(d, start, reply_context=True):
            row = texts.setdefault(e["text"], len(texts))
            items.append(Step(e["ts"], e, row, _liked(q, e.get("item_id")), part=part))
        # a point is ranked before the events of its own time (there are none: times differ)
        items.sort(key=lambda s: (s.ts, s.point is None))
        steps += items
        counts[f"{part}_points"] += len(points)
        counts["events"] += sum(s.point is None for s in items)
    counts.update(left)
    return steps, list(texts), counts


def build_index(
    documents: Mapping[str, str], embeddings: npt.NDArray[np.float32], model_sha: str
) -> FaissItemIndex:
    """One flat inner-product index of the movie documents' embeddings (centred, as
    ``moodstream index build`` does)."""
    ids = list(documents)
    vectors = normalise_rows(np.asarray(embeddings, dtype=np.float64))
    centered = len(ids) >= CENTRE_MIN_ITEMS
    if centered:
        vectors = centre_rows(vectors)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    manifest = IndexManifest(
        version="redial-train-documents",
        dim=int(vectors.shape[1]),
        count=len(ids),
        kind="flat",
        metric="inner_product",
        model_sha256=model_sha,
        built_at=dt.datetime.fromtimestamp(START_MS / 1000, dt.UTC).isoformat(timespec="seconds"),
        source="movie names + text around their mentions in the train dialogues",
        centered=centered,
    )
    return FaissItemIndex(flat, ids, vectors, manifest, threads=1)


# ----------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class Params:
    evidence: EvidenceWeights = field(default_factory=EvidenceWeights)
    engagement: EngagementWeights = field(default_factory=EngagementWeights)
    rank: Mapping[str, float] = field(default_factory=dict)


def user_params(settings: Settings, params: Params) -> UserParams:
    nb = NeighbourParams(half_life_s=FOREVER_S, reverse_gain=REVERSE_GAIN)
    return UserParams.from_settings(
        settings,
        evidence=params.evidence,
        engagement=params.engagement,
        neighbours=nb,
    )


def item_params(settings: Settings) -> ItemParams:
    nb = NeighbourParams(half_life_s=FOREVER_S, reverse_gain=REVERSE_GAIN)
    return ItemParams.from_settings(settings, popularity_half_life_s=FOREVER_S, neighbours=nb)


class Replayer:
    """Folds chat observations and ranks exactly as the worker's ``Processor`` does: the core
    folds, an ``ItemBoard`` mirror of the item states, ``board.popular`` and ``recommend`` with
    the board as affect and neighbour lookup."""

    def __init__(
        self,
        index: ItemIndex,
        user_params: UserParams,
        item_params: ItemParams,
        n_candidates: int,
    ) -> None:
        self.index = index
        self.user_params = user_params
        self.item_params = item_params
        self.n_candidates = n_candidates
        self.board = ItemBoard(index.ids())
        self.users: dict[str, UserState] = {}
        self.items: dict[str, ItemState] = {}  # items the board lacks

    def _item(self, item_id: str) -> ItemState:
        if item_id in self.board:
            got = self.board.get(item_id)
            nb = self.board.neighbours_of(item_id)
            if got is None:
                return ItemState() if nb is None else ItemState(neighbours=nb)
            return ItemState(*got) if nb is None else ItemState(*got, nb)
        return self.items.get(item_id) or ItemState()

    def _put(self, item_id: str, state: ItemState) -> None:
        if not self.board.put(item_id, state.affect, state.popularity, state.neighbours):
            self.items[item_id] = state

    def fold(self, obs: ChatObs) -> None:
        state, update = fold_user(self.users.get(obs.user_id) or UserState(), obs, self.user_params)
        self.users[obs.user_id] = state
        if obs.item_id is not None and obs.item_id in self.board:
            item, _ = fold_item(self._item(obs.item_id), obs, self.item_params)
            self._put(obs.item_id, item)
        by_source: dict[str, list[Any]] = {}
        for p in update.pairs:
            by_source.setdefault(p.source, []).append(p)
        for source, pairs in by_source.items():
            item, _ = fold_item_pairs(self._item(source), pairs, self.item_params)
            self._put(source, item)

    def vector(self, item_id: str | None) -> Any:
        if item_id is None or item_id not in self.board:
            return None
        return self.index.vectors([item_id])[0]

    def popular(self, rank_params: RankParams, now_ms: int) -> list[tuple[str, float]]:
        n = rank_params.top_k + self.user_params.seen_max
        return self.board.popular(n, now_ms, self.item_params.popularity_half_life_s)

    def recommend(self, user_id: str, now_ms: int, rank_params: RankParams) -> list[str]:
        state = self.users.get(user_id) or UserState()
        rec = recommend(
            state,
            index=self.index,
            affect=self.board,
            popular=self.popular(rank_params, now_ms),
            rank_params=rank_params,
            user_params=self.user_params,
            now_ms=now_ms,
            n_candidates=self.n_candidates,
            neighbours=self.board.neighbours_of,
        )
        return [i.item_id for i in rec.items]


def observe(plan: Plan, step: Step, variant: RedialVariant, vector: Any) -> ChatObs:
    """A chat step as the core sees it under the variant's sentiment source."""
    e = step.event
    assert e is not None
    valence, ekman, arousal, confidence = affect_of(plan.scores, step.text_row, e["text"])
    if variant.sentiment == "positive":
        valence, ekman, arousal, confidence = 1.0, NEUTRAL_EKMAN, 0.0, 1.0
    elif variant.sentiment == "liked" and step.liked is not None:
        valence, confidence = step.liked, 1.0
    return ChatObs(
        e["user_id"], valence, ekman, arousal, e["ts"], e.get("item_id"), vector, confidence
    )


@dataclass
class PointRanks:
    ranks: list[int] = field(default_factory=list)
    tops: list[tuple[str, ...]] = field(default_factory=list)


def replay(
    plan: Plan,
    variant: RedialVariant,
    params: Params,
    settings: Settings,
    protocol: Protocol,
    *,
    score: str = "dev",
    rank_overrides: Sequence[Mapping[str, float]] | None = None,
    steps: Steps | None = None,
) -> list[PointRanks]:
    """Fold every step in order; rank the test points of part ``score`` (``tune`` stops at the
    end of the train dialogues). One result per ranker setting."""
    steps = steps or NoSteps()
    overrides = list(rank_overrides) if rank_overrides is not None else [params.rank]
    extra = NO_MOOD if variant.sentiment == "positive" else {}
    rankers = [
        RankParams.from_settings(
            settings, variant=variant.ranker, top_k=protocol.depth, **{**o, **extra}
        )
        for o in overrides
    ]
    up = user_params(settings, params)
    r = Replayer(plan.index, up, item_params(settings), settings.candidates)
    out = [PointRanks() for _ in rankers]
    with single_threaded_blas():
        for step in plan.steps:
            if score == "tune" and step.part == "dev":
                break
            p = step.point
            if p is not None:
                if step.part != score:
                    continue
                for res, rp in zip(out, rankers, strict=True):
                    ids = r.recommend(p.user_id, p.before_ts, rp)
                    res.ranks.append(ranking_metrics.rank_in_list(ids, p.target, p.exclude))
                    shown = [i for i in ids if i not in p.exclude][:NDCG_K]
                    res.tops.append(tuple(shown))
                steps.advance(1)
                continue
            e = step.event
            assert e is not None
            r.fold(observe(plan, step, variant, r.vector(e.get("item_id"))))
    return out


# ----------------------------------------------------------------------------- tuning


@dataclass(frozen=True)
class Tuning:
    engagement: dict[str, float]
    rank: dict[str, float]
    score: float
    default_score: float
    points: int
    trials: list[tuple[dict[str, float], float]]


def _params(engagement: Mapping[str, float], rank: Mapping[str, float]) -> Params:
    eng = dataclasses.replace(EngagementWeights(), **engagement)  # type: ignore[arg-type]
    # the taste side follows the same reading of a mention (interest + gain * valence)
    evidence = dataclasses.replace(
        EvidenceWeights(), chat_interest=eng.chat_interest, chat_gain=eng.chat_gain
    )
    return Params(evidence, eng, dict(rank))


def tune(
    plan: Plan, settings: Settings, protocol: Protocol, *, steps: Steps | None = None
) -> Tuning:
    """Coordinate search (one round) on Recall@10 of the tuning points: rank axes ranked from the
    same states in one replay each, engagement axes one replay per value."""
    steps = steps or NoSteps()
    variant = VARIANTS[TUNED_ON]
    trials: list[tuple[dict[str, float], float]] = []
    n_points = sum(1 for s in plan.steps if s.point is not None and s.part == "tune")

    def evaluate(engagement: dict[str, float], ranks: list[dict[str, float]]) -> list[float]:
        steps.start(f"tuning ({len(trials) + len(ranks)} settings)", n_points)
        results = replay(
            plan,
            variant,
            _params(engagement, {}),
            settings,
            protocol,
            score="tune",
            rank_overrides=ranks,
            steps=steps,
        )
        scores = []
        for rk, res in zip(ranks, results, strict=True):
            m = ranking_metrics.summarise(res.ranks, KS, NDCG_K)[TUNE_KEY]
            trials.append(({**engagement, **rk}, m))
            scores.append(m)
        return scores

    engagement = {k: v[0] for k, v in ENGAGEMENT_AXES.items()}
    rank = {k: v[0] for k, v in RANK_AXES.items()}
    (default_score,) = evaluate(engagement, [rank])
    best = default_score
    for axis, values in RANK_AXES.items():
        options = [{**rank, axis: v} for v in values[1:]]
        for option, score in zip(options, evaluate(engagement, options), strict=True):
            if score > best * (1 + MIN_GAIN):
                best, rank = score, option
    for axis, values in ENGAGEMENT_AXES.items():
        for v in values[1:]:
            option = {**engagement, axis: v}
            (score,) = evaluate(option, [rank])
            if score > best * (1 + MIN_GAIN):
                best, engagement = score, option
    return Tuning(engagement, rank, best, default_score, n_points, trials)


# ----------------------------------------------------------------------------- the run


@dataclass
class VariantOutcome:
    name: str
    about: str
    ranks: npt.NDArray[np.int64]
    tops: list[tuple[str, ...]]
    metrics: dict[str, float]
    params: dict[str, Any]
    seconds: float
    ci: dict[str, dict[str, Interval]] = field(default_factory=dict)


@dataclass
class RedialResult:
    dataset: dict[str, Any]
    protocol: dict[str, Any]
    variants: dict[str, VariantOutcome]
    tuning: Tuning | None
    timings: dict[str, float]

    def metrics_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, v in self.variants.items():
            entry: dict[str, Any] = {k: round(x, 6) for k, x in v.metrics.items()}
            for base in BASELINES:
                cis = v.ci.get(base)
                entry[f"ci95_vs_{base}"] = (
                    None if cis is None else {m: ci.to_dict() for m, ci in cis.items()}
                )
            out[name] = entry
        tuning = None
        if self.tuning is not None:
            t = self.tuning
            tuning = {
                "selected": {"engagement": t.engagement, "rank": t.rank},
                "points": t.points,
                TUNE_KEY: round(t.score, 6),
                f"{TUNE_KEY}_at_defaults": round(t.default_score, 6),
                "trials": [{"setting": s, TUNE_KEY: round(m, 6)} for s, m in t.trials],
            }
        return {
            "variants": out,
            "dataset": self.dataset,
            "protocol": self.protocol,
            "tuning": tuning,
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
        }


def make_plan(
    train: Sequence[Dialogue],
    dev: Sequence[Dialogue],
    movies: Mapping[str, str],
    questionnaires: Mapping[str, Questionnaire],
    model: SentimentModel,
    settings: Settings,
    protocol: Protocol,
    *,
    cache_dir: Path | None = None,
    steps: Steps | None = None,
) -> tuple[Plan, dict[str, Any]]:
    """Steps, scored texts (cached), movie documents and their index."""
    if not dev:
        raise DatasetError("no dev dialogues to score")
    mkey = model_key(model, settings.model_dir)
    plan_steps, texts, counts = build_steps(
        train, dev, questionnaires, protocol.tune_share if protocol.tune else 0.0
    )
    cache = None if cache_dir is None else cache_dir / mkey
    scores, hit = score_texts(
        texts,
        model,
        cache_file=None if cache is None else cache / f"{texts_key(texts)}.npz",
        steps=steps,
    )
    docs = item_documents(train, movies)
    doc_texts = list(docs.values())
    doc_scores, doc_hit = score_texts(
        doc_texts,
        model,
        cache_file=None if cache is None else cache / f"{texts_key(doc_texts)}.npz",
        steps=steps,
    )
    index = build_index(docs, doc_scores.embedding, mkey)
    info = {
        "model_key": mkey,
        "texts": len(texts),
        "documents": len(docs),
        "scores_cached": bool(hit and doc_hit),
        **counts,
    }
    return Plan(plan_steps, scores, index, len(docs), counts), info


def run_redial(
    train: Sequence[Dialogue],
    dev: Sequence[Dialogue],
    movies: Mapping[str, str],
    questionnaires: Mapping[str, Questionnaire],
    model: SentimentModel,
    settings: Settings,
    protocol: Protocol,
    *,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    dataset_info: Mapping[str, Any] | None = None,
    cache_dir: Path | None = None,
    steps: Steps | None = None,
) -> RedialResult:
    """Score (or load cached scores), tune, replay every variant, metrics and intervals."""
    steps = steps or NoSteps()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    plan, info = make_plan(
        train,
        dev,
        movies,
        questionnaires,
        model,
        settings,
        protocol,
        cache_dir=cache_dir,
        steps=steps,
    )
    timings["scoring_s"] = time.perf_counter() - started
    n_dev = plan.counts["dev_points"]
    if n_dev == 0:
        raise DatasetError("no test points in the dev dialogues")
    tuning = None
    t0 = time.perf_counter()
    if protocol.tune and plan.counts["tune_points"] > 0:
        tuning = tune(plan, settings, protocol, steps=steps)
    timings["tuning_s"] = time.perf_counter() - t0
    results: dict[str, VariantOutcome] = {}
    for name in dict.fromkeys([*BASELINES, *variants]):
        v = VARIANTS[name]
        params = _params({}, {})
        if v.tuned and tuning is not None:
            params = _params(tuning.engagement, tuning.rank)
        elif v.tuned:
            params = _params({k: a[0] for k, a in ENGAGEMENT_AXES.items()}, {})
        steps.start(f"variant {name}", n_dev)
        t0 = time.perf_counter()
        (res,) = replay(plan, v, params, settings, protocol, steps=steps)
        seconds = time.perf_counter() - t0
        ranks = np.asarray(res.ranks, dtype=np.int64)
        metrics = ranking_metrics.summarise(
            ranks, KS, NDCG_K, lists=res.tops, catalog_size=plan.movies
        )
        described = {
            "ranker": v.ranker,
            "sentiment": v.sentiment,
            "engagement": dataclasses.asdict(params.engagement),
            "rank": dict(params.rank),
        }
        results[name] = VariantOutcome(name, v.about, ranks, res.tops, metrics, described, seconds)
        timings[f"variant_{name}_s"] = seconds
    idx = bootstrap_indices(n_dev, protocol.resamples, protocol.seed)
    per = {n: ranking_metrics.per_point(r.ranks, KS, NDCG_K) for n, r in results.items()}
    for name, r in results.items():
        for base in BASELINES:
            if base == name:
                continue
            r.ci[base] = {
                ("mrr" if m == "rr" else m): paired_bootstrap(
                    per[name][m], per[base][m], indices=idx
                )
                for m in per[name]
            }
    timings["total_s"] = time.perf_counter() - started
    shown = {n: results[n] for n in variants}
    dataset = {
        **dict(dataset_info or {}),
        **info,
        "train_dialogues": len(train),
        "dev_dialogues": len(dev),
    }
    proto = {
        "depth": protocol.depth,
        "ks": list(KS),
        "ndcg_k": NDCG_K,
        "tuned": tuning is not None,
        "tune_share": protocol.tune_share if tuning is not None else None,
        "resamples": protocol.resamples,
        "seed": protocol.seed,
        "model_version": model.version,
        "reply_context": True,
        "exclusions": "movies mentioned earlier in the dialogue (either side)",
        "candidates": settings.candidates,
    }
    return RedialResult(dataset, proto, shown, tuning, timings)


# ----------------------------------------------------------------------------- report


def _ci(ci: Interval | None) -> str:
    if ci is None:
        return "—"
    return f"{ci.diff:+.4f} [{ci.low:+.4f}, {ci.high:+.4f}]"


def _verdict(ci: Interval | None) -> str:
    if ci is None:
        return "not compared"
    if ci.low > 0:
        return "better (the interval excludes zero)"
    if ci.high < 0:
        return "worse (the interval excludes zero)"
    return "not distinguishable (the interval includes zero)"


def markdown(result: RedialResult, command: str) -> str:
    d, p = result.dataset, result.protocol
    lines = [
        "# Backtest: ReDial (seeker chats, recommender mentions as targets)",
        "",
        "## What was run",
        "",
        "```",
        command,
        "```",
        "",
        f"- Data: {d.get('name', 'ReDial')}: {d['train_dialogues']} train dialogues replayed "
        f"first (never reported), {d['dev_dialogues']} dev dialogues scored; {d['events']} chat "
        f"events ({d['texts']} distinct seeker texts scored by the model `{p['model_version']}`"
        f"{', read from the score cache' if d.get('scores_cached') else ''}).",
        f"- Catalog: {d['documents']} movies; each the model's embedding of its name plus the "
        "turns around its mentions in the train dialogues only.",
        f"- Test points: {d['dev_points']} recommender mentions in dev dialogues (left out: "
        f"{d.get('dev_repeat', 0)} repeats of a movie already mentioned in the dialogue, "
        f"{d.get('dev_no_context', 0)} before the seeker's first turn). Each is ranked from the "
        "state left by strictly earlier messages; the dialogue's earlier mentions are excluded "
        "from the list. No later message and no questionnaire answer is folded (the "
        "`rating_oracle` variant alone reads the seeker's `liked` answers).",
        "- Events: every seeker turn is a chat event per movie it mentions; a seeker reply that "
        "mentions none is about the movies of the recommender turn it answers (item context). "
        "They run through `fold_user` / `fold_item` / `fold_item_pairs` and `recommend` on an "
        "`ItemBoard`, as the worker's `Processor` does (a unit test checks both give the same "
        "list). Popularity and neighbours do not decay (dialogues have no dates) and "
        "co-mentions count both ways (`reverse_gain` 1).",
        f"- Metrics: Recall@1/10/50, NDCG@10, MRR over the ranked list (depth {p['depth']}), "
        "coverage = distinct movies in the top-10 lists / catalog. Intervals: paired bootstrap "
        f"over dev points, {p['resamples']} resamples, seed {p['seed']}.",
    ]
    if result.tuning is not None:
        t = result.tuning
        lines.append(
            f"- Tuning: on the {t.points} test points of the last {p['tune_share']:.0%} of the "
            "train dialogues (before every dev dialogue), by Recall@10 of sentiment_aware: "
            f"selected {_kv({**t.engagement, **t.rank})} ({t.score:.4f} vs {t.default_score:.4f}"
            " at the starting values); all trials in `metrics.json`."
        )
    lines += [
        "",
        "## Results",
        "",
        "| variant | R@1 | R@10 | R@50 | NDCG@10 | MRR | coverage | ΔR@10 vs popularity "
        "[95% CI] | ΔR@10 vs no_sentiment [95% CI] |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, v in result.variants.items():
        m = v.metrics
        lines.append(
            f"| {name} | {m['recall@1']:.4f} | {m['recall@10']:.4f} | {m['recall@50']:.4f} | "
            f"{m['ndcg@10']:.4f} | {m['mrr']:.4f} | {m['coverage']:.3f} | "
            f"{_ci(v.ci.get('popularity', {}).get('recall@10'))} | "
            f"{_ci(v.ci.get('sentiment_aware_no_sentiment', {}).get('recall@10'))} |"
        )
    lines += ["", "Variants:", ""]
    lines += [f"- `{n}`: {v.about}" for n, v in result.variants.items()]
    lines += ["", "## What it means", ""]
    sa = result.variants.get(TUNED_ON)
    if sa is not None:
        for base in BASELINES:
            for metric in ("recall@10", "ndcg@10"):
                ci = sa.ci.get(base, {}).get(metric)
                lines.append(f"- sentiment_aware vs {base}, {metric}: {_ci(ci)}: {_verdict(ci)}.")
    oracle = result.variants.get("rating_oracle")
    if oracle is not None:
        ci = oracle.ci.get("sentiment_aware_no_sentiment", {}).get("recall@10")
        lines.append(f"- rating_oracle vs no sentiment, recall@10: {_ci(ci)}: {_verdict(ci)}.")
    lines += ["", "## Timings", ""]
    for key, seconds in result.timings.items():
        lines.append(f"- {key.removesuffix('_s').replace('_', ' ')}: {seconds:.1f} s")
    return "\n".join(lines) + "\n"


def _kv(values: Mapping[str, float]) -> str:
    return ", ".join(f"`{k}={v:g}`" for k, v in values.items())


def write_report(result: RedialResult, out_dir: Path, command: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = out_dir / "metrics.json"
    report = out_dir / "report.md"
    metrics.write_text(json.dumps(result.metrics_json(), indent=2) + "\n", encoding="utf-8")
    report.write_text(markdown(result, command), encoding="utf-8")
    return [metrics, report]
