"""Products new to a shopper, recommended from the shoppers who shop like them.

A new item is a product the shopper did not buy in the 365 days before the boundary.
``neighbours`` ranks the retailer's products the shopper never bought by

    score(s, b) = log(pop_56(b) / max pop_56 + 1e-4)
                  + WEIGHT * log(nb(s, b) / max_b nb(s, b) + 1e-3)

- ``pop_56(b)``: the retailer's baskets holding ``b`` in the 56 days before the boundary
  (what sells now);
- ``nb(s, b) = sum_{v in N(s)} sim(s, v) * [v bought b]``: ``N(s)`` the ``NEIGHBOURS``
  shoppers of the same retailer most similar to ``s``, ``sim`` the cosine of their
  product vectors over the 365 days, each product weighted by ``log(1 + baskets)`` times
  its inverse shopper frequency ``log(shoppers / (1 + buyers))`` (``SIMILARITY =
  "log_idf"``; ``"binary"``: sets of products). What shoppers with the same habits buy
  besides what ``s`` buys: complementarity at the level of whole shopping habits, where
  the pairwise product lift of ``complements.py`` ties plain popularity.

Neighbours never cross retailers: a retailer's shoppers inform only that retailer's
recommendations. The settings were chosen on three validation boundaries before the
evaluation boundary (``bench/new_items_grid.py``, docs/MODEL.md). Pure: numpy and scipy.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NEIGHBOURS = 50
WEIGHT = 1.0
SIMILARITY = "log_idf"  # or "binary"
RECENT_DAYS = 56
CHUNK = 256  # shoppers scored at once (a dense chunk x products matrix)

ShopperKey = tuple[str, str]  # retailer_id, shopper_id


@dataclass
class RetailerHistory:
    """One retailer's shoppers x products: baskets holding the product, over 365 days and
    over the last ``RECENT_DAYS``."""

    shoppers: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    # One entry per (shopper, product) pair, as machine integers (4 bytes each, where a
    # list of Python ints costs ~36): a pool of 20,000 shoppers holds ~5 million pairs.
    rows: array[int] = field(default_factory=lambda: array("i"))
    columns: array[int] = field(default_factory=lambda: array("i"))
    baskets: array[int] = field(default_factory=lambda: array("i"))
    recent_baskets: array[int] = field(default_factory=lambda: array("i"))
    _product_index: dict[str, int] = field(default_factory=dict)

    def add(self, shopper: str, items: Iterable[tuple[str, int, int]]) -> None:
        row = len(self.shoppers)
        self.shoppers.append(shopper)
        for product, baskets, recent in items:
            column = self._product_index.setdefault(product, len(self.products))
            if column == len(self.products):
                self.products.append(product)
            self.rows.append(row)
            self.columns.append(column)
            self.baskets.append(baskets)
            self.recent_baskets.append(recent)


def add_packed(history: RetailerHistory, row: Mapping[str, object]) -> None:
    """Adds one shopper's row ``(shopper_id, items)`` to ``history``, ``items`` packed as
    ``product:baskets:recent_baskets`` joined by ``;``."""
    items = []
    for item in str(row["items"] or "").split(";"):
        if not item:
            continue
        product, baskets, recent = item.rsplit(":", 2)
        items.append((product, int(baskets), int(recent)))
    history.add(str(row["shopper_id"]), items)


def parse_packed(rows: Iterable[Mapping[str, object]]) -> dict[str, RetailerHistory]:
    """Rows ``(retailer_id, shopper_id, items)`` (one row per shopper, ``add_packed``),
    per retailer."""
    histories: dict[str, RetailerHistory] = {}
    for row in rows:
        add_packed(histories.setdefault(str(row["retailer_id"]), RetailerHistory()), row)
    return histories


def _top(ids: np.ndarray, scores: np.ndarray, products: list[str], k: int) -> list[str]:
    """The ``k`` best of the products ``ids`` by ``scores`` (finite), ties by product id:
    the same list whatever the candidates' order, or how many fell below the ``k``-th."""
    if k <= 0 or len(ids) == 0:
        return []
    if len(ids) > k:
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th largest
        keep = scores >= kth
        ids, scores = ids[keep], scores[keep]
    order = sorted(range(len(ids)), key=lambda j: (-float(scores[j]), products[ids[j]]))
    return [products[ids[j]] for j in order[:k]]


