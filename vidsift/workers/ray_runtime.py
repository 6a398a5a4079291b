"""Connecting to Ray: a configured cluster, RAY_ADDRESS, or a local one started on demand."""

from __future__ import annotations

import os
import subprocess

from vidsift.core.config import RayConfig

# The watchdog over the local head this process started (workers/head_watchdog.py), if any.
_head_watchdog: subprocess.Popen | None = None


def ensure_ray(cfg: RayConfig | None = None):
    """Initialise Ray once per process and return the ray module.

    Order: an already initialised Ray is reused; cfg.address (e.g. "auto", "ray://head:10001");
    RAY_ADDRESS (Ray reads it itself); else a local cluster with cfg.num_cpus CPUs, whose
    processes are SIGKILLed when this process exits, even by SIGKILL (head_watchdog). A cluster
    this process connected to is never stopped: only processes ray.init started here are watched.
    """
    import ray

    if ray.is_initialized():
        return ray
    cfg = cfg or RayConfig()
    kwargs: dict = {"namespace": cfg.namespace, "log_to_driver": False, "configure_logging": False}
    if cfg.address or os.environ.get("RAY_ADDRESS"):
        if cfg.address:
            kwargs["address"] = cfg.address
        ray.init(**kwargs)
        return ray
    kwargs["include_dashboard"] = False
    if cfg.num_cpus is not None:
        kwargs["num_cpus"] = cfg.num_cpus
    if cfg.temp_dir:
        kwargs["_temp_dir"] = os.path.expanduser(cfg.temp_dir)
    _start_local_head(ray, kwargs)
    return ray


def _start_local_head(ray, init_kwargs: dict) -> None:
    """ray.init a local cluster and watch the processes it started (none when ray.init found a
    running local cluster to join instead)."""
    global _head_watchdog
    if not os.path.isdir("/proc"):  # not Linux: Ray's own reaper stops its process group
        ray.init(**init_kwargs)
        return
    from vidsift.workers.head_watchdog import descendant_pids, start_watchdog

    before = descendant_pids(os.getpid())
    ray.init(**init_kwargs)
    # The raylet forks its agents while it starts, before registering with the GCS (which
    # ray.init waits for): they are among the new processes.
    started = descendant_pids(os.getpid()) - before
    if _head_watchdog is not None:  # a head this process shut down before
        _head_watchdog.kill()
        _head_watchdog.wait()
    _head_watchdog = start_watchdog(started)
