"""Which FAISS index to build, chosen from the number of vectors and the memory allowed, the way
autofaiss does it: exact search while it is cheap, an inverted file with compressed codes when
it is not, trained on a sample and with nprobe tuned on the data to reach a target recall@10.

All indexes use inner product on unit vectors (cosine) and keep caller-chosen int64 ids with
remove_ids support, because the clip index removes videos. HNSW is not used: it cannot remove.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# An inverted file needs this many training points per list for k-means to place lists well
# (FAISS warns below 39).
TRAIN_POINTS_PER_LIST = 50
# The lists are sized for the count the index was chosen at; past this factor they are too long
# and the index is rebuilt with a new choice.
GROWTH_FACTOR = 4
KMEANS_ITERATIONS = 10  # coarse quantizer k-means; enough for list assignment, cheap to train
TUNE_QUERIES = 200
RECALL_K = 10


@dataclass(frozen=True, slots=True)
class IndexChoice:
    """A FAISS index_factory string and what it implies.

    factory: the string for faiss.index_factory (inner-product metric).
    nlist: inverted lists (0 for exact search).
    train_size: vectors to train on (0 when the index needs no training).
    valid_up_to: rebuild with a new choice once the index holds more vectors than this.
    """

    factory: str
    nlist: int
    train_size: int
    valid_up_to: int

    @property
    def exact(self) -> bool:
        return self.nlist == 0


def _code_spec(dim: int, bytes_per_vector: float) -> str:
    """The densest code that fits: full floats, 8-bit scalar quantizer, or a product quantizer."""
    if dim * 4 <= bytes_per_vector:
        return "Flat"
    if dim <= bytes_per_vector:
        return "SQ8"
    # PQ with m one-byte sub-quantizers: the largest m dividing dim that fits (at least 1).
    m = max((m for m in range(1, dim + 1) if dim % m == 0 and m <= bytes_per_vector), default=1)
    return f"PQ{m}x8"


def choose_index(n: int, dim: int, flat_max_vectors: int, memory_bytes: int) -> IndexChoice:
    """Pick the index for n vectors of dimension dim within memory_bytes (for the codes).

    Exact Flat (behind an IDMap2, so ids are kept and vectors can be read back) while n is at
    most flat_max_vectors and the floats fit in memory. Above that, IVF{nlist} with nlist the
    power of two nearest 2 * sqrt(n) (and at least TRAIN_POINTS_PER_LIST training points per
    list), and the densest code that fits memory_bytes / n bytes per vector.
    """
    if n < 0 or dim <= 0 or flat_max_vectors < 1 or memory_bytes <= 0:
        raise ValueError(f"bad sizes: n={n}, dim={dim}, flat_max={flat_max_vectors}, memory={memory_bytes}")
    if n <= flat_max_vectors and n * dim * 4 <= memory_bytes:
        return IndexChoice("IDMap2,Flat", nlist=0, train_size=0, valid_up_to=flat_max_vectors)
    nlist = 2 ** round(math.log2(2 * math.sqrt(max(n, 1))))
    nlist = max(1, min(nlist, n // TRAIN_POINTS_PER_LIST))
    code = _code_spec(dim, memory_bytes / max(n, 1))
    return IndexChoice(
        f"IVF{nlist},{code}",
        nlist=nlist,
        train_size=min(n, nlist * TRAIN_POINTS_PER_LIST),
        valid_up_to=max(n, flat_max_vectors) * GROWTH_FACTOR,
    )


def needs_rechoice(choice: IndexChoice, n: int) -> bool:
    """True once the index has grown past what its choice was made for."""
    return n > choice.valid_up_to


def exact_topk(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 65536) -> np.ndarray:
    """(Q, k) row indices of the k largest inner products of each query over vectors, by blocks
    so memory stays at Q * chunk floats."""
    k = min(k, len(vectors))
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for lo in range(0, len(vectors), chunk):
        scores = queries @ vectors[lo : lo + chunk].T
        rows = np.broadcast_to(np.arange(lo, lo + scores.shape[1]), scores.shape)
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_rows = np.concatenate([best_rows, rows], axis=1)
        keep = np.argpartition(-all_scores, min(k, all_scores.shape[1]) - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(all_scores, keep, axis=1)
        best_rows = np.take_along_axis(all_rows, keep, axis=1)
    order = np.argsort(-best_scores, axis=1)
    return np.take_along_axis(best_rows, order, axis=1)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's true top-k found in its returned top-k ((Q, k) id arrays)."""
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / truth.size


def tune_nprobe(
    index, vectors: np.ndarray, ids: np.ndarray, target_recall: float, seed: int = 0
) -> tuple[int, float]:
    """Smallest power-of-two nprobe whose recall@10 reaches target_recall, measured with
    TUNE_QUERIES of the indexed vectors as queries (each query's own id left out of both its
    true and found neighbours). Stops early once doubling nprobe no longer helps (a compressed
    code caps recall). Returns (nprobe, recall measured)."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(TUNE_QUERIES, len(vectors)), replace=False)
    queries = np.ascontiguousarray(vectors[rows])
    truth_rows = exact_topk(vectors, queries, RECALL_K + 1)
    truth = _drop_self(ids[truth_rows], ids[rows])
    nprobe, best = 1, (1, -1.0)
    while nprobe <= ivf.nlist:
        ivf.nprobe = nprobe
        _, found = index.search(queries, RECALL_K + 1)
        recall = recall_at_k(_drop_self(found, ids[rows]), truth)
        if recall >= target_recall:
            return nprobe, recall
        if recall <= best[1] + 0.002 and nprobe >= 8:
            break
        if recall > best[1]:
            best = (nprobe, recall)
        nprobe *= 2
    ivf.nprobe = best[0]
    return best


def _drop_self(found: np.ndarray, self_ids: np.ndarray) -> np.ndarray:
    """(Q, k+1) ids -> (Q, k): each row without its query's own id (or its last entry)."""
    out = np.empty((len(found), found.shape[1] - 1), dtype=np.int64)
    for i, (row, own) in enumerate(zip(found, self_ids)):
        kept = row[row != own]
        out[i] = kept[: out.shape[1]]
    return out


def build_index(
    choice: IndexChoice,
    vectors: np.ndarray,
    ids: np.ndarray,
    target_recall: float = 0.95,
    seed: int = 0,
) -> tuple[object, dict[str, int]]:
    """Build choice over (N, D) unit float32 vectors with int64 ids.

    Trains on a random sample of choice.train_size vectors when the index needs training, adds
    all, and for an inverted file tunes nprobe to reach target_recall. Returns the index and its
    search parameters ({"nprobe": n} or {}), which set_search_params applies after a reload.
    """
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    dim = vectors.shape[1]
    index = faiss.index_factory(dim, choice.factory, faiss.METRIC_INNER_PRODUCT)
    params: dict[str, int] = {}
    if not choice.exact:
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = KMEANS_ITERATIONS
        ivf.cp.seed = seed
        rng = np.random.default_rng(seed)
        sample = rng.choice(len(vectors), size=min(choice.train_size, len(vectors)), replace=False)
        index.train(vectors[np.sort(sample)])
    if len(vectors):
        index.add_with_ids(vectors, ids)
    if not choice.exact and len(vectors):
        params["nprobe"], _ = tune_nprobe(index, vectors, ids, target_recall, seed)
    set_search_params(index, params)
    return index, params


def set_search_params(index, params: dict[str, int]) -> None:
    """Apply search parameters (nprobe) to a CPU index after building or loading it."""
    import faiss

    if "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])
