"""vidsift.workers.ray_runtime: connecting to Ray once per process."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from vidsift.core.config import RayConfig
from vidsift.workers.ray_runtime import DRIVER_LOG, ensure_ray, ray_console_warnings_only


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


def _running(pid: int) -> bool:
    """pid names a live process (a zombie, exited and waiting for its parent's wait(), is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_until_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _running(pid)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="pidfds are Linux >= 5.3")
def test_watchdog_kills_the_watched_processes_when_their_starter_is_sigkilled():
    starter_code = (
        "import subprocess, time\n"
        "from vidsift.workers.head_watchdog import start_watchdog\n"
        "watched, unwatched = (subprocess.Popen(['sleep', '600']) for _ in range(2))\n"
        "watchdog = start_watchdog({watched.pid})\n"
        "print(watched.pid, unwatched.pid, watchdog.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    starter = subprocess.Popen([sys.executable, "-c", starter_code], stdout=subprocess.PIPE, text=True)
    started = []  # psutil handles: kill() below never strikes a later process reusing a pid
    try:
        watched, unwatched, watchdog = (int(pid) for pid in starter.stdout.readline().split())
        started = [psutil.Process(pid) for pid in (watched, unwatched, watchdog)]
        time.sleep(0.5)  # the watchdog is up and blocked on its parent's pidfd
        assert _running(watched) and _running(watchdog)
        starter.kill()
        starter.wait()
        assert _wait_until_gone(watched, 5), "the watched process outlived its SIGKILLed starter"
        assert _wait_until_gone(watchdog, 5), "the watchdog did not exit after its work"
        assert _running(unwatched), "the watchdog killed a process it was not given"
    finally:
        starter.kill()
        for proc in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


def test_a_connected_cluster_outlives_a_sigkilled_driver(ray_cluster):
    """ray.address set: the driver only connects, so its death stops nothing of the cluster."""
    address = ray_cluster.get_runtime_context().gcs_address
    driver_code = (
        "import sys\n"
        "from vidsift.core.config import RayConfig\n"
        "from vidsift.workers.ray_runtime import ensure_ray\n"
        "ray = ensure_ray(RayConfig(address=sys.argv[1], namespace='vidsift-test'))\n"
        "print(ray.cluster_resources()['CPU'], flush=True)\n"
        "sys.stdin.read()\n"
    )
    driver = subprocess.Popen([sys.executable, "-c", driver_code, address],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert float(driver.stdout.readline()) == 4  # connected to this run's cluster
        driver.kill()
        driver.wait()
        time.sleep(3)  # a watchdog, had one been started, would have struck by now
        assert ray_cluster.get(ray_cluster.remote(lambda: 42).remote(), timeout=60) == 42
    finally:
        driver.kill()


@pytest.mark.slow
def test_rays_start_up_notes_go_to_its_session_log_not_the_terminal():
    """A driver starting a local Ray printed 'Token authentication is enabled for this Ray
    cluster. ...' on the user's terminal (a warning through logging's last resort, as
    ray.init(configure_logging=False) takes the "ray" logger's handlers away): it is in the
    session's vidsift-driver.log instead, and the driver's own messages still reach stderr."""
    temp_dir = tempfile.mkdtemp(prefix="vsray")  # short: Ray's unix sockets live there
    driver_code = (
        "import logging, os, sys\n"
        "from vidsift.core.config import RayConfig\n"
        "from vidsift.workers.ray_runtime import ensure_ray\n"
        "ray = ensure_ray(RayConfig(num_cpus=1, temp_dir=sys.argv[1]))\n"
        "logging.getLogger('ray.data').info('a Ray library line')\n"
        "logging.getLogger('vidsift.pipeline').warning('a vidsift warning')\n"
        "print(os.getpid(), ray._private.worker._global_node.get_logs_dir_path())\n"
    )
    # as a user's shell has it (this run's Ray chose token authentication for its children)
    env = {key: value for key, value in os.environ.items() if key != "RAY_AUTH_MODE"}
    try:
        driver = subprocess.run([sys.executable, "-c", driver_code, temp_dir], capture_output=True,
                                text=True, timeout=300, check=False, env=env)
        assert driver.returncode == 0, driver.stderr
        assert driver.stderr == "a vidsift warning\n"
        pid, logs = driver.stdout.split()
        logged = [line.split("\t", 1)[1]
                  for line in (Path(logs) / DRIVER_LOG).read_text().splitlines()]
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert any(line.startswith(f"WARNING pid={pid} ray._private.authentication") and
               "-- Token authentication is enabled for this Ray cluster." in line
               for line in logged), logged
    assert f"INFO pid={pid} ray.data <string>:5 -- a Ray library line" in logged


def test_ray_datas_info_lines_stay_off_the_terminal(ray_cluster):
    """A caption run printed Ray Data's 'Starting execution of Dataset ...', its plan and its
    progress on stderr; its warnings still show. Ray Data's console handler keeps the stream it
    was made with (the first import's stderr), so the test reads what that handler writes."""
    import io
    import logging

    import ray.data

    ray_console_warnings_only("ray.data")
    consoles = [h for h in logging.getLogger("ray.data").handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    assert consoles  # Ray Data prints on a console handler of its own
    printed = io.StringIO()
    streams = [handler.setStream(printed) for handler in consoles]
    try:
        rows = ray.data.range(3).map(lambda row: {"id": row["id"] + 1}).take_all()
        assert sorted(row["id"] for row in rows) == [1, 2, 3]
        assert printed.getvalue() == ""
        logging.getLogger("ray.data").warning("a Ray Data warning")
        assert printed.getvalue().splitlines()[-1].endswith("a Ray Data warning")
    finally:
        for handler, stream in zip(consoles, streams):
            handler.setStream(stream)
