"""A parent-death watch for the local Ray head a process started (Linux).

Ray fate-shares its head processes (gcs_server, raylet, monitors) with the driver through
prctl(PR_SET_PDEATHSIG), but the raylet's agents (DashboardAgent, RuntimeEnvAgent) outlive a
SIGKILLed driver by about 60 s: they notice the raylet's death at once, then wait out
publish_error_to_driver's fixed 60 s timeout against the GCS that died with it, before exiting.
The watchdog is a separate small process holding pidfds of the head's processes: when the driver
exits, however it exits, it SIGKILLs those still running. A pidfd names one process, never a
later one that reuses its pid.

Standard library only: the watchdog runs this file with `python -I -S`, no vidsift imported.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys


def descendant_pids(pid: int) -> set[int]:
    """Every process below pid in the process tree (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                stat = stat_file.read()
        except OSError:
            continue  # exited meanwhile
        # Fields after the command name (which may hold spaces and parentheses): state, ppid, ...
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.add(child)
            todo.append(child)
    return found


def start_watchdog(pids: set[int]) -> subprocess.Popen | None:
    """Start a watchdog that SIGKILLs `pids` when this process exits; None where pidfds are
    missing (not Linux >= 5.3, or refused by a sandbox) or every pid has already exited."""
    if not hasattr(os, "pidfd_open"):
        return None
    fds: list[int] = []
    try:
        for pid in sorted(pids):
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                continue
        if not fds:
            return None
        parent_fd = os.pidfd_open(os.getpid())
        fds.insert(0, parent_fd)
        return subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), *map(str, fds)],
            pass_fds=fds,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Its own session: a terminal's Ctrl-C or a signal to the parent's process group
            # must not stop the watchdog before the parent.
            start_new_session=True,
        )
    except OSError:
        return None
    finally:
        for fd in fds:
            os.close(fd)


def watch(parent_fd: int, target_fds: list[int]) -> None:
    """Block until the parent exits (its pidfd turns readable), then SIGKILL every target."""
    select.select([parent_fd], [], [])
    for fd in target_fds:
        try:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        except ProcessLookupError:
            pass  # exited already


if __name__ == "__main__":
    parent, *targets = (int(arg) for arg in sys.argv[1:])
    watch(parent, targets)
