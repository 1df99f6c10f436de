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

from stream.offline.redial_backtest.plan import (
    Plan,
    Protocol,
    RedialSplit,
    Step,
    build_index,
    build_steps,
    make_plan,
)
from stream.offline.redial_backtest.replay import (
    Params,
    PointRanks,
    Replayer,
    item_params,
    observe,
    replay,
    user_params,
)
from stream.offline.redial_backtest.results import (
    RedialResult,
    VariantOutcome,
    markdown,
    write_report,
)
from stream.offline.redial_backtest.run import run_redial
from stream.offline.redial_backtest.tuning import Tuning, _params, tune
from stream.offline.redial_backtest.variants import (
    BASELINES,
    DEFAULT_VARIANTS,
    ENGAGEMENT_AXES,
    FOREVER_S,
    KS,
    MIN_GAIN,
    NDCG_K,
    NO_MOOD,
    RANK_AXES,
    REVERSE_GAIN,
    TUNE_KEY,
    TUNED_ON,
    VARIANTS,
    RedialVariant,
    parse_variants,
)

__all__ = [
    "BASELINES",
    "DEFAULT_VARIANTS",
    "ENGAGEMENT_AXES",
    "FOREVER_S",
    "KS",
    "MIN_GAIN",
    "NDCG_K",
    "NO_MOOD",
    "RANK_AXES",
    "REVERSE_GAIN",
    "TUNED_ON",
    "TUNE_KEY",
    "VARIANTS",
    "Params",
    "Plan",
    "PointRanks",
    "Protocol",
    "RedialResult",
    "RedialSplit",
    "RedialVariant",
    "Replayer",
    "Step",
    "Tuning",
    "VariantOutcome",
    "_params",
    "build_index",
    "build_steps",
    "item_params",
    "make_plan",
    "markdown",
    "observe",
    "parse_variants",
    "replay",
    "run_redial",
    "tune",
    "user_params",
    "write_report",
]
