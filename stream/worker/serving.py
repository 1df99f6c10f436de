"""Which item index a worker serves: the configured folder, hot-swapped when a new version lands.

The worker never builds an index: the CLI (``moodstream worker`` or ``demo``) prepares the demo
index before the app is made when no ``--index-dir`` is given (stream.devtools.demo_index).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from stream.adapters.index import FaissItemIndex, read_manifest
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


class IndexHolder:
    """Holds the current index; ``reload`` swaps in a newer one without blocking readers.

    Readers take ``holder.index`` once per request and use that object throughout (a search and
    the ``vectors`` of its hits then come from the same version). The swap is one attribute
    assignment; loading happens before it, on the reloading thread.
    """

    def __init__(
        self,
        folder: str | Path,
        loader: Callable[[Path], FaissItemIndex] = FaissItemIndex.load,
    ) -> None:
        self.folder = Path(folder)
        self._loader = loader
        self._lock = threading.Lock()
        self._index = loader(self.folder)
        self.last_error: str | None = None

    @property
    def index(self) -> FaissItemIndex:
        return self._index

    @property
    def version(self) -> str:
        return self._index.version

    def reload(self) -> bool:
        """Load the folder again if its manifest names another version; True when swapped.

        A folder that is missing, half-replaced or corrupt leaves the current index in place
        and records why in ``last_error``.
        """
        if not self._lock.acquire(blocking=False):
            return False  # another thread is already reloading
        try:
            try:
                if read_manifest(self.folder).version == self._index.version:
                    return False
                fresh = self._loader(self.folder)
            except IndexError_ as exc:
                self.last_error = str(exc)
                return False
            self._index = fresh
            self.last_error = None
            return True
        finally:
            self._lock.release()
