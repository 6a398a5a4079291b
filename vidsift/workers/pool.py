"""A pool of VLM actors on Ray with a micro-batching queue in front.

    caller --submit--> VLMRouter (async actor, no CPU) --batch--> VLMWorker x N (one model each)

The router gathers requests into batches of up to max_batch_size, waiting at most batch_wait_ms
after the first one, and sends each batch to the worker with the fewest batches in flight. A
worker that dies (OOM, killed) is restarted by Ray (max_restarts); the requests it held are
retried once, each alone, on another worker (the same one when there is only one). A request that
fails a second time fails with RequestFailedError naming the request and the last cause. Retrying
each request alone also isolates a bad request from the innocent ones batched with it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import ray
from ray.exceptions import RayActorError, RayTaskError

from vidsift.core.config import PoolConfig, VLMConfig
from vidsift.core.errors import ModelLoadError, RequestFailedError
from vidsift.core.types import VLMRequest, VLMResult

MAX_ATTEMPTS = 2  # the first try and one retry on another worker


class VLMWorker:
    """One loaded VLM backend. Runs one batch at a time."""

    def __init__(self, vlm_cfg: VLMConfig) -> None:
        from vidsift.workers.vlm import get_vlm

        self.backend = get_vlm(vlm_cfg)

    def ready(self) -> bool:
        return True

    def generate(self, requests: list[VLMRequest]) -> list[VLMResult]:
        return self.backend.generate(requests)


@dataclass(eq=False)
class _Pending:
    request: VLMRequest
    future: asyncio.Future
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


def _describe(exc: BaseException) -> str:
    """A one-line cause: the worker's own exception rather than Ray's wrapper and traceback."""
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        exc = exc.cause
    if isinstance(exc, RayActorError):
        return "worker died"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class VLMRouter:
    """The queue in front of the workers (an async actor: every submit waits concurrently)."""

    def __init__(self, workers: list, pool_cfg: PoolConfig) -> None:
        self.workers = workers
        self.cfg = pool_cfg
        self.in_flight = [0] * len(workers)
        self.batches = [0] * len(workers)  # batches each worker completed
        self.retried = 0
        self._order = itertools.count()
        self._queue: asyncio.Queue | None = None

    async def submit(self, request: VLMRequest) -> VLMResult:
        if self._queue is None:  # the actor's event loop exists only once calls arrive
            self._queue = asyncio.Queue()
            asyncio.get_running_loop().create_task(self._batch_forever())
        pending = _Pending(request, asyncio.get_running_loop().create_future())
        await self._queue.put(pending)
        return await pending.future

    def stats(self) -> dict:
        return {"in_flight": list(self.in_flight), "batches": list(self.batches),
                "retried": self.retried}

    async def _batch_forever(self) -> None:
        wait_s = self.cfg.batch_wait_ms / 1000
        while True:
            batch = [await self._queue.get()]
            deadline = time.monotonic() + wait_s
            while len(batch) < self.cfg.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            asyncio.get_running_loop().create_task(self._run(batch))

    def _pick(self, avoid: int | None) -> int:
        """The least busy worker, not `avoid` unless it is the only one; ties rotate."""
        candidates = [i for i in range(len(self.workers)) if i != avoid] or [avoid]
        turn = next(self._order)
        return min(candidates, key=lambda i: (self.in_flight[i], (i - turn) % len(self.workers)))

    async def _run(self, batch: list[_Pending], avoid: int | None = None) -> None:
        index = self._pick(avoid)
        self.in_flight[index] += 1
        try:
            ref = self.workers[index].generate.remote([p.request for p in batch])
            results = await asyncio.wait_for(ref, self.cfg.request_timeout_s)
        except Exception as exc:  # worker death, timeout, or an error raised by the model
            for pending in batch:
                pending.attempts += 1
                pending.errors.append(_describe(exc))
                if pending.attempts >= MAX_ATTEMPTS:
                    name = pending.request.request_id or "a request"
                    pending.future.set_exception(RequestFailedError(
                        f"{name}: failed on {pending.attempts} attempts "
                        f"({'; '.join(pending.errors)})"
                    ))
                else:
                    self.retried += 1
                    asyncio.get_running_loop().create_task(self._run([pending], avoid=index))
        else:
            self.batches[index] += 1
            for pending, result in zip(batch, results):
                pending.future.set_result(result)
        finally:
            self.in_flight[index] -= 1


class VLMPool:
    """N VLM workers behind one router. submit() returns an ObjectRef of a VLMResult;
    generate() waits for a list. The pool's handles pickle, so Ray tasks can share one pool."""

    def __init__(self, vlm_cfg: VLMConfig, pool_cfg: PoolConfig) -> None:
        worker_cls = ray.remote(VLMWorker).options(
            num_cpus=pool_cfg.num_cpus_per_actor,
            num_gpus=pool_cfg.num_gpus_per_actor,
            max_restarts=pool_cfg.max_restarts,
            max_task_retries=0,  # the router retries, on another worker
        )
        self.workers = [worker_cls.remote(vlm_cfg) for _ in range(pool_cfg.num_actors)]
        try:
            ray.get([worker.ready.remote() for worker in self.workers])
        except (RayActorError, RayTaskError) as exc:
            self.shutdown()
            raise ModelLoadError(f"{vlm_cfg.model}: VLM workers failed to start ({exc})") from exc
        self.router = ray.remote(VLMRouter).options(num_cpus=0, max_concurrency=10_000).remote(
            self.workers, pool_cfg
        )

    def submit(self, request: VLMRequest) -> ray.ObjectRef:
        return self.router.submit.remote(request)

    def generate(self, requests: list[VLMRequest]) -> list[VLMResult]:
        refs = [self.submit(request) for request in requests]
        try:
            return ray.get(refs)
        except RayTaskError as exc:
            if isinstance(exc.cause, RequestFailedError):
                raise RequestFailedError(str(exc.cause)) from None
            raise

    def stats(self) -> dict:
        """Per worker: batches in flight and batches completed; requests retried so far."""
        return ray.get(self.router.stats.remote())

    def shutdown(self) -> None:
        for actor in [getattr(self, "router", None), *self.workers]:
            if actor is not None:
                ray.kill(actor, no_restart=True)
