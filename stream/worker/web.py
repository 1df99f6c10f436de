"""The worker's web pages: Prometheus metrics, health, and one user's state (``/users/<id>``).

The port binds 127.0.0.1 unless ``--web-host`` says otherwise: ``/users/<id>`` shows a user's
mood and history, for the operators of this machine only.
"""

from __future__ import annotations

import time
from typing import Any

import faust
from prometheus_client import generate_latest

from stream.worker.board_feed import BoardFeed
from stream.worker.inspect import user_view
from stream.worker.metrics import Metrics
from stream.worker.pipeline import leave
from stream.worker.processor import Processor


def register(
    app: faust.App,
    metrics: Metrics,
    processor: Processor,
    users: Any,
    feed: BoardFeed | None = None,
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

    async def user_page(web: Any, request: Any, user_id: str) -> Any:
        leave()  # no event entered: read the user from whichever local partition holds them
        view = user_view(user_id, users.get(user_id), processor, int(time.time() * 1000))
        if view is None:
            message = (
                f"no state for user {user_id!r} on this worker (unknown, erased, or on a "
                "partition another worker owns)"
            )
            return web.json({"error": message}, status=404)
        return web.json(view)

    app.page("/metrics")(metrics_page)
    app.page("/health")(health_page)
    app.page("/users/{user_id}")(user_page)


def provider_of(model: Any) -> str:
    return str(getattr(model, "provider", "unknown"))