def _ranked(scores: np.ndarray, bought: np.ndarray, products: list[str], k: int) -> list[str]:
    scores = scores.copy()
    scores[bought] = -np.inf
    ids = np.flatnonzero(np.isfinite(scores))
    return _top(ids, scores[ids], products, k)


def popularity_order(log_popularity: np.ndarray, products: list[str]) -> np.ndarray:
    """The products by recent popularity, most popular first, ties by product id."""
    return np.lexsort((np.asarray(products, dtype=object), -log_popularity))


def _blended(
    votes: Any,
    own: Any,
    log_popularity: np.ndarray,
    order: np.ndarray,
    products: list[str],
    k: int,
    weight: float,
) -> list[list[str]]:
    """Each row's ``k`` best products never bought by the blend, from its neighbours'
    ``votes`` (a sparse row per shopper) and ``own`` products (sparse rows, the same
    order), as ``_ranked`` over every product would rank them, in time linear in the
    products the row's neighbours bought rather than in the catalogue: a product no
    neighbour bought scores ``log_popularity + weight * log(1e-3)``, so the best of
    those are the first in ``order`` that were neither voted for nor bought."""
    floor = weight * np.log(np.zeros(1) + 1e-3)  # the blend's neighbour term at nb = 0
    excluded = np.zeros(len(products), dtype=bool)
    out: list[list[str]] = []
    for row in range(votes.shape[0]):
        voted = votes.indices[votes.indptr[row] : votes.indptr[row + 1]]
        nb = votes.data[votes.indptr[row] : votes.indptr[row + 1]]
        voted, nb = voted[nb > 0], nb[nb > 0]
        bought = own.indices[own.indptr[row] : own.indptr[row + 1]]
        excluded[voted] = True
        excluded[bought] = True
        fill: list[int] = []
        at = 0
        while len(fill) < k and at < len(order):
            block = order[at : at + 4 * k]
            fill.extend(block[~excluded[block]].tolist())
            at += len(block)
        excluded[voted] = False
        excluded[bought] = False
        top = nb.max() if len(nb) else 0.0  # over every product, bought ones too
        keep = ~np.isin(voted, bought, assume_unique=True)
        voted, nb = voted[keep], nb[keep]
        ids = np.concatenate([voted, np.asarray(fill[:k], dtype=voted.dtype)])
        scores = np.concatenate(
            [
                log_popularity[voted] + weight * np.log(nb / top + 1e-3),
                log_popularity[fill[:k]] + floor,
            ]
        )
        out.append(_top(ids, scores, products, k))
    return out


def _normalized_profiles(history: RetailerHistory, bought: Any, similarity: str) -> Any:
    """Each shopper's product vector, of unit norm (rows of a sparse matrix)."""
    import scipy.sparse as sp

    if similarity == "binary":
        profiles = bought
    elif similarity == "log_idf":
        buyers = np.asarray(bought.sum(axis=0)).ravel()
        idf = np.maximum(np.log(len(history.shoppers) / (1.0 + buyers)), 0.0)
        counts = sp.csr_matrix(
            (np.log1p(np.asarray(history.baskets, dtype=float)), (history.rows, history.columns)),
            shape=bought.shape,
        )
        profiles = counts @ sp.diags(idf)
    else:
        raise ValueError(f"unknown similarity {similarity!r}: binary or log_idf")
    norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1)).ravel())
    return (sp.diags(1.0 / np.maximum(norms, 1e-12)) @ profiles).tocsr()


