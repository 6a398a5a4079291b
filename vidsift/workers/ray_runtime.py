"""Connecting to Ray: a configured cluster, RAY_ADDRESS, or a local one started on demand."""

from __future__ import annotations

import contextlib
import logging
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
        with _ray_logs_to_its_session(ray):
            ray.init(**kwargs)
        return ray
    kwargs["include_dashboard"] = False
    if cfg.num_cpus is not None:
        kwargs["num_cpus"] = cfg.num_cpus
    if cfg.temp_dir:
        kwargs["_temp_dir"] = os.path.expanduser(cfg.temp_dir)
    with _ray_logs_to_its_session(ray):
        _start_local_head(ray, kwargs)
    return ray


DRIVER_LOG = "vidsift-driver.log"  # in Ray's session log folder, beside its own logs


class _SessionLog(logging.Handler):
    """Writes Ray's records to <Ray session>/logs/DRIVER_LOG, holding those emitted before
    ray.init has made the session (its own start-up notes) until it has. Records of other
    loggers, which reach it as logging's last resort during ray.init, go on to `others`."""

    def __init__(self, ray, others: logging.Handler | None) -> None:
        super().__init__()
        self._ray = ray
        self._others = others
        self._file: logging.FileHandler | None = None
        self.held: list[logging.LogRecord] = []

    def open(self) -> bool:
        """Open the session's log file and write the held records there; False without a
        session on this machine (a ray:// client)."""
        node = getattr(self._ray._private.worker, "_global_node", None)
        if node is None:
            return False
        self._file = logging.FileHandler(os.path.join(node.get_logs_dir_path(), DRIVER_LOG))
        self._file.setFormatter(logging.Formatter(
            "%(asctime)s\t%(levelname)s pid=%(process)d %(name)s %(filename)s:%(lineno)s -- "
            "%(message)s"))  # drivers connected to one cluster share the file
        for record in self.held:
            self._file.emit(record)
        self.held.clear()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != "ray" and not record.name.startswith("ray."):
            if self._others is not None and record.levelno >= self._others.level:
                self._others.handle(record)
        elif self._file is None:
            self.held.append(record)
        else:
            self._file.emit(record)


@contextlib.contextmanager
def _ray_logs_to_its_session(ray):
    """Ray's driver-side log records (loggers "ray.*": 'Token authentication is enabled for
    this Ray cluster...', INFO lines) go to Ray's session log folder (DRIVER_LOG), not to the
    user's terminal. ray.init(configure_logging=False) takes the "ray" logger's handlers away,
    so during it those records reach logging.lastResort (stderr): it is this handler for that
    while, and the "ray" logger's once the session exists. If ray.init fails, or there is no
    session folder here, the held records are printed as before: they may say why."""
    logger = logging.getLogger("ray")
    others = logging.lastResort
    session = _SessionLog(ray, others)
    logging.lastResort = session
    opened = False
    try:
        yield
        opened = session.open()
    finally:
        logging.lastResort = others
        if opened:
            logger.addHandler(session)
        else:
            for record in session.held:
                if others is not None and record.levelno >= others.level:
                    others.handle(record)


def ray_console_warnings_only(library: str) -> None:
    """The INFO lines of a Ray library that prints on a console handler of its own stay off the
    terminal; its warnings and errors still show. library: "ray.data" ('Starting execution of
    Dataset ...', its plan and progress; kept in its session log, logs/ray-data/) or "ray.serve"
    ('Started Serve in namespace ...', 'Application ... is ready at ...'). Call after importing
    the library (which configures its logger then)."""
    for handler in logging.getLogger(library).handlers:
        terminal = isinstance(handler, logging.StreamHandler)  # its file handler is not one
        if terminal and not isinstance(handler, logging.FileHandler):
            handler.setLevel(max(handler.level, logging.WARNING))


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
