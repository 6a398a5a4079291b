import numpy as np
import pytest

from vidsift.index.factory import (
    build_index,
    choose_index,
    exact_topk,
    needs_rechoice,
    recall_at_k,
)

GB = 1024**3


def unit_rows(n, dim, seed=0, clusters=None):
    rng = np.random.default_rng(seed)
    if clusters:
        centers = rng.normal(size=(clusters, dim))
        x = centers[rng.integers(0, clusters, n)] + rng.normal(size=(n, dim)) * 0.5
    else:
        x = rng.normal(size=(n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_small_index_is_exact_flat_with_ids():
    choice = choose_index(10_000, 512, flat_max_vectors=50_000, memory_bytes=4 * GB)
    assert choice.factory == "IDMap2,Flat" and choice.exact and choice.train_size == 0
    assert choice.valid_up_to == 50_000


def test_large_index_is_ivf_sized_from_n():
    choice = choose_index(1_000_000, 512, flat_max_vectors=50_000, memory_bytes=4 * GB)
    assert choice.factory == "IVF2048,Flat"
    assert choice.train_size == 2048 * 50
    assert choice.valid_up_to == 4_000_000


@pytest.mark.parametrize(
    "memory, code", [(4 * GB, "Flat"), (GB, "SQ8"), (GB // 8, "PQ128x8"), (GB // 20, "PQ32x8")]
)
def test_code_shrinks_to_fit_memory(memory, code):
    choice = choose_index(1_000_000, 512, flat_max_vectors=50_000, memory_bytes=memory)
    assert choice.factory == f"IVF2048,{code}"


def test_flat_that_does_not_fit_memory_goes_compressed():
    choice = choose_index(40_000, 512, flat_max_vectors=50_000, memory_bytes=40_000 * 600)
    assert choice.factory.startswith("IVF") and choice.factory.endswith("SQ8")


def test_rechoice_past_threshold():
    choice = choose_index(0, 64, flat_max_vectors=1000, memory_bytes=GB)
    assert not needs_rechoice(choice, 1000)
    assert needs_rechoice(choice, 1001)


def test_exact_topk_matches_argsort():
    x = unit_rows(1000, 32)
    q = unit_rows(5, 32, seed=1)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    np.testing.assert_array_equal(exact_topk(x, q, 10, chunk=97), truth)


def test_flat_build_finds_planted_vector_first():
    x = unit_rows(2000, 64)
    ids = np.arange(100, 2100, dtype=np.int64)
    index, params = build_index(choose_index(2000, 64, 50_000, GB), x, ids)
    assert params == {}
    _, found = index.search(x[[17]], 3)
    assert found[0, 0] == 117


def test_ivf_build_tunes_nprobe_to_target_recall():
    n, dim = 20_000, 32
    data = unit_rows(n + 200, dim, clusters=50)
    x, queries = data[:n], data[n:]  # fresh queries from the same distribution
    ids = np.arange(n, dtype=np.int64) * 3  # ids are the caller's, not row numbers
    choice = choose_index(n, dim, flat_max_vectors=1000, memory_bytes=GB)
    assert choice.factory.startswith("IVF256,")
    index, params = build_index(choice, x, ids, target_recall=0.95)
    assert 1 <= params["nprobe"] <= 256
    truth = ids[exact_topk(x, queries, 10)]
    _, found = index.search(queries, 10)
    assert recall_at_k(found, truth) >= 0.9  # tuned on the data, measured on fresh queries
    index.remove_ids(ids[:10])
    assert index.ntotal == n - 10
