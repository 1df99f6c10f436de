"""The worker's Prometheus metrics, in a registry of its own per app (no process-global state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


@dataclass
class Metrics:
    """What one worker exports on /metrics."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self._event_metrics(self.registry)
        self._pipeline_metrics(self.registry)
        self._item_stage_metrics(self.registry)

    def _event_metrics(self, r: CollectorRegistry) -> None:
        """What happened to the input events: folded, dead-lettered, dropped, recommended."""
        self.events = Counter(
            "moodstream_events_total", "valid events folded", ["kind"], registry=r
        )
        self.dead = Counter(
            "moodstream_dead_letters_total",
            "values sent to the dead-letter topic",
            ["kind"],
            registry=r,
        )
        self.duplicates = Counter(
            "moodstream_duplicates_total", "events dropped as already seen", registry=r
        )
        self.erasures = Counter("moodstream_erasures_total", "users erased", registry=r)
        self.before_erasure = Counter(
            "moodstream_before_erasure_total",
            "events no newer than their user's erasure, dropped",
            registry=r,
        )
        self.recommendations = Counter(
            "moodstream_recommendations_total", "recommendations emitted", registry=r
        )

    def _pipeline_metrics(self, r: CollectorRegistry) -> None:
        """Latency, batching, the model and index served, and where the pipeline waits."""
        self.latency = Histogram(
            "moodstream_event_to_recommendation_seconds",
            "event time to emit",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.batch = Histogram(
            "moodstream_batch_size",
            "events per micro-batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.provider = Info(
            "moodstream_model", "model version and ONNX Runtime provider", registry=r
        )
        self.index_items = Gauge("moodstream_index_items", "items in the served index", registry=r)
        # Which side of the pipeline is the bottleneck: much waiting means the model is.
        self.score_wait = Counter(
            "moodstream_score_wait_seconds",
            "time the folding task waited for a piece's scores",
            registry=r,
        )
        self.fold_time = Counter(
            "moodstream_fold_seconds",
            "time spent folding, ranking and sending scored pieces",
            registry=r,
        )
        self.refetches = Gauge(
            "moodstream_input_refetches",
            "input partitions fetched again from a hole Faust's consumer left (a rebalance race)",
            registry=r,
        )
        self.put_back = Gauge(
            "moodstream_fetch_put_back",
            "fetched batches Faust would have dropped undelivered (flow stopped or partition "
            "paused meanwhile), sought back to be fetched again",
            registry=r,
        )
        self.lag = Gauge(
            "moodstream_consumer_lag",
            "records of an input partition on the broker that this worker has not taken yet",
            ["topic", "partition"],
            registry=r,
        )

    def _item_stage_metrics(self, r: CollectorRegistry) -> None:
        """The item stage (README "Scale-out"): deltas out, deltas applied once, the board feed."""
        self.item_deltas = Counter(
            "moodstream_item_deltas_sent", "item deltas sent to the item-keyed topic", registry=r
        )
        self.item_messages = Counter(
            "moodstream_item_messages_sent",
            "item-keyed messages sent (one per partition per flush, more for a large one)",
            registry=r,
        )
        self.item_duplicates = Counter(
            "moodstream_item_deltas_dropped",
            "redelivered item deltas the item side had already applied",
            registry=r,
        )
        self.board_freshness = Histogram(
            "moodstream_board_freshness_seconds",
            "item-state freshness: from folding an item's delta to its arrival on this board",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 10, 30, 60),
            registry=r,
        )
        self.board_items = Gauge(
            "moodstream_board_items", "items with state on this worker's board", registry=r
        )
        self.board_lag = Gauge(
            "moodstream_board_lag_records",
            "records of the items changelog not yet read into this worker's board",
            registry=r,
        )

    def describe(self, model: Any, index: Any) -> None:
        """Model, provider and index versions; the model adds its own inference metrics."""
        register = getattr(model, "register_metrics", None)
        if register is not None:
            register(self.registry)  # inference latency, batch sizes, provider
        self.provider.info(
            {
                "model_version": model.version,
                "provider": str(getattr(model, "provider", "unknown")),
                "index_version": index.version,
            }
        )
        self.index_items.set(len(index.ids()))