def _votes(closeness: np.ndarray, n_neighbours: int, bought: Any) -> Any:
    """Each row's neighbours' purchases weighed by their closeness (sparse rows): only the
    row's ``n_neighbours`` closest count."""
    import scipy.sparse as sp

    rows, columns = closeness.shape
    if n_neighbours <= 0 or columns == 0:
        return sp.csr_matrix((rows, bought.shape[1]))
    n = min(n_neighbours, columns)
    nearest = np.argpartition(-closeness, n - 1, axis=1)[:, :n]
    weights = np.take_along_axis(closeness, nearest, axis=1)
    kept = sp.csr_matrix(
        (weights.ravel(), nearest.ravel(), np.arange(0, rows * n + 1, n)), shape=(rows, columns)
    )
    kept.eliminate_zeros()
    kept.sort_indices()  # sums in column order, as from a dense matrix
    return (kept @ bought).tocsr()


def recommend(
    histories: Mapping[str, RetailerHistory],
    shoppers: Iterable[ShopperKey],
    k: int,
    neighbours: int = NEIGHBOURS,
    weight: float = WEIGHT,
    similarity: str = SIMILARITY,
    ablations: bool = True,
) -> dict[str, dict[ShopperKey, list[str]]]:
    """Per method, each shopper's ``k`` best products never bought.

    Methods: ``neighbours`` (the blend above), and, with ``ablations``, its two parts
    alone: ``g_topfreq_new_56d`` (recent popularity) and ``neighbours_only``.
    """
    import scipy.sparse as sp  # not at import: the decision path never needs it

    wanted: dict[str, list[str]] = {}
    for retailer, shopper in shoppers:
        wanted.setdefault(retailer, []).append(shopper)
    methods = (
        ("neighbours", "neighbours_only", "g_topfreq_new_56d") if ablations else ("neighbours",)
    )
    out: dict[str, dict[ShopperKey, list[str]]] = {m: {} for m in methods}
    for retailer, names in sorted(wanted.items()):
        history = histories.get(retailer)
        if history is None or not history.shoppers:
            continue
        shape = (len(history.shoppers), len(history.products))
        bought = sp.csr_matrix(
            (np.ones(len(history.rows)), (history.rows, history.columns)), shape=shape
        )
        recent = sp.csr_matrix(
            (np.asarray(history.recent_baskets, dtype=float), (history.rows, history.columns)),
            shape=shape,
        )
        popularity = np.asarray(recent.sum(axis=0)).ravel()
        if popularity.max() <= 0:
            continue
        log_popularity = np.log(popularity / popularity.max() + 1e-4)
        normalized = _normalized_profiles(history, bought, similarity)
        index = {s: i for i, s in enumerate(history.shoppers)}
        present = [index[s] for s in names if s in index]
        n_neighbours = min(neighbours, len(history.shoppers) - 1)
        order = popularity_order(log_popularity, history.products)
        for start in range(0, len(present), CHUNK):
            ids = np.asarray(present[start : start + CHUNK])
            closeness = (normalized[ids] @ normalized.T).toarray()
            closeness[np.arange(len(ids)), ids] = 0.0
            votes = _votes(closeness, n_neighbours, bought)
            keys = [(retailer, history.shoppers[row]) for row in ids.tolist()]
            ranked = _blended(
                votes, bought[ids], log_popularity, order, history.products, k, weight
            )
            out["neighbours"].update(zip(keys, ranked, strict=True))
            if not ablations:
                continue
            dense = np.asarray(votes.todense())
            for row, (key, shopper_row) in enumerate(zip(keys, ids.tolist(), strict=True)):
                own = bought.indices[bought.indptr[shopper_row] : bought.indptr[shopper_row + 1]]
                out["neighbours_only"][key] = _ranked(
                    dense[row] + 1e-9 * popularity, own, history.products, k
                )
                out["g_topfreq_new_56d"][key] = _ranked(popularity, own, history.products, k)
    return out


@dataclass
class NeighbourPool:
    """One retailer's pool of possible neighbours, prepared once per task: their unit
    profile vectors, what they bought, and the products' recent popularity (the matrices
    only: the parsed history they came from is not kept)."""

    products: list[str]
    shoppers: int
    bought: Any
    normalized: Any
    idf: Any
    log_popularity: Any
    index: dict[str, int]
    columns: dict[str, int]  # product id -> its column
    normalized_t: Any  # ``normalized`` transposed, as rows: one conversion a task
    order: Any  # ``popularity_order``


