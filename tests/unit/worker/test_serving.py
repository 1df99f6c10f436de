"""Index serving: the holder swaps in a rebuilt index and keeps serving through a broken one."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from stream.adapters.index import build_index
from stream.worker.serving import IndexHolder
from tests.unit.adapters.test_index import SHA, clustered, ids_for


def test_holder_swaps_to_a_rebuilt_index_and_survives_a_broken_one(tmp_path: Path) -> None:
    folder = tmp_path / "live"
    first = build_index(ids_for(50), clustered(50, seed=1), folder, SHA)
    holder = IndexHolder(folder)
    old = holder.index
    assert holder.version == first.version and not holder.reload()  # same version: no swap

    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        query = clustered(1, seed=3)
        while not stop.is_set():
            idx = holder.index  # one snapshot per request
            try:
                _, ids = idx.search(query, 5)
                idx.vectors(ids[0])
            except BaseException as exc:  # pragma: no cover - the assertion below reports it
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        second = build_index(ids_for(80, "new"), clustered(80, seed=2), folder, SHA)
        assert holder.reload() and holder.version == second.version != first.version
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert holder.index.ids()[0] == "new00000"
    assert old.search(clustered(1, seed=3), 1)[1][0][0].startswith("it")  # old readers unharmed

    (folder / "manifest.json").write_text(json.dumps({"version": "v3"}))
    assert not holder.reload()
    assert holder.version == second.version and "missing fields" in (holder.last_error or "")
