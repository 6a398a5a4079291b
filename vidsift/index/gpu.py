"""Search on GPU when FAISS was built with GPU support (the `gpu` extra: faiss-gpu-cu12) and a GPU
is present. The CPU index stays the one that is added to, removed from and written; the GPU copy
is only searched, and is re-made after the CPU index changes."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def gpu_count() -> int:
    """GPUs FAISS can use: 0 for faiss-cpu or a machine without a GPU."""
    import faiss

    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def search_copy(index, mode: str, params: dict[str, int]):
    """The index to search: a copy on all GPUs when mode is "auto" and GPUs exist, else index.

    params (e.g. {"nprobe": 32}) are applied to the GPU copy, since cloning does not carry every
    search parameter across. An index type FAISS cannot place on GPU stays on CPU (logged).
    """
    if mode != "auto" or gpu_count() == 0 or index.ntotal == 0:
        return index
    import faiss

    try:
        gpu_index = faiss.index_cpu_to_all_gpus(index)
    except RuntimeError as exc:  # e.g. an index type without a GPU implementation
        log.warning("FAISS index stays on CPU: %s", exc)
        return index
    if "nprobe" in params:
        faiss.GpuParameterSpace().set_index_parameter(gpu_index, "nprobe", int(params["nprobe"]))
    return gpu_index