def prepare_pool(history: RetailerHistory, similarity: str = SIMILARITY) -> NeighbourPool | None:
    """The pool's matrices (None when the pool has no recent basket to rank by)."""
    import scipy.sparse as sp

    shape = (len(history.shoppers), len(history.products))
    if not history.shoppers:
        return None
    bought = sp.csr_matrix((np.ones(len(history.rows)), (history.rows, history.columns)), shape)
    recent = sp.csr_matrix(
        (np.asarray(history.recent_baskets, dtype=float), (history.rows, history.columns)), shape
    )
    popularity = np.asarray(recent.sum(axis=0)).ravel()
    if popularity.max() <= 0:
        return None
    buyers = np.asarray(bought.sum(axis=0)).ravel()
    idf = (
        np.maximum(np.log(len(history.shoppers) / (1.0 + buyers)), 0.0)
        if similarity == "log_idf"
        else np.ones(len(history.products))
    )
    normalized = _normalized_profiles(history, bought, similarity)
    log_popularity = np.log(popularity / popularity.max() + 1e-4)
    return NeighbourPool(
        products=history.products,
        shoppers=len(history.shoppers),
        bought=bought,
        normalized=normalized,
        idf=idf,
        log_popularity=log_popularity,
        index={s: i for i, s in enumerate(history.shoppers)},
        columns={p: i for i, p in enumerate(history.products)},
        normalized_t=normalized.T.tocsr(),
        order=popularity_order(log_popularity, history.products),
    )


def recommend_from_pool(
    pool: NeighbourPool,
    batch: RetailerHistory,
    k: int,
    neighbours: int = NEIGHBOURS,
    weight: float = WEIGHT,
    similarity: str = SIMILARITY,
) -> dict[str, list[str]]:
    """``recommend``'s ``neighbours`` method for a batch of one retailer's shoppers whose
    neighbours are drawn from ``pool`` (a sample of the retailer's shoppers, held once per
    task): memory is the pool's plus the batch's, whatever the population. With a pool of
    every shopper it ranks exactly as ``recommend`` (a shopper's own vector norm scales
    its row of closeness only, which neither the top neighbours nor ``nb / max nb`` see).
    """
    import scipy.sparse as sp

    products = pool.products
    # The batch's products as the pool's columns (-1: no neighbour in the pool bought it,
    # so it weighs on no closeness), then every pair at once.
    at = np.fromiter(
        (pool.columns.get(p, -1) for p in batch.products), np.int64, len(batch.products)
    )
    pairs = at[np.asarray(batch.columns, dtype=np.int64)]
    known = pairs >= 0
    rows, cols = np.asarray(batch.rows, dtype=np.int64)[known], pairs[known]
    weights = (
        np.ones(len(rows))
        if similarity == "binary"
        else np.log1p(np.asarray(batch.baskets, dtype=float)[known])
    )
    shape = (len(batch.shoppers), len(products))
    own = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape)
    own.data[:] = 1.0
    profiles = sp.csr_matrix((weights, (rows, cols)), shape) @ sp.diags(pool.idf)
    n_neighbours = min(neighbours, pool.shoppers - 1)
    out: dict[str, list[str]] = {}
    for start in range(0, len(batch.shoppers), CHUNK):
        names = batch.shoppers[start : start + CHUNK]
        closeness = (profiles[start : start + len(names)] @ pool.normalized_t).toarray()
        for row, shopper in enumerate(names):
            if shopper in pool.index:
                closeness[row, pool.index[shopper]] = 0.0
        votes = _votes(closeness, n_neighbours, pool.bought)
        ranked = _blended(
            votes,
            own[start : start + len(names)],
            pool.log_popularity,
            pool.order,
            products,
            k,
            weight,
        )
        out.update(zip(names, ranked, strict=True))
    return out
