"""Ranking metrics for one relevant item per test point: Recall@K, NDCG@K, MRR, coverage.

Why a module apart from ``backtest.point_metrics`` (one K, HR only): the ReDial evaluation
reports Recall@1/10/50 over the full catalog, so it needs several cutoffs, ranks taken from
scores over every item (not only a top-K list), and the dialogue's exclusions. Ranks are
1-based; 0 means the target was not ranked (counts as a miss everywhere).
Per-point arrays feed ``backtest.paired_bootstrap`` unchanged.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
DEFAULT_KS: tuple[int, ...] = (1, 10, 50)


def rank_in_list(ranked: Sequence[str], target: str, exclude: Collection[str] = ()) -> int:
    """1-based position of ``target`` in ``ranked`` once ``exclude`` is removed; 0 if absent
    (or excluded itself)."""
    if target in exclude:
        return 0
    pos = 0
    for item in ranked:
        if item in exclude:
            continue
        pos += 1
        if item == target:
            return pos
    return 0


def rank_in_scores(
    scores: npt.ArrayLike, target: int, exclude: Collection[int] | npt.ArrayLike = ()
) -> int:
    """1-based rank of row ``target`` among all rows by score, higher first, rows in
    ``exclude`` removed. Ties go to the lower row (deterministic, and neither optimistic nor
    a reward for constant scores: an all-equal scorer ranks the target at its row order).
    0 when the target is excluded or its score is not finite."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    ex = np.zeros(s.size, dtype=bool)
    rows = np.asarray(list(exclude) if isinstance(exclude, Collection) else exclude, dtype=np.int64)
    if rows.size:
        ex[rows] = True
    t = s[target]
    if ex[target] or not np.isfinite(t):
        return 0
    live = ~ex & np.isfinite(s)
    above = live & ((s > t) | ((s == t) & (np.arange(s.size) < target)))
    return int(above.sum()) + 1


def per_point(
    ranks: npt.ArrayLike, ks: Sequence[int] = DEFAULT_KS, ndcg_k: int = 10
) -> dict[str, Floats]:
    """Per test point: ``recall@k`` for each k (= HR@k with one relevant item), ``ndcg@k``
    (1 / log2(rank + 1) within k) and ``rr`` (1 / rank, any depth)."""
    r = np.asarray(ranks, dtype=np.float64).reshape(-1)
    out: dict[str, Floats] = {}
    for k in ks:
        out[f"recall@{k}"] = ((r >= 1) & (r <= k)).astype(np.float64)
    hit = (r >= 1) & (r <= ndcg_k)
    ndcg = np.zeros_like(r)
    np.divide(1.0, np.log2(r + 1.0), out=ndcg, where=hit)
    out[f"ndcg@{ndcg_k}"] = ndcg
    rr = np.zeros_like(r)
    np.divide(1.0, r, out=rr, where=r >= 1)
    out["rr"] = rr
    return out


def coverage(lists: Iterable[Sequence[str]], catalog_size: int, k: int | None = None) -> float:
    """Share of the catalog that appears in at least one shown list (its first ``k``)."""
    if catalog_size <= 0:
        return 0.0
    shown: set[str] = set()
    for items in lists:
        shown.update(items if k is None else items[:k])
    return len(shown) / catalog_size


def summarise(
    ranks: npt.ArrayLike,
    ks: Sequence[int] = DEFAULT_KS,
    ndcg_k: int = 10,
    *,
    lists: Iterable[Sequence[str]] | None = None,
    catalog_size: int = 0,
    coverage_k: int | None = 10,
) -> dict[str, float]:
    """Means of ``per_point`` (``mrr`` for the mean of ``rr``), ``n`` and, given the shown
    lists, ``coverage``. Empty input gives zeros."""
    points = per_point(ranks, ks, ndcg_k)
    n = int(points["rr"].size)
    out: dict[str, float] = {"n": float(n)}
    for name, values in points.items():
        out["mrr" if name == "rr" else name] = float(values.mean()) if n else 0.0
    if lists is not None:
        out["coverage"] = coverage(lists, catalog_size, coverage_k)
    return out


def by_group(
    ranks: npt.ArrayLike, groups: Sequence[str], **kwargs: object
) -> Mapping[str, dict[str, float]]:
    """``summarise`` per group label (e.g. the test point's history length bucket)."""
    r = np.asarray(ranks, dtype=np.float64).reshape(-1)
    labels = np.asarray(groups, dtype=object)
    if labels.size != r.size:
        raise ValueError(f"{r.size} ranks but {labels.size} group labels")
    return {
        str(g): summarise(r[labels == g], **kwargs)  # type: ignore[arg-type]
        for g in sorted(set(labels.tolist()))
    }
