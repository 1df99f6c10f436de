"""The worker's web pages: Prometheus metrics and health."""

from __future__ import annotations

from typing import Any

import faust
from prometheus_client import generate_latest

from stream.worker.board_feed import BoardFeed
from stream.worker.metrics import Metrics
from stream.worker.processor import Processor


def register(
    app: faust.App, metrics: Metrics, processor: Processor, feed: BoardFeed | None = None
) -> None:
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(metrics.registry), content_type="text/plain")

    async def health_page(web: Any, request: Any) -> Any:
        model = processor.model
        return web.json(
            {
                "status": "ok",
                "model": model.version,
                "index": processor.index.version,
                "provider": provider_of(model),
                "board": None if feed is None else feed.status(),
            }
        )

    app.page("/metrics")(metrics_page)
    app.page("/health")(health_page)


def provider_of(model: Any) -> str:
    return str(getattr(model, "provider", "unknown"))
