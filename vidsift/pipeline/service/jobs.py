"""A persistent job store on SQLite (WAL): the HTTP service's queue and its record of results.

Every operation opens its own short connection (core.files.open_sqlite), so the store is safe to
share between threads and between processes.
Claiming a job is one atomic UPDATE ... RETURNING, so two workers never take the same job.
A job's result, once written, is never deleted or overwritten: a cancel after the finish is a
no-op, and a restart only re-queues jobs that were queued or running.

Statuses: queued -> running -> succeeded | failed; queued or running -> cancelled.

The same file keeps conversations (flows.conversation.ConversationStore), so the CLI and the
service share them. A conversation job's turn is written only while the job runs (add_turn's
only_if: JobStore.runs), and a cancel withdraws a turn the job wrote before it: a cancelled job
leaves no turn, whichever comes first.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidsift.core.files import open_sqlite
from vidsift.pipeline.flows.conversation import STORE_FILE, ConversationStore

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
FINAL_STATUSES = (SUCCEEDED, FAILED, CANCELLED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    progress TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status_seq ON jobs (status, seq);
"""
_COLUMNS = (
    "id, kind, status, request, result, error, attempts, created_at, started_at, finished_at, "
    "progress"
)


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str  # what the job does, e.g. "ask"
    status: str  # one of STATUSES
    request: dict[str, Any]  # what was asked, as submitted (JSON)
    result: dict[str, Any] | None  # set once when the job succeeds (or fails with one to read)
    error: str | None  # set once when the job fails
    attempts: int  # times a worker claimed it (a restart mid-run makes it 2)
    created_at: float  # unix seconds
    started_at: float | None
    finished_at: float | None
    progress: dict[str, Any] | None = None  # the running job's last step, e.g. {done, total}

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "request": self.request,
            "result": self.result,
            "error": self.error,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": self.progress,
        }


def _row_to_job(row: tuple) -> Job:
    id_, kind, status, request, result, error, attempts, created, started, finished, progress = row
    return Job(
        id=id_,
        kind=kind,
        status=status,
        request=json.loads(request),
        result=json.loads(result) if result is not None else None,
        error=error,
        attempts=attempts,
        created_at=created,
        started_at=started,
        finished_at=finished,
        progress=json.loads(progress) if progress is not None else None,
    )


class JobStore:
    """Jobs in `data_dir/jobs.sqlite3`. Cheap to construct; holds no open connection."""

    def __init__(self, data_dir: str | Path, busy_timeout_s: float = 30.0) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / STORE_FILE
        self.busy_timeout_s = busy_timeout_s
        with closing(self._connect()) as conn:
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
            if "progress" not in columns:  # a store written before jobs reported progress
                conn.execute("ALTER TABLE jobs ADD COLUMN progress TEXT")
        ConversationStore(self.data_dir, busy_timeout_s)  # its turns table: cancel() clears it

    def _connect(self) -> sqlite3.Connection:
        return open_sqlite(self.path, self.busy_timeout_s)

    def create(self, kind: str, request: dict[str, Any]) -> Job:
        job_id = uuid.uuid4().hex
        now = time.time()
        with closing(self._connect()) as conn:
            conn.execute(
                "INSERT INTO jobs (id, kind, status, request, seq, created_at) VALUES "
                "(?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), ?)",
                (job_id, kind, QUEUED, json.dumps(request), now),
            )
        return Job(job_id, kind, QUEUED, request, None, None, 0, now, None, None)

    def get(self, job_id: str) -> Job | None:
        with closing(self._connect()) as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row else None

    def list(
        self, limit: int = 50, offset: int = 0, status: str | None = None
    ) -> tuple[list[Job], int]:
        """A page of jobs, newest first, and the total count (of that status, if given)."""
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        with closing(self._connect()) as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM jobs {where}", args).fetchone()[0]
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return [_row_to_job(r) for r in rows], total

    def claim_next(self) -> Job | None:
        """Atomically take the oldest queued job and mark it running; None when none is queued.
        A job of a conversation (request["conversation"]) waits while another job of that
        conversation runs, so each turn is asked knowing the turns submitted before it."""
        with closing(self._connect()) as conn:
            row = conn.execute(
                f"UPDATE jobs SET status = ?, started_at = ?, attempts = attempts + 1 "
                f"WHERE id = (SELECT id FROM jobs AS queued WHERE status = ? AND NOT EXISTS ("
                f"  SELECT 1 FROM jobs AS running WHERE running.status = ?"
                f"  AND json_extract(running.request, '$.conversation')"
                f"    = json_extract(queued.request, '$.conversation'))"
                f" ORDER BY seq LIMIT 1) "
                f"RETURNING {_COLUMNS}",
                (RUNNING, time.time(), QUEUED, RUNNING),
            ).fetchone()
        return _row_to_job(row) if row else None

    def _finish(self, job_id: str, status: str, result: dict | None, error: str | None) -> bool:
        # Only a running job can finish: a job cancelled meanwhile stays cancelled.
        with closing(self._connect()) as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ? "
                "WHERE id = ? AND status = ?",
                (
                    status,
                    json.dumps(result) if result is not None else None,
                    error,
                    time.time(),
                    job_id,
                    RUNNING,
                ),
            )
            return cur.rowcount == 1

    def set_progress(self, job_id: str, progress: dict[str, Any]) -> bool:
        """Record a running job's latest step (JSON); False when it is no longer running."""
        with closing(self._connect()) as conn:
            cur = conn.execute("UPDATE jobs SET progress = ? WHERE id = ? AND status = ?",
                               (json.dumps(progress), job_id, RUNNING))
            return cur.rowcount == 1

    def runs(self, job_id: str) -> Callable[[sqlite3.Connection], bool]:
        """A check, for ConversationStore.add_turn's only_if, that the job is still running, read
        on the caller's connection to this store's file (inside the caller's transaction)."""
        def running(conn: sqlite3.Connection) -> bool:
            return conn.execute("SELECT 1 FROM jobs WHERE id = ? AND status = ?",
                                (job_id, RUNNING)).fetchone() is not None
        return running

    def mark_succeeded(self, job_id: str, result: dict[str, Any]) -> bool:
        """Record the result; False when the job was no longer running (e.g. cancelled)."""
        return self._finish(job_id, SUCCEEDED, result, None)

    def mark_failed(self, job_id: str, error: str, result: dict[str, Any] | None = None) -> bool:
        """Record the error (and a result worth reading still, e.g. an index job's failures);
        False when the job was no longer running."""
        return self._finish(job_id, FAILED, result, error)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (a running one's result is then discarded, and the
        conversation turn it may have written already with it). A finished job is returned
        unchanged. None when there is no such job."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            cancelled = conn.execute(
                "UPDATE jobs SET status = ?, finished_at = ? WHERE id = ? AND status IN (?, ?)",
                (CANCELLED, time.time(), job_id, QUEUED, RUNNING),
            ).rowcount
            if cancelled:
                conn.execute("DELETE FROM turns WHERE job = ?", (job_id,))
            conn.execute("COMMIT")
        return self.get(job_id)

    def requeue_interrupted(self) -> int:
        """On start-up: jobs left running by a stopped service go back to the queue (queued ones
        stay queued). Returns how many were re-queued."""
        with closing(self._connect()) as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = ?, started_at = NULL, progress = NULL WHERE status = ?",
                (QUEUED, RUNNING),
            )
            return cur.rowcount

    def counts(self) -> dict[str, int]:
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {status: 0 for status in STATUSES} | dict(rows)
