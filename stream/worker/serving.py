"""Which item index a worker serves: the configured folder, hot-swapped when a new version lands.

The worker never builds an index: the CLI (``moodstream worker`` or ``demo``) prepares the demo
index before the app is made when no ``--index-dir`` is given (stream.devtools.demo_index).
"""

from __future__ import annotations

from pathlib import Path

from stream.adapters.index import FaissItemIndex, IndexHolder
from stream.adapters.model_card import model_fingerprint
from stream.errors import ConfigError, IndexError_
from stream.ports import SentimentModel
from stream.settings import Settings


def index_holder(settings: Settings, model: SentimentModel) -> IndexHolder:
    """A holder that hot-swaps ``settings.index_dir`` when its manifest names a new version."""
    folder = _index_folder(settings)
    fingerprint = model_fingerprint(settings.model_dir, model)
    return IndexHolder(
        str(folder),
        loader=lambda where: FaissItemIndex.load(where, model_sha256=fingerprint),
    )


def load_index(settings: Settings, model: SentimentModel) -> FaissItemIndex:
    """The index ``settings.index_dir`` names, checked against the model it was built for."""
    folder = _index_folder(settings)
    return FaissItemIndex.load(folder, model_sha256=model_fingerprint(settings.model_dir, model))


def _index_folder(settings: Settings) -> Path:
    if not settings.index_dir:
        raise ConfigError("no item index: set --index-dir (MOODSTREAM_INDEX_DIR)")
    folder = Path(settings.index_dir)
    if not (folder / "manifest.json").is_file():
        raise IndexError_(f"{folder} is not an index folder (no manifest.json)")
    return folder
