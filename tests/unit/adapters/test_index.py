from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from stream.adapters.index import (
    FaissItemIndex,
    IndexHolder,
    build_index,
    make_index,
    read_ids,
    read_manifest,
    recall_at_k,
    write_index,
)
from stream.errors import IndexError_

DIM = 32
SHA = "a" * 64


def clustered(n: int, seed: int = 0, clusters: int = 20) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    v = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def ids_for(n: int, prefix: str = "it") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


@pytest.fixture(scope="module")
def flat_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "flat"
    build_index(ids_for(500), clustered(500), out, SHA, source="test", center=False)
    return out


def test_flat_index_layout_manifest_and_exact_search(flat_dir: Path) -> None:
    assert {p.name for p in flat_dir.iterdir()} == {
        "index.faiss",
        "ids.json",
        "vectors.npy",
        "manifest.json",
    }
    manifest = read_manifest(flat_dir)
    assert (manifest.kind, manifest.dim, manifest.count) == ("flat", DIM, 500)
    assert manifest.metric == "inner_product" and manifest.model_sha256 == SHA
    assert manifest.recall_at_50 is None and manifest.source == "test"
    index = FaissItemIndex.load(flat_dir, expected_dim=DIM, model_sha256=SHA)
    assert index.version == manifest.version and index.dim == DIM and len(index) == 500
    vectors = clustered(500)
    queries = clustered(3, seed=9)
    scores, ids = index.search(queries, 10)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    assert ids == [[f"it{j:05d}" for j in row] for row in expected]
    assert np.allclose(scores, np.take_along_axis(queries @ vectors.T, expected, axis=1), atol=1e-5)
    single_scores, single_ids = index.search(queries[0], 5)  # a 1-D query is one row
    assert single_ids == [ids[0][:5]] and single_scores.shape == (1, 5)


def test_vectors_ids_and_edges(flat_dir: Path) -> None:
    index = FaissItemIndex.load(flat_dir)
    got = index.vectors(["it00007", "it00003"])
    assert np.allclose(got, clustered(500)[[7, 3]], atol=1e-6)
    assert got.flags.writeable  # a private copy, not the memory map
    with pytest.raises(KeyError):
        index.vectors(["nope"])
    assert index.ids() == ids_for(500) == read_ids(flat_dir)
    assert "it00001" in index and "nope" not in index
    scores, ids = index.search(clustered(2, seed=1), 10_000)  # more than the index holds
    assert len(ids[0]) == 500 and scores.shape == (2, 500)
    empty_scores, empty_ids = index.search(np.zeros((0, DIM), dtype=np.float32), 5)
    assert empty_ids == [] and empty_scores.shape == (0, 0)
    with pytest.raises(ValueError, match="queries"):
        index.search(np.zeros((1, DIM + 1), dtype=np.float32), 5)


def test_hnsw_above_exact_max_records_recall(tmp_path: Path) -> None:
    vectors = clustered(4000, seed=2)
    manifest = build_index(
        ids_for(4000), vectors, tmp_path / "h", SHA, exact_max=1000, n_queries=200, center=False
    )
    assert manifest.kind == "hnsw" and manifest.hnsw_m == 32
    assert manifest.recall_at_50 is not None and manifest.recall_at_50 >= 0.95
    assert manifest.ef_search is not None and manifest.ef_search >= 64
    index = FaissItemIndex.load(tmp_path / "h")
    rng = np.random.default_rng(5)  # taste-like queries: blends of a few items
    queries = vectors[rng.integers(0, 4000, (50, 4))].sum(axis=1)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :50]
    _, ids = index.search(queries, 50)
    approx = np.array([[int(i[2:]) for i in row] for row in ids])
    assert recall_at_k(approx, exact) >= 0.9


def test_unreachable_recall_falls_back_to_exact(tmp_path: Path) -> None:
    manifest = build_index(
        ids_for(1500),
        clustered(1500, seed=4),
        tmp_path / "x",
        SHA,
        exact_max=100,
        ef_search=1,
        max_ef_search=1,
        recall_target=1.01,
        n_queries=50,
    )
    assert manifest.kind == "flat" and "exact instead" in manifest.note


