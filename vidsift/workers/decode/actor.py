"""Decoding inside Ray actors, with a per-call timeout.

A backend can hang (decord can spin holding the GIL, a damaged file can stall a demuxer); a
thread cannot be interrupted, a process can. DecodePool sends each call to one of its actors and
waits at most cfg.timeout_s; past that it kills the actor, starts a fresh one in its place and
raises DecodeTimeoutError naming the file, so the pool keeps serving the next call.
"""

from __future__ import annotations

import threading
from typing import Callable

from vidsift.pipeline.config import DecodeConfig
from vidsift.pipeline.errors import CorruptVideoError, DecodeTimeoutError, VidsiftError
from vidsift.pipeline.types import Frame, VideoInfo
from vidsift.workers.decode import DECODERS, Decoder


class DecodeActor:
    """Hosts one decoder in its own process (wrapped with ray.remote by DecodePool)."""

    def __init__(self, factory: Callable[..., Decoder], threads: int, max_pixels: int) -> None:
        self.decoder = factory(threads=threads, max_pixels=max_pixels)
        self.max_pixels = max_pixels

    def ready(self) -> str:
        return self.decoder.name

    def call(self, method: str, args: tuple, kwargs: dict):
        if method == "probe":
            from vidsift.pipeline.probe import probe

            return probe(*args, max_pixels=self.max_pixels)
        return getattr(self.decoder, method)(*args, **kwargs)


class DecodePool:
    """cfg.num_actors decode actors (cfg.num_cpus_per_actor CPUs each) running cfg.backend.
    Methods mirror the Decoder interface plus probe(); errors arrive as the typed VideoErrors."""

    def __init__(self, cfg: DecodeConfig) -> None:
        import ray

        if cfg.backend not in DECODERS:
            raise ValueError(f"unknown decoder {cfg.backend!r}; choose one of {sorted(DECODERS)}")
        self.cfg = cfg
        self._factory = DECODERS[cfg.backend]
        self._remote = ray.remote(num_cpus=cfg.num_cpus_per_actor, max_restarts=0)(DecodeActor)
        self._lock = threading.Lock()
        self._turn = 0
        self._actors = [self._start() for _ in range(cfg.num_actors)]
        ray.get([actor.ready.remote() for actor in self._actors])  # constructor errors surface here

    def _start(self):
        return self._remote.remote(self._factory, self.cfg.threads, self.cfg.max_pixels)

    def _call(self, method: str, path, *args, timeout_s: float | None = None, **kwargs):
        import ray

        path = str(path)
        timeout_s = self.cfg.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            slot = self._turn % len(self._actors)
            self._turn += 1
            actor = self._actors[slot]
        ref = actor.call.remote(method, (path, *args), kwargs)
        try:
            return ray.get(ref, timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            self._replace(slot, actor)
            raise DecodeTimeoutError(path, f"{method} took over {timeout_s:g} s; decoder restarted") from None
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, VidsiftError):
                raise exc.cause from None
            raise
        except ray.exceptions.RayActorError as exc:
            self._replace(slot, actor)
            raise CorruptVideoError(path, f"decoder process died during {method}: {exc}") from None

    def _replace(self, slot: int, actor) -> None:
        import ray

        ray.kill(actor, no_restart=True)
        with self._lock:
            if self._actors[slot] is actor:
                self._actors[slot] = self._start()

    def probe(self, path, timeout_s: float | None = None) -> VideoInfo:
        return self._call("probe", path, timeout_s=timeout_s)

    def keyframes(self, path, max_side=None, timeout_s: float | None = None) -> list[Frame]:
        return self._call("keyframes", path, max_side=max_side, timeout_s=timeout_s)

    def frames_at(self, path, timestamps, size=None, max_side=None, timeout_s: float | None = None) -> list[Frame]:
        return self._call("frames_at", path, list(timestamps), size=size, max_side=max_side, timeout_s=timeout_s)

    def sample(self, path, fps, size=None, max_side=None, start=None, end=None,
               timeout_s: float | None = None) -> list[Frame]:
        return self._call("sample", path, fps, size=size, max_side=max_side, start=start, end=end,
                          timeout_s=timeout_s)

    def clip(self, path, start, end, fps, size=None, max_side=None, timeout_s: float | None = None) -> list[Frame]:
        return self._call("clip", path, start, end, fps, size=size, max_side=max_side, timeout_s=timeout_s)

    def coarse(self, path, max_side, max_gap_s, fill_fps, timeout_s: float | None = None) -> list[Frame]:
        return self._call("coarse", path, max_side, max_gap_s, fill_fps, timeout_s=timeout_s)

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []
