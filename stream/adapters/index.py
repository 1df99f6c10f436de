"""FAISS adapter for the ``ItemIndex`` port: build, load, search, and hot-swap item indexes.

An index folder holds ``index.faiss``, ``ids.json``, ``vectors.npy`` (the unit item embeddings,
for MMR and taste updates) and ``manifest.json``. Up to ``exact_max`` items the index is exact
(``IndexFlatIP``); above that it is HNSW, and the build measures recall@50 against exact search
on a seeded query sample, raising efSearch until the target holds, and records it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from stream.errors import IndexError_

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
VECTORS_FILE = "vectors.npy"
MANIFEST_FILE = "manifest.json"
RECALL_K = 50
# Single queries are fastest on one OpenMP thread without BLAS (DESIGN.md, measured again in
# benchmarks/index.py); batches of at least this many queries go through BLAS.
BLAS_MIN_QUERIES = 8
SMALL_BATCH = 64  # below this many queries search on one thread
_DEFAULT_THREADS = faiss.omp_get_max_threads()  # before any index narrows it

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class IndexManifest:
    version: str
    dim: int
    count: int
    kind: str  # flat | hnsw
    metric: str  # inner_product
    model_sha256: str
    built_at: str  # ISO 8601, UTC
    source: str  # what the item texts came from
    recall_at_50: float | None = None  # measured against exact search (hnsw only)
    hnsw_m: int | None = None
    ef_construction: int | None = None
    ef_search: int | None = None
    note: str = ""
    centered: bool = False  # the items' mean was subtracted before normalising

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexManifest:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except TypeError as exc:
            raise IndexError_(f"manifest is missing fields: {exc}") from exc


# ----------------------------------------------------------------------------- build


def normalise_rows(vectors: npt.ArrayLike) -> Vectors:
    """Unit rows in float32; zero or non-finite rows are an error (they cannot be searched)."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2:
        raise IndexError_(f"item vectors must be 2-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise IndexError_("item vectors contain NaN or infinity")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if (norms < 1e-12).any():
        bad = int(np.argmax(norms.reshape(-1) < 1e-12))
        raise IndexError_(f"item vector at row {bad} is all zeros")
    return np.ascontiguousarray(arr / norms, dtype=np.float32)


# Below this many items the mean is mostly the items' own topics, not a shared direction.
CENTRE_MIN_ITEMS = 32


def centre_rows(vectors: Vectors) -> Vectors:
    """Unit rows after subtracting the rows' mean (see ``build_index`` for why)."""
    return normalise_rows(vectors - vectors.mean(axis=0, keepdims=True))


def recall_queries(vectors: Vectors, n: int, seed: int) -> Vectors:
    """A seeded sample shaped like taste queries: normalised, positively weighted blends of one
    to six random items (a taste vector is a decayed sum of items; blends lie off the item
    manifold and are harder for HNSW than item-like queries, so the estimate is not flattered).
    """
    rng = np.random.default_rng(seed)
    count, _ = vectors.shape
    sizes = rng.integers(1, 7, size=n)
    rows = []
    for m in sizes:
        picks = vectors[rng.integers(0, count, size=m)]
        rows.append((picks * rng.uniform(0.3, 1.0, size=(m, 1))).sum(axis=0))
    return normalise_rows(np.vstack(rows))


def recall_at_k(approx_ids: npt.NDArray[np.int64], exact_ids: npt.NDArray[np.int64]) -> float:
    """Mean share of the exact top-k found by the approximate search (-1 = no hit)."""
    k = exact_ids.shape[1]
    found = 0
    for a, e in zip(approx_ids, exact_ids, strict=True):
        found += len(set(a[a >= 0].tolist()) & set(e[e >= 0].tolist()))
    return found / (k * exact_ids.shape[0])


def _content_version(ids: Sequence[str], vectors: Vectors, kind: str, model_sha256: str) -> str:
    h = hashlib.sha256()
    h.update(f"{kind}\0{model_sha256}\0".encode())
    h.update("\0".join(ids).encode("utf-8"))
    h.update(vectors.tobytes())
    return h.hexdigest()[:16]


def make_index(
    ids: Sequence[str],
    vectors: npt.ArrayLike,
    model_sha256: str,
    *,
    exact_max: int = 50_000,
    source: str = "",
    hnsw_m: int = 32,
    ef_construction: int = 200,
    ef_search: int = 64,
    recall_target: float = 0.95,
    n_queries: int = 500,
    seed: int = 0,
    max_ef_search: int = 1024,
    center: bool = True,
    version: str | None = None,
    built_at: str | None = None,
    threads: int = 0,
) -> FaissItemIndex:
    """Build an index in memory (vectors normalised and centred, FAISS structure, manifest).

    HNSW: efConstruction 200 builds a markedly better graph than FAISS's default 40 or 80
    (benchmarks/index.py: at 100k items recall@50 plateaus near 0.93 with 80, reaches 0.96 with
    200) for a one-off cost of a few minutes. efSearch starts at ``ef_search`` and doubles until
    recall@50 on a seeded query sample reaches ``recall_target``; if even ``max_ef_search``
    falls short, the index is exact instead and the manifest says why.

    ``center`` subtracts the items' mean vector before normalising. The fine-tuned encoder puts
    every text near one common direction (mean pairwise cosine 0.9 among items built from the
    Musical Instruments reviews); the topic lives in what is left. Without centering, a negative
    review subtracts mostly that common direction and turns a user's taste upside down. On the
    demo catalog centering moves same- vs cross-category cosine from 0.83/0.76 to 0.25/-0.04 and
    keeps 5-nearest-neighbour category agreement at 95%. Taste vectors are sums of these stored
    vectors, so queries live in the same centred space.

    ``version`` / ``built_at``: the manifest's (default: a hash of the content / now).
    """
    ids = [str(i) for i in ids]
    vecs, centered = _checked_vectors(ids, vectors, center)
    count, dim = vecs.shape
    kind = "flat" if count <= exact_max else "hnsw"
    index: faiss.Index
    note, recall, ef = "", None, None
    if kind == "hnsw":
        index, recall, ef = _tuned_hnsw(
            vecs, hnsw_m, ef_construction, ef_search, recall_target, n_queries, seed, max_ef_search
        )
        if recall < recall_target:
            note = f"hnsw recall@50 {recall:.3f} < {recall_target} at efSearch {ef}: exact instead"
            kind, index, recall, ef = "flat", _flat(vecs), None, None
    else:
        index = _flat(vecs)
    manifest = IndexManifest(
        version=version or _content_version(ids, vecs, kind, model_sha256),
        dim=dim,
        count=count,
        kind=kind,
        metric="inner_product",
        model_sha256=model_sha256,
        built_at=built_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        source=source,
        recall_at_50=None if recall is None else round(recall, 4),
        hnsw_m=hnsw_m if kind == "hnsw" else None,
        ef_construction=ef_construction if kind == "hnsw" else None,
        ef_search=ef if kind == "hnsw" else None,
        note=note,
        centered=centered,
    )
    return FaissItemIndex(index, ids, vecs, manifest, threads=threads)


def _checked_vectors(ids: list[str], vectors: npt.ArrayLike, center: bool) -> tuple[Vectors, bool]:
    """Unit (and, with ``center`` and enough items, centred) rows; (rows, centred)."""
    if not ids:
        raise IndexError_("no items to index")
    if len(set(ids)) != len(ids):
        dupes = sorted(i for i, n in Counter(ids).items() if n > 1)[:5]
        raise IndexError_(f"duplicate item ids, e.g. {dupes}")
    vecs = normalise_rows(vectors)
    if vecs.shape[0] != len(ids):
        raise IndexError_(f"{len(ids)} ids but {vecs.shape[0]} vectors")
    centered = center and vecs.shape[0] >= CENTRE_MIN_ITEMS
    return (centre_rows(vecs) if centered else vecs), centered


def _flat(vecs: Vectors) -> faiss.Index:
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)
    return index


def _tuned_hnsw(
    vecs: Vectors,
    hnsw_m: int,
    ef_construction: int,
    ef_search: int,
    recall_target: float,
    n_queries: int,
    seed: int,
    max_ef_search: int,
) -> tuple[faiss.Index, float, int]:
    """An HNSW index with efSearch doubled until recall@50 reaches the target; (index, recall,
    efSearch)."""
    count, dim = vecs.shape
    hnsw = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = ef_construction
    hnsw.add(vecs)
    queries = recall_queries(vecs, n_queries, seed)
    k = min(RECALL_K, count)
    _, exact_ids = _search_batched(_flat(vecs), queries, k)
    ef = ef_search
    while True:
        hnsw.hnsw.efSearch = ef
        _, approx_ids = _search_batched(hnsw, queries, k)
        recall = recall_at_k(approx_ids, exact_ids)
        if recall >= recall_target or ef >= max_ef_search:
            return hnsw, recall, ef
        ef *= 2


def write_index(index: FaissItemIndex, folder: str | Path) -> IndexManifest:
    """Write an index folder; returns its manifest.

    The folder is written beside ``folder`` and renamed into place, so a reader never sees a
    half-written folder (an existing index there is replaced).
    """
    structure = index._index
    if index.on_gpu:
        structure = faiss.index_gpu_to_cpu(structure)
    _write_folder(Path(folder), structure, index.ids(), index._vectors, index.manifest)
    return index.manifest