def test_recall_at_k_counts_overlap() -> None:
    exact = np.array([[1, 2, 3, 4]])
    assert recall_at_k(np.array([[4, 3, 9, -1]]), exact) == 0.5


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(IndexError_, match="duplicate"):
        build_index(["a", "a"], clustered(2), tmp_path / "d", SHA)
    with pytest.raises(IndexError_, match="2 ids but 3"):
        build_index(["a", "b"], clustered(3), tmp_path / "d", SHA)
    with pytest.raises(IndexError_, match="zeros"):
        build_index(["a"], np.zeros((1, DIM)), tmp_path / "d", SHA)
    with pytest.raises(IndexError_, match="no items"):
        build_index([], np.zeros((0, DIM)), tmp_path / "d", SHA)
    assert not (tmp_path / "d").exists()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(IndexError_, match="not an item index"):
        build_index(["a"], clustered(1), precious, SHA)
    assert (precious / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_loading_checks_model_dim_and_files(flat_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexError_, match="dim 32, the model gives 384"):
        FaissItemIndex.load(flat_dir, expected_dim=384)
    with pytest.raises(IndexError_, match="rebuild"):
        FaissItemIndex.load(flat_dir, model_sha256="b" * 64)
    with pytest.raises(IndexError_, match="no item index"):
        FaissItemIndex.load(tmp_path)
    broken = tmp_path / "broken"
    build_index(ids_for(10), clustered(10), broken, SHA)
    (broken / "ids.json").write_text(json.dumps(ids_for(9)))
    with pytest.raises(IndexError_, match="ids"):
        FaissItemIndex.load(broken)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(IndexError_, match="cannot read"):
        FaissItemIndex.load(broken)


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


def test_centering_removes_a_shared_direction_and_keeps_topics(tmp_path: Path) -> None:
    """A fine-tuned encoder puts every text near one direction; the index subtracts it."""
    rng = np.random.default_rng(3)
    topics = rng.normal(size=(4, DIM))
    common = rng.normal(size=DIM) * 6.0
    labels = np.arange(200) % 4
    raw = common + topics[labels] + 0.3 * rng.normal(size=(200, DIM))
    manifest = build_index(ids_for(200), raw, tmp_path / "c", SHA)
    assert manifest.centered
    stored = FaissItemIndex.load(tmp_path / "c").vectors(ids_for(200))
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)

    def gap(v: np.ndarray) -> float:
        sims = v @ v.T
        same = labels[:, None] == labels[None, :]
        np.fill_diagonal(same, False)
        return float(sims[same].mean() - sims[~same].mean())

    assert np.linalg.norm(stored.mean(axis=0)) < 0.1 < np.linalg.norm(unit.mean(axis=0))
    assert gap(stored) > 2 * gap(unit)
    # Pushing away from one item must not favour its own topic (the common part is gone).
    _, hits = FaissItemIndex.load(tmp_path / "c").search(-stored[:1], 20)
    assert all(int(h[2:]) % 4 != 0 for h in hits[0])


def test_make_index_is_exact_flat_search_against_numpy() -> None:
    """make_index in memory: a Flat index gives brute-force inner-product search over the
    stored (normalised, centred) vectors."""
    raw = clustered(300, seed=5)
    index = make_index(ids_for(300), raw, SHA, source="mem")
    assert index.manifest.kind == "flat" and index.manifest.centered
    assert index.manifest.count == 300 and index.manifest.source == "mem"
    stored = index.vectors(ids_for(300))
    queries = clustered(12, seed=6)
    scores, hits = index.search(queries, 10)
    exact = queries @ stored.T
    order = np.argsort(-exact, axis=1)[:, :10]
    assert hits == [[ids_for(300)[j] for j in row] for row in order]
    np.testing.assert_allclose(scores, np.take_along_axis(exact, order, axis=1), atol=1e-5)


def test_make_index_then_write_index_matches_build_index(tmp_path: Path) -> None:
    raw, ids = clustered(120, seed=7), ids_for(120)
    made = make_index(ids, raw, SHA, source="s", built_at="2020-01-01T00:00:00+00:00")
    manifest = write_index(made, tmp_path / "mw")
    assert manifest == made.manifest == read_manifest(tmp_path / "mw")
    build_index(ids, raw, tmp_path / "b", SHA, source="s")
    loaded = FaissItemIndex.load(tmp_path / "mw", use_gpu=False)
    built = FaissItemIndex.load(tmp_path / "b", use_gpu=False)
    assert loaded.version == built.version  # content hash: same ids, vectors, kind, model
    queries = clustered(8, seed=8)
    for other in (loaded, built):
        s_made, h_made = made.search(queries, 15)
        s_other, h_other = other.search(queries, 15)
        assert h_made == h_other
        np.testing.assert_allclose(s_made, s_other, atol=1e-6)


def test_make_index_version_and_checks() -> None:
    index = make_index(ids_for(10), clustered(10), SHA, version="v-fixed", threads=1)
    assert index.version == "v-fixed" and not index.manifest.centered  # too few to centre
    with pytest.raises(IndexError_):
        make_index(["a", "a"], clustered(2), SHA)
    with pytest.raises(IndexError_):
        make_index([], np.zeros((0, DIM)), SHA)
