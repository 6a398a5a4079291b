"""vidsift.workers.ray_runtime: connecting to Ray once per process."""

from __future__ import annotations

import pytest

from vidsift.core.config import RayConfig
from vidsift.workers.ray_runtime import ensure_ray


def test_initialised_ray_is_reused_without_reinitialising(ray_cluster, monkeypatch):
    import ray

    assert ray.is_initialized()
    context = ray.get_runtime_context()
    namespace, job = context.namespace, context.get_job_id()

    def no_second_init(*args, **kwargs):
        pytest.fail("ensure_ray called ray.init although Ray was initialised")

    monkeypatch.setattr(ray, "init", no_second_init)
    monkeypatch.setenv("RAY_ADDRESS", "ray://elsewhere:10001")
    for cfg in (None, RayConfig(), RayConfig(address="ray://elsewhere:10001", namespace="other", num_cpus=1)):
        assert ensure_ray(cfg) is ray_cluster is ray
    # still the run's cluster: same namespace and job
    context = ray.get_runtime_context()
    assert (context.namespace, context.get_job_id()) == (namespace, job) and namespace == "vidsift-test"
    assert ray.cluster_resources().get("CPU") == 4
