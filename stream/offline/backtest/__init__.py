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

Modules: ``variants`` (what is compared), ``protocol`` (the time protocol), ``scores`` (the
model scores cache), ``timeline`` (test points, index snapshots), ``simulate`` (the replay),
``metrics`` (per-point metrics, bootstrap), ``tuning``, ``results`` and ``run`` (the whole run).
"""

from __future__ import annotations

from stream.offline.backtest.metrics import (
    Interval,
    bootstrap_indices,
    format_interval,
    paired_bootstrap,
    point_metrics,
)
from stream.offline.backtest.progress import (
    NoSteps,
    Steps,
)
from stream.offline.backtest.protocol import (
    DAY_MS,
    Protocol,
    iso_day,
    rebuild_times,
    warmup_time,
)
from stream.offline.backtest.results import (
    BacktestResult,
    VariantResult,
    model_agreement,
    ndcg_by_period,
    split_time,
    summarise,
)
from stream.offline.backtest.run import (
    run_backtest,
)
from stream.offline.backtest.scores import (
    SCORE_CHUNK,
    model_key,
    score_texts,
    texts_key,
)
from stream.offline.backtest.simulate import (
    NEUTRAL_EKMAN,
    Params,
    PointResults,
    observe,
    simulate,
    single_threaded_blas,
)
from stream.offline.backtest.timeline import (
    REVIEWS_PER_ITEM,
    Snapshots,
    Timeline,
    build_timeline,
)
from stream.offline.backtest.tuning import (
    EVIDENCE_AXES,
    MIN_GAIN,
    RANK_AXES,
    TUNE_ROUNDS,
    Tuning,
    tune,
)
from stream.offline.backtest.variants import (
    BASELINES,
    DEFAULT_VARIANTS,
    NO_SENTIMENT,
    TUNED_ON,
    VARIANTS,
    Variant,
    parse_variants,
)

__all__ = [
    "BASELINES",
    "DAY_MS",
    "DEFAULT_VARIANTS",
    "EVIDENCE_AXES",
    "MIN_GAIN",
    "NEUTRAL_EKMAN",
    "NO_SENTIMENT",
    "RANK_AXES",
    "REVIEWS_PER_ITEM",
    "SCORE_CHUNK",
    "TUNED_ON",
    "TUNE_ROUNDS",
    "VARIANTS",
    "BacktestResult",
    "Interval",
    "NoSteps",
    "Params",
    "PointResults",
    "Protocol",
    "Snapshots",
    "Steps",
    "Timeline",
    "Tuning",
    "Variant",
    "VariantResult",
    "bootstrap_indices",
    "build_timeline",
    "format_interval",
    "iso_day",
    "model_agreement",
    "model_key",
    "ndcg_by_period",
    "observe",
    "paired_bootstrap",
    "parse_variants",
    "point_metrics",
    "rebuild_times",
    "run_backtest",
    "score_texts",
    "simulate",
    "single_threaded_blas",
    "split_time",
    "summarise",
    "texts_key",
    "tune",
    "warmup_time",
]
