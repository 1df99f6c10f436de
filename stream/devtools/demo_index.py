"""The out-of-the-box index: the simulator's seeded catalog, built once and cached.

So ``moodstream broker`` + ``moodstream worker`` + ``moodstream simulate --produce`` recommend
with no index of one's own; the CLI calls ``with_demo_index`` before it makes the app.
"""

from __future__ import annotations

import logging
from pathlib import Path

from stream.adapters.index import build_index
from stream.adapters.model_card import model_fingerprint
from stream.offline.catalog import embed_documents
from stream.ports import SentimentModel
from stream.settings import Settings
from stream.sim.simulate import make_catalog

DEMO_SEED = 0  # the simulator's default seed and catalog size: its events hit these items
DEMO_ITEMS = 500
log = logging.getLogger("moodstream.demo_index")


def demo_index_dir(settings: Settings, fingerprint: str) -> Path:
    return (
        Path(settings.data_dir).parent
        / "demo-index"
        / f"{fingerprint[:12]}-{DEMO_SEED}-{DEMO_ITEMS}"
    )


def build_demo_index(
    settings: Settings, model: SentimentModel, out: Path, fingerprint: str
) -> None:
    catalog = make_catalog(DEMO_SEED, DEMO_ITEMS)
    docs = {item.item_id: [f"{item.title}. {item.text}"] for item in catalog}
    ids, vectors = embed_documents(docs, model, batch_size=settings.batch_size)
    build_index(
        ids,
        vectors,
        out,
        fingerprint,
        source=f"simulated catalog seed={DEMO_SEED} items={DEMO_ITEMS}",
    )


def with_demo_index(settings: Settings, model: SentimentModel | None = None) -> Settings:
    """The settings unchanged when they name an index; else pointing at the (cached) demo index,
    built first with ``model`` (or the settings' model) if it is not there yet."""
    if settings.index_dir:
        return settings
    fingerprint = model_fingerprint(settings.model_dir, model)
    folder = demo_index_dir(settings, fingerprint)
    if not (folder / "manifest.json").is_file():
        if model is None:
            from stream.adapters.sentiment import OnnxSentimentModel

            model = OnnxSentimentModel.from_settings(settings)
        log.info("building the demo index in %s", folder)
        build_demo_index(settings, model, folder, fingerprint)
    return settings.replace(index_dir=str(folder))
