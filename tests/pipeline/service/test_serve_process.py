"""`vidsift serve` as a user runs it, then killed: by SIGKILL or SIGTERM, it leaves none of the
processes it started (Ray's head, its agents, the Serve actors) running."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow

STARTUP_S = 240  # Ray's head, Serve's controller and proxy, the replica: ~20 s on 2 busy cores
GONE_WITHIN_S = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a zombie waiting for its parent's wait() has stopped)."""
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {proc.name()} ({proc.memory_info().rss >> 20} MB)"
    except psutil.Error:
        return f"{proc.pid} (gone)"


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_serve_leaves_no_process_behind(tmp_path, signum):
    port = _free_port()
    # Ray's unix sockets live under its temp dir and must fit in 107 characters.
    ray_temp = tempfile.mkdtemp(prefix="vs")
    log_path = tmp_path / "serve.log"
    command = [
        str(Path(sys.executable).parent / "vidsift"), "serve", "--host", "127.0.0.1",
        "--port", str(port),
        "--set", f"serve.data_dir={tmp_path / 'service'}", "--set", f"index.dir={tmp_path / 'index'}",
        "--set", f"ray.temp_dir={ray_temp}", "--set", "ray.num_cpus=2", "--set", "vlm.model=none",
    ]
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")  # Ray on loopback
    recorded: list[psutil.Process] = []
    with open(log_path, "wb") as log:
        serve = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert serve.poll() is None, f"serve exited ({serve.returncode}):\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"serve not answering:\n{log_path.read_text()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/info", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        # What the user's terminal shows: vidsift's own line, none of Ray Serve's INFO lines
        # ('Started Serve in namespace ...', 'Application ... is ready at ...').
        printed = log_path.read_text()
        assert "vidsift serving on http://127.0.0.1" in printed
        assert not [line for line in printed.splitlines() if line.startswith("INFO ")], printed
        recorded = psutil.Process(serve.pid).children(recursive=True)
        names = {proc.name() for proc in recorded}
        assert {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names, names

        os.kill(serve.pid, signum)
        serve.wait(timeout=GONE_WITHIN_S)
        deadline = time.monotonic() + GONE_WITHIN_S
        while _alive(recorded) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _alive(recorded)
        assert not left, (f"{len(left)} of the {len(recorded)} processes serve started still run "
                          f"{GONE_WITHIN_S} s after {signum.name}: " + ", ".join(map(_describe, left)))
    finally:
        if serve.poll() is None:
            recorded += psutil.Process(serve.pid).children(recursive=True)
            serve.kill()
            serve.wait()
        for proc in _alive(recorded):
            proc.kill()
        shutil.rmtree(ray_temp, ignore_errors=True)
