"""ReDial backtest: the plan (steps in time order, scored texts, the movie index)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

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
from stream.errors import DatasetError
from stream.offline.backtest import (
    Steps,
    model_key,
    score_texts,
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
from stream.ports import Scores, SentimentModel
from stream.settings import Settings


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


class RedialSplit(NamedTuple):
    """The data of one ReDial run: dialogues replayed first and never scored (``train``), the
    scored ones (``dev``), movie names by id and the seekers' questionnaire answers."""

    train: Sequence[Dialogue]
    dev: Sequence[Dialogue]
    movies: Mapping[str, str]
    questionnaires: Mapping[str, Questionnaire]


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
