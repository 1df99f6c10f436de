"""``make_app(settings)``: the Faust app, its topics and tables, wired to the pipeline.

One agent reads all user-keyed input topics so a user's reviews, chats, clicks and erasures are
folded in arrival order on one partition; item-keyed state (affect, popularity) is its own stage:
aggregated deltas go through an internal item-keyed topic to the ``items`` table, whose whole
changelog every worker reads into its board (``board_feed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from stream.adapters.kafka import faust_credentials
from stream.contract.topics import INPUT_KINDS, item_events_topic
from stream.ports import ItemIndex, SentimentModel
from stream.settings import Settings
from stream.worker import agents, web
from stream.worker.board_feed import BoardFeed
from stream.worker.consumer import PlainLogApp
from stream.worker.metrics import Metrics
from stream.worker.pipeline import Outputs, Pipeline, model_threads
from stream.worker.processor import Processor


@dataclass(frozen=True)
class MoodstreamApp:
    """The made app and the parts the CLI and the tests reach into."""

    app: faust.App
    settings: Settings
    metrics: Metrics
    processor: Processor
    pipeline: Pipeline
    users: Any
    items: Any
    user_events: Any
    item_updates: Any
    board_feed: BoardFeed


def make_app(
    settings: Settings,
    *,
    model: SentimentModel | None = None,
    index: ItemIndex | None = None,
) -> MoodstreamApp:
    """Build the worker app. Model and index default to the ones the settings point at."""
    if model is None:
        from stream.adapters.sentiment import OnnxSentimentModel

        threads = model_threads(settings.intra_op_threads, settings.score_threads)
        model = OnnxSentimentModel.from_settings(settings.replace(intra_op_threads=threads))
    holder = None
    if index is None:
        from stream.worker.serving import index_holder

        holder = index_holder(settings, model)
        index = holder.index
    app = _faust_app(settings)
    metrics = Metrics()
    metrics.describe(model, index)
    processor = Processor(settings, model, index)
    users = app.Table("users", default=None, partitions=settings.partitions, key_type=str)
    items = app.Table("items", default=None, partitions=settings.partitions, key_type=str)
    # user id -> event time of their last erasure; kept so older events stay dropped (README)
    erasures = app.Table("erasures", default=None, partitions=settings.partitions, key_type=str)
    pipeline = Pipeline(
        app,
        settings,
        processor,
        metrics,
        _outputs(app, settings),
        users,
        erasures,
        {settings.topic(k): k for k in INPUT_KINDS},
    )
    feed = BoardFeed(settings, items.changelog_topic.get_topic_name(), processor, metrics)
    user_events, item_updates = agents.register(app, settings, pipeline, items, holder, feed)
    # The state page reads through the held writes: a user's record reaches the table only
    # at the next item flush, and the page should show what the worker ranks with now.
    web.register(app, metrics, processor, pipeline.users, feed)
    return MoodstreamApp(
        app, settings, metrics, processor, pipeline, users, items, user_events, item_updates, feed
    )


def _faust_app(settings: Settings) -> faust.App:
    """The Faust app. Its web server binds ``--web-host`` (this machine by default) and serves
    only our pages: Faust's ``/table/...`` views would hand any user's state to whoever can
    reach the port, and ``/router/`` tells them which worker holds it."""
    app = PlainLogApp(
        settings.app_id,
        broker=settings.broker,
        broker_credentials=faust_credentials(settings),
        topic_allow_declare=settings.allow_topic_creation,
        store=settings.store,
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=settings.web_port > 0,
        web_port=max(settings.web_port, 1),
        web_host=settings.web_host,
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_linger=settings.linger_ms / 1000.0,
        stream_wait_empty=True,  # a rebalance waits until in-flight pieces are folded (README)
        consumer_group_instance_id=settings.instance_id or None,
        broker_session_timeout=settings.session_timeout_s,
        autodiscover=False,
        logging_config=None,
    )
    app.input_topics = frozenset(settings.topic(k) for k in INPUT_KINDS)
    return app


def _outputs(app: faust.App, settings: Settings) -> Outputs:
    def topic(kind: str) -> faust.TopicT:
        return app.topic(
            settings.topic(kind),
            partitions=settings.partitions,
            key_serializer="raw",
            value_serializer="json",
        )

    item_events = app.topic(
        item_events_topic(settings),
        partitions=settings.partitions,
        internal=True,
        key_serializer="raw",
        value_serializer="json",
    )
    return Outputs(topic("recommendations"), topic("deadletter"), item_events)
