"""vidsift.index.gpu: which index a search runs on. This machine has faiss-cpu and no GPU, so the
real path is the CPU fallback; the GPU branch is driven with a stand-in for faiss's GPU calls."""

from __future__ import annotations

import logging

import faiss
import numpy as np
import pytest

from vidsift.index import gpu
from vidsift.index.gpu import gpu_count, search_copy


def flat_index(n: int = 20, dim: int = 8):
    index = faiss.IndexFlatL2(dim)
    if n:
        index.add(np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32))
    return index


def ivf_index(dim: int = 8):
    quantizer = faiss.IndexFlatL2(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, 4)
    data = np.random.default_rng(1).standard_normal((200, dim)).astype(np.float32)
    index.train(data)
    index.add(data)
    index.nprobe = 2
    return index, quantizer


def test_no_gpu_here():
    assert gpu_count() == 0


def test_gpu_count_zero_when_faiss_has_no_gpu_api(monkeypatch):
    monkeypatch.delattr(faiss, "get_num_gpus", raising=False)
    assert gpu_count() == 0


def test_cpu_fallback_returns_the_same_index_and_searches(monkeypatch):
    index = flat_index()
    moved = []
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", lambda i: moved.append(i), raising=False)
    for mode in ("auto", "never"):
        assert search_copy(index, mode, {"nprobe": 32}) is index
    assert moved == []  # never tried to place it on a GPU
    query = np.asarray(index.reconstruct(3), dtype=np.float32)[None]
    _, ids = search_copy(index, "auto", {}).search(query, 1)
    assert ids[0, 0] == 3


@pytest.fixture
def fake_gpus(monkeypatch):
    """Pretend FAISS sees 2 GPUs: index_cpu_to_all_gpus returns a tagged copy, and nprobe set on
    it through GpuParameterSpace is recorded."""
    calls = {"moved": [], "params": []}

    class Copy:
        def __init__(self, index):
            self.source = index

    class ParameterSpace:
        def set_index_parameter(self, index, name, value):
            calls["params"].append((index, name, value))

    def to_gpus(index):
        calls["moved"].append(index)
        return Copy(index)

    monkeypatch.setattr(gpu, "gpu_count", lambda: 2)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", to_gpus, raising=False)
    monkeypatch.setattr(faiss, "GpuParameterSpace", ParameterSpace, raising=False)
    return calls


def test_auto_with_gpus_searches_a_gpu_copy_with_nprobe(fake_gpus):
    index, _quantizer = ivf_index()
    copy = search_copy(index, "auto", {"nprobe": 32})
    assert copy is not index and copy.source is index
    assert fake_gpus["params"] == [(copy, "nprobe", 32)]


def test_gpu_copy_without_nprobe_param(fake_gpus):
    index = flat_index()
    copy = search_copy(index, "auto", {})
    assert copy.source is index and fake_gpus["params"] == []


def test_never_mode_and_empty_index_stay_on_cpu_even_with_gpus(fake_gpus):
    index = flat_index()
    assert search_copy(index, "never", {"nprobe": 8}) is index
    empty = flat_index(0)
    assert search_copy(empty, "auto", {}) is empty
    assert fake_gpus["moved"] == []


def test_index_type_without_gpu_implementation_stays_on_cpu(fake_gpus, monkeypatch, caplog):
    def refuse(index):
        raise RuntimeError("this index type has no GPU implementation")

    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", refuse, raising=False)
    index = flat_index()
    with caplog.at_level(logging.WARNING, logger="vidsift.index.gpu"):
        assert search_copy(index, "auto", {"nprobe": 4}) is index
    assert "stays on CPU" in caplog.text and "no GPU implementation" in caplog.text
    assert fake_gpus["params"] == []
