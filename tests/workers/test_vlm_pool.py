"""The VLM pool on a real local Ray cluster with tiny Qwen2.5-VL workers."""

from __future__ import annotations

import dataclasses
import time

import pytest

from vidsift.core.config import PoolConfig, VLMConfig
from vidsift.core.errors import RequestFailedError
from vidsift.core.types import SegmentKind, TokenSet, VLMRequest
from vidsift.workers.pool import VLMPool

from tests.tiny_vlm import random_segment, random_token_set


@pytest.fixture(scope="module")
def pool(ray_cluster, tiny_qwen_dir):
    vlm_cfg = VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32", max_new_tokens=48)
    pool_cfg = PoolConfig(num_actors=2, num_cpus_per_actor=0.5, max_batch_size=2, batch_wait_ms=20,
                          max_restarts=2, request_timeout_s=120)
    pool = VLMPool(vlm_cfg, pool_cfg)
    yield pool
    pool.shutdown()


def _requests(count: int, prefix: str) -> list[VLMRequest]:
    return [VLMRequest(random_token_set(seed=i), f"What happens at {i} s?", request_id=f"{prefix}{i}")
            for i in range(count)]


def test_requests_complete_in_order_on_both_workers(pool):
    requests = _requests(6, "ok")
    results = pool.generate(requests)
    assert [r.request_id for r in results] == [f"ok{i}" for i in range(6)]
    assert all(r.visual_tokens == 20 and r.prefill_s > 0 for r in results)
    batches = pool.stats()["batches"]
    assert all(count >= 1 for count in batches) and 3 <= sum(batches) <= 6  # batches of <= 2


def test_killed_worker_requests_are_retried_elsewhere(pool, ray_cluster):
    requests = _requests(8, "kill")
    refs = [pool.submit(request) for request in requests]
    deadline = time.monotonic() + 60
    while pool.stats()["in_flight"][0] == 0:  # wait until worker 0 holds a batch
        assert time.monotonic() < deadline, "worker 0 never got a batch"
        time.sleep(0.01)
    ray_cluster.kill(pool.workers[0], no_restart=False)
    results = ray_cluster.get(refs, timeout=180)
    assert [r.request_id for r in results] == [f"kill{i}" for i in range(8)]
    assert pool.stats()["retried"] >= 1


def test_request_failing_twice_raises_request_failed(pool):
    decoded = random_segment(SegmentKind.IMAGE, [4.0], 56, 56, seed=1)
    broken = TokenSet("video.mp4", [dataclasses.replace(decoded, frames=())])
    requests = [VLMRequest(broken, "What is shown?", request_id="broken"), *_requests(1, "fine")]
    with pytest.raises(RequestFailedError, match=r"broken: failed on 2 attempts .*no decoded frames"):
        pool.generate(requests)
    # The good request batched with it still completes on its own retry.
    assert pool.generate(requests[1:])[0].request_id == "fine0"
