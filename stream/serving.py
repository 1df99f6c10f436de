"""Which item index a worker serves: the configured folder, or the demo index built once and cached.

The demo index comes from the simulator's seeded catalog, so ``moodstream broker`` +
``moodstream worker`` + ``moodstream simulate --produce`` recommend out of the box.
"""

from __future__ import annotations

import logging
from pathlib import Path

from stream.errors import IndexError_
from stream.index import FaissItemIndex, IndexHolder, build_index
from stream.ports import SentimentModel
from stream.settings import Settings

DEMO_SEED = 0  # the simulator's default seed and catalog size: its events hit these items
DEMO_ITEMS = 500
log = logging.getLogger("moodstream.serving")


def demo_index_dir(settings: Settings, fingerprint: str) -> Path:
    return (
        Path(settings.data_dir).parent
        / "demo-index"
        / f"{fingerprint[:12]}-{DEMO_SEED}-{DEMO_ITEMS}"
    )


def build_demo_index(
    settings: Settings, model: SentimentModel, out: Path, fingerprint: str
) -> None:
    from stream.cli.index import embed_documents
    from stream.simulate import make_catalog

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


def index_holder(settings: Settings, model: SentimentModel) -> IndexHolder | None:
    """A holder that hot-swaps ``settings.index_dir`` when its manifest names a new version."""
    if not settings.index_dir:
        return None
    from stream.cli.index import model_fingerprint

    fingerprint = model_fingerprint(settings.model_dir, model)
    return IndexHolder(
        settings.index_dir,
        loader=lambda folder: FaissItemIndex.load(folder, model_sha256=fingerprint),
    )


def load_or_build_index(settings: Settings, model: SentimentModel) -> FaissItemIndex:
    """Load ``settings.index_dir``; without one, build (once) and cache the demo index."""
    from stream.cli.index import model_fingerprint

    fingerprint = model_fingerprint(settings.model_dir, model)
    if settings.index_dir:
        folder = Path(settings.index_dir)
        if not (folder / "manifest.json").is_file():
            raise IndexError_(f"{folder} is not an index folder (no manifest.json)")
        return FaissItemIndex.load(folder, model_sha256=fingerprint)
    folder = demo_index_dir(settings, fingerprint)
    if not (folder / "manifest.json").is_file():
        log.info("building the demo index in %s", folder)
        build_demo_index(settings, model, folder, fingerprint)
    return FaissItemIndex.load(folder)