def build_index(
    ids: Sequence[str],
    vectors: npt.ArrayLike,
    out_dir: str | Path,
    model_sha256: str,
    **options: Any,
) -> IndexManifest:
    """``make_index`` (its options) then ``write_index`` into ``out_dir``; returns the manifest."""
    return write_index(make_index(ids, vectors, model_sha256, **options), out_dir)


def _write_folder(
    out: Path, index: faiss.Index, ids: list[str], vecs: Vectors, manifest: IndexManifest
) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        faiss.write_index(index, str(tmp / INDEX_FILE))
        (tmp / IDS_FILE).write_text(json.dumps(ids), encoding="utf-8")
        np.save(tmp / VECTORS_FILE, vecs)
        # the manifest goes last: a folder with a manifest is complete
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
        if out.exists():
            if not (out / MANIFEST_FILE).exists() and any(out.iterdir()):
                raise IndexError_(f"{out} exists and is not an item index: not replacing it")
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _search_batched(
    index: faiss.Index, queries: Vectors, k: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    _blas_for_batches(index.d)
    scores, labels = index.search(queries, k)
    return scores, labels


def _blas_for_batches(dim: int) -> None:
    """Flat search uses BLAS when queries x dim reaches this threshold (default 128,000, which
    makes a 256-query batch several times slower); lower it so batches of
    ``BLAS_MIN_QUERIES`` or more take the BLAS path and single queries do not."""
    faiss.cvar.distance_compute_blas_threshold = BLAS_MIN_QUERIES * dim


# ----------------------------------------------------------------------------- load & search


def read_manifest(folder: str | Path) -> IndexManifest:
    path = Path(folder) / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexError_(f"no item index at {folder} (missing {MANIFEST_FILE})") from exc
    except (OSError, ValueError) as exc:
        raise IndexError_(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise IndexError_(f"{path} is not a JSON object")
    return IndexManifest.from_dict(data)


def read_ids(folder: str | Path) -> list[str]:
    """The item ids of an index folder, without loading FAISS structures."""
    manifest = read_manifest(folder)
    path = Path(folder) / IDS_FILE
    try:
        ids = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexError_(f"cannot read {path}: {exc}") from exc
    if not isinstance(ids, list) or len(ids) != manifest.count:
        raise IndexError_(f"{path} does not hold the {manifest.count} ids the manifest promises")
    return [str(i) for i in ids]


def gpu_count() -> int:
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class FaissItemIndex:
    """A loaded, read-only item index. Safe to search from several threads."""

    def __init__(
        self,
        index: faiss.Index,
        ids: list[str],
        vectors: Vectors,
        manifest: IndexManifest,
        *,
        threads: int = 0,
        gpu_resources: Any = None,
    ) -> None:
        self._index = index
        self._ids = ids
        self._rows = {item_id: row for row, item_id in enumerate(ids)}
        self._id_array = np.array(ids, dtype=object)  # labels -> ids in one take per search
        self._vectors = vectors
        self._manifest = manifest
        self._threads = threads if threads > 0 else _DEFAULT_THREADS
        self._gpu_resources = gpu_resources  # must outlive the GPU index
        self.on_gpu = gpu_resources is not None

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        expected_dim: int | None = None,
        model_sha256: str | None = None,
        ef_search: int | None = None,
        threads: int = 0,
        use_gpu: bool | None = None,
    ) -> FaissItemIndex:
        """Load and check an index folder.

        ``expected_dim`` / ``model_sha256``: refuse an index built for another model.
        ``use_gpu``: None = move an exact index to the GPU when FAISS sees one (HNSW stays on
        the CPU: FAISS has no GPU HNSW).
        """
        folder = Path(folder)
        manifest = read_manifest(folder)
        if expected_dim is not None and manifest.dim != expected_dim:
            raise IndexError_(
                f"index at {folder} has dim {manifest.dim}, the model gives {expected_dim}"
            )
        if model_sha256 is not None and manifest.model_sha256 != model_sha256:
            raise IndexError_(
                f"index at {folder} was built with model {manifest.model_sha256[:12]}, "
                f"this worker runs {model_sha256[:12]}: rebuild it (moodstream index build)"
            )
        ids = read_ids(folder)
        try:
            index = faiss.read_index(str(folder / INDEX_FILE))
            # A plain ndarray view of the mapping: memmap's subclass hooks cost more than the
            # copy when the ranker gathers ~120 rows per recommendation.
            vectors = np.asarray(np.load(folder / VECTORS_FILE, mmap_mode="r"))
        except (OSError, RuntimeError, ValueError) as exc:
            raise IndexError_(f"cannot read index files in {folder}: {exc}") from exc
        if index.d != manifest.dim or index.ntotal != manifest.count:
            raise IndexError_(f"{folder}/{INDEX_FILE} does not match its manifest")
        if vectors.shape != (manifest.count, manifest.dim) or vectors.dtype != np.float32:
            raise IndexError_(f"{folder}/{VECTORS_FILE} does not match its manifest")
        if read_manifest(folder).version != manifest.version:
            raise IndexError_(f"index at {folder} changed while loading; try again")
        ef = ef_search if ef_search is not None else manifest.ef_search
        if manifest.kind == "hnsw" and ef is not None:
            hnsw: Any = faiss.downcast_index(index)
            hnsw.hnsw.efSearch = ef
        resources = None
        wants_gpu = gpu_count() > 0 if use_gpu is None else use_gpu
        if wants_gpu and manifest.kind == "flat":
            if gpu_count() == 0:
                raise IndexError_("use_gpu=True but FAISS sees no GPU (is faiss-gpu installed?)")
            resources = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(resources, 0, index)
        return cls(index, ids, vectors, manifest, threads=threads, gpu_resources=resources)

    @property
    def version(self) -> str:
        return self._manifest.version

    @property
    def dim(self) -> int:
        return self._manifest.dim

    @property
    def manifest(self) -> IndexManifest:
        return self._manifest

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> list[str]:
        return list(self._ids)

    def search(self, vectors: Vectors, k: int) -> tuple[npt.NDArray[np.float32], list[list[str]]]:
        """Top-k ids by inner product per query row; fewer than k when the index is smaller."""
        queries = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if queries.ndim == 1:
            queries = queries.reshape(1, -1)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be (n, {self.dim}), got {queries.shape}")
        n = queries.shape[0]
        k = min(int(k), len(self._ids))
        if n == 0 or k <= 0:
            return np.zeros((n, 0), dtype=np.float32), [[] for _ in range(n)]
        if not self.on_gpu:
            faiss.omp_set_num_threads(1 if n < SMALL_BATCH else self._threads)
            _blas_for_batches(self.dim)
        scores, labels = self._index.search(queries, k)
        if (labels >= 0).all():
            out_ids = self._id_array[labels].tolist()
        else:  # an approximate index may find fewer than k
            out_ids = [[self._ids[j] for j in row if j >= 0] for row in labels]
        return scores.astype(np.float32, copy=False), out_ids

    def vectors(self, item_ids: Sequence[str]) -> Vectors:
        """Unit embeddings of known items, one row per id; an unknown id raises KeyError."""
        rows = [self._rows[i] for i in item_ids]
        return np.asarray(self._vectors[rows], dtype=np.float32).reshape(len(rows), self.dim)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows


# ----------------------------------------------------------------------------- hot swap
