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


def _ranked(scores: np.ndarray, bought: np.ndarray, products: list[str], k: int) -> list[str]:
    scores = scores.copy()
    scores[bought] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k]
    order = sorted(top.tolist(), key=lambda i: (-float(scores[i]), products[i]))
    return [products[i] for i in order]


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
        for start in range(0, len(present), CHUNK):
            ids = np.asarray(present[start : start + CHUNK])
            closeness = (normalized[ids] @ normalized.T).toarray()
            closeness[np.arange(len(ids)), ids] = 0.0
            if n_neighbours > 0:
                cut = np.argpartition(-closeness, n_neighbours - 1, axis=1)[:, n_neighbours:]
                np.put_along_axis(closeness, cut, 0.0, axis=1)
            else:
                closeness[:] = 0.0
            votes = np.asarray((sp.csr_matrix(closeness) @ bought).todense())
            for row, shopper_row in enumerate(ids.tolist()):
                key = (retailer, history.shoppers[shopper_row])
                own = bought.indices[bought.indptr[shopper_row] : bought.indptr[shopper_row + 1]]
                nb = votes[row]
                top = nb.max()
                nb_norm = nb / top if top > 0 else nb
                blend = log_popularity + weight * np.log(nb_norm + 1e-3)
                out["neighbours"][key] = _ranked(blend, own, history.products, k)
                if ablations:
                    out["neighbours_only"][key] = _ranked(
                        nb + 1e-9 * popularity, own, history.products, k
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
    return NeighbourPool(
        products=history.products,
        shoppers=len(history.shoppers),
        bought=bought,
        normalized=_normalized_profiles(history, bought, similarity),
        idf=idf,
        log_popularity=np.log(popularity / popularity.max() + 1e-4),
        index={s: i for i, s in enumerate(history.shoppers)},
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
    columns = {p: i for i, p in enumerate(products)}
    rows, cols, weights = [], [], []
    for item, (row, column) in enumerate(zip(batch.rows, batch.columns, strict=True)):
        at = columns.get(batch.products[column])
        if at is None:  # no neighbour in the pool bought it: it weighs on no closeness
            continue
        rows.append(row)
        cols.append(at)
        weights.append(1.0 if similarity == "binary" else float(np.log1p(batch.baskets[item])))
    shape = (len(batch.shoppers), len(products))
    own = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape)
    own.data[:] = 1.0
    profiles = sp.csr_matrix((weights, (rows, cols)), shape) @ sp.diags(pool.idf)
    n_neighbours = min(neighbours, pool.shoppers - 1)
    out: dict[str, list[str]] = {}
    for start in range(0, len(batch.shoppers), CHUNK):
        names = batch.shoppers[start : start + CHUNK]
        closeness = (profiles[start : start + len(names)] @ pool.normalized.T).toarray()
        for row, shopper in enumerate(names):
            if shopper in pool.index:
                closeness[row, pool.index[shopper]] = 0.0
        if n_neighbours > 0:
            cut = np.argpartition(-closeness, n_neighbours - 1, axis=1)[:, n_neighbours:]
            np.put_along_axis(closeness, cut, 0.0, axis=1)
        else:
            closeness[:] = 0.0
        votes = np.asarray((sp.csr_matrix(closeness) @ pool.bought).todense())
        for row, shopper in enumerate(names):
            mine = start + row
            bought = own.indices[own.indptr[mine] : own.indptr[mine + 1]]
            nb = votes[row]
            top = nb.max()
            nb_norm = nb / top if top > 0 else nb
            blend = pool.log_popularity + weight * np.log(nb_norm + 1e-3)
            out[shopper] = _ranked(blend, bought, products, k)
    return out
