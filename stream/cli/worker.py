"""``moodstream worker``: the Faust agents until SIGTERM/Ctrl-C (graceful: offsets committed)."""

from __future__ import annotations

import logging
from typing import Any

import click

from stream.cli.options import pop_settings, settings_options


@click.command()
@settings_options
def worker(**kwargs: Any) -> None:
    """Consume reviews, chats, clicks and erasures; emit recommendations and dead letters."""
    settings = pop_settings(kwargs)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    from faust.worker import Worker

    from stream.devtools.demo_index import with_demo_index
    from stream.worker.app import make_app

    settings = with_demo_index(settings)
    made = make_app(settings)
    log = logging.getLogger("moodstream.worker")
    processor = made.processor
    log.info(
        "worker %s: broker %s, store %s, model %s on %s, index %s (%d items)",
        settings.app_id,
        settings.broker,
        settings.store,
        processor.model.version,
        getattr(processor.model, "provider", "?"),
        processor.index.version,
        len(processor.index.ids()),
    )
    Worker(made.app, loglevel=settings.log_level, quiet=True).execute_from_commandline()
