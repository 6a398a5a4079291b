"""Following a job of the HTTP service to its end, as a client polling GET /v1/jobs/ID does."""

from __future__ import annotations

import time

from vidsift.pipeline.service.jobs import FINAL_STATUSES


def follow_job(client, job_id: str, timeout_s: float = 240) -> tuple[dict, list[dict]]:
    """The finished job, and every progress record it showed while running (polled each 0.1 s).

    `client` is anything with .get(path) -> response (fastapi's TestClient, an httpx.Client with
    a base URL). Fails the test, showing the job, if it has not finished within timeout_s."""
    seen, deadline = [], time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in FINAL_STATUSES:
            return job, seen
        if job["status"] == "running" and job["progress"] is not None:
            seen.append(job["progress"])
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
