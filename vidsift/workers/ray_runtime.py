"""Connecting to Ray: a configured cluster, RAY_ADDRESS, or a local one started on demand."""

from __future__ import annotations

import os

from vidsift.core.config import RayConfig


def ensure_ray(cfg: RayConfig | None = None):
    """Initialise Ray once per process and return the ray module.

    Order: an already initialised Ray is reused; cfg.address (e.g. "auto", "ray://head:10001");
    RAY_ADDRESS (Ray reads it itself); else a local cluster with cfg.num_cpus CPUs.
    """
    import ray

    if ray.is_initialized():
        return ray
    cfg = cfg or RayConfig()
    kwargs: dict = {"namespace": cfg.namespace, "log_to_driver": False, "configure_logging": False}
    if cfg.address:
        kwargs["address"] = cfg.address
    elif not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False
        if cfg.num_cpus is not None:
            kwargs["num_cpus"] = cfg.num_cpus
        if cfg.temp_dir:
            kwargs["_temp_dir"] = os.path.expanduser(cfg.temp_dir)
    ray.init(**kwargs)
    return ray
