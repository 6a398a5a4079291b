"""The SQLite job store: ordering, paging, atomic claims across threads and processes, cancel,
restart recovery, results kept."""

from __future__ import annotations

import multiprocessing
import threading

from vidsift.pipeline.flows.conversation import ConversationStore
from vidsift.pipeline.service.jobs import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, JobStore


def test_create_get_and_page_newest_first(tmp_path):
    store = JobStore(tmp_path)
    ids = [store.create("ask", {"question": f"q{i}"}).id for i in range(7)]
    job = store.get(ids[3])
    assert job.status == QUEUED and job.request == {"question": "q3"} and job.attempts == 0
    page, total = store.list(limit=3, offset=0)
    assert total == 7 and [j.id for j in page] == ids[::-1][:3]
    page, _ = store.list(limit=3, offset=6)
    assert [j.id for j in page] == [ids[0]]
    assert store.get("nope") is None


def test_claim_is_fifo_and_results_survive_a_new_store(tmp_path):
    store = JobStore(tmp_path)
    first, second = store.create("ask", {"n": 1}), store.create("ask", {"n": 2})
    claimed = store.claim_next()
    assert claimed.id == first.id and claimed.status == RUNNING and claimed.attempts == 1
    assert store.mark_succeeded(first.id, {"answer": "yes"})
    assert store.claim_next().id == second.id
    assert store.mark_failed(second.id, "video.mp4: corrupt")
    assert store.claim_next() is None
    reopened = JobStore(tmp_path)
    assert reopened.get(first.id).result == {"answer": "yes"}
    assert reopened.get(first.id).status == SUCCEEDED
    assert reopened.get(second.id).status == FAILED
    assert reopened.get(second.id).error == "video.mp4: corrupt"


def test_cancel_queued_running_and_finished(tmp_path):
    store = JobStore(tmp_path)
    queued, running, finished = (store.create("ask", {"n": i}) for i in range(3))
    assert store.cancel(queued.id).status == CANCELLED
    assert store.claim_next().id == running.id
    assert store.claim_next().id == finished.id
    store.mark_succeeded(finished.id, {"answer": "kept"})
    assert store.cancel(running.id).status == CANCELLED
    # The worker's late result does not overwrite the cancel.
    assert not store.mark_succeeded(running.id, {"answer": "late"})
    assert store.get(running.id).result is None
    # Cancelling a finished job keeps its result.
    assert store.cancel(finished.id).result == {"answer": "kept"}
    assert store.cancel("missing") is None


def test_restart_requeues_running_jobs_only(tmp_path):
    store = JobStore(tmp_path)
    a, b, c = (store.create("ask", {"n": i}) for i in range(3))
    store.claim_next()  # a running
    store.claim_next()  # b running
    store.mark_succeeded(b.id, {"answer": "b"})
    restarted = JobStore(tmp_path)
    assert restarted.requeue_interrupted() == 1
    assert restarted.get(a.id).status == QUEUED and restarted.get(c.id).status == QUEUED
    again = restarted.claim_next()
    assert again.id == a.id and again.attempts == 2
    assert restarted.get(b.id).result == {"answer": "b"}


def test_concurrent_claims_from_threads_take_each_job_once(tmp_path):
    store = JobStore(tmp_path)
    ids = {store.create("ask", {"n": i}).id for i in range(60)}
    claimed: list[str] = []
    lock = threading.Lock()

    def worker():
        while (job := store.claim_next()) is not None:
            store.mark_succeeded(job.id, {"by": threading.get_ident()})
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)
    assert store.counts()[SUCCEEDED] == 60


def _claim_all(data_dir: str, out: multiprocessing.Queue) -> None:
    store = JobStore(data_dir)
    taken = []
    while (job := store.claim_next()) is not None:
        store.mark_succeeded(job.id, {"ok": True})
        taken.append(job.id)
    out.put(taken)


def test_concurrent_claims_from_processes_take_each_job_once(tmp_path):
    store = JobStore(tmp_path)
    ids = {store.create("ask", {"n": i}).id for i in range(40)}
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(tmp_path), out)) for _ in range(3)]
    for p in procs:
        p.start()
    taken = [job_id for _ in procs for job_id in out.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
    assert sorted(taken) == sorted(ids)


def test_progress_is_kept_while_running_and_cleared_by_a_requeue(tmp_path):
    store = JobStore(tmp_path)
    job = store.create("index", {"paths": ["/media"]})
    assert not store.set_progress(job.id, {"done": 1, "total": 4})  # queued: nothing to report
    store.claim_next()
    assert store.set_progress(job.id, {"stage": "index", "done": 1, "total": 4})
    assert store.get(job.id).progress == {"stage": "index", "done": 1, "total": 4}
    assert store.get(job.id).to_dict()["progress"]["done"] == 1
    assert store.requeue_interrupted() == 1 and store.get(job.id).progress is None
    store.claim_next()
    store.set_progress(job.id, {"done": 4, "total": 4})
    store.mark_succeeded(job.id, {"indexed": 4})
    assert not store.set_progress(job.id, {"done": 0, "total": 4})  # finished: left as it ended
    assert JobStore(tmp_path).get(job.id).progress == {"done": 4, "total": 4}


def test_a_store_written_before_progress_opens(tmp_path):
    import sqlite3

    old = sqlite3.connect(tmp_path / "jobs.sqlite3")
    old.executescript(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, "
        "request TEXT NOT NULL, result TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0, "
        "seq INTEGER NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL);"
        "INSERT INTO jobs VALUES ('old', 'ask', 'succeeded', '{}', '{\"answer\": 1}', NULL, 1, 1, "
        "0, 0, 0);")
    old.commit()
    old.close()
    store = JobStore(tmp_path)
    job = store.get("old")
    assert job.result == {"answer": 1} and job.progress is None


def test_a_conversations_next_turn_waits_while_its_previous_one_runs(tmp_path):
    store = JobStore(tmp_path)
    first = store.create("ask", {"question": "q1", "conversation": "talk"})
    follow = store.create("ask", {"question": "q2", "conversation": "talk"})
    other = store.create("ask", {"question": "q3", "conversation": "other"})
    plain = store.create("ask", {"question": "q4"})
    assert store.claim_next().id == first.id
    # The follow-up is skipped while the first turn runs; other jobs go on in order.
    assert store.claim_next().id == other.id
    assert store.claim_next().id == plain.id
    assert store.claim_next() is None
    store.mark_succeeded(first.id, {"answer": "a1"})
    assert store.claim_next().id == follow.id


def test_a_conversation_jobs_turn_is_written_once_and_a_cancelled_job_leaves_none(tmp_path):
    jobs, conversations = JobStore(tmp_path), ConversationStore(tmp_path)

    def ask(job_id: str, question: str) -> int | None:  # what the service's worker records
        return conversations.add_turn("chat", {"question": question}, job=job_id,
                                      only_if=jobs.runs(job_id))

    def questions() -> list[str]:
        return [turn["question"] for turn in conversations.turns("chat")]

    first = jobs.create("ask", {"conversation": "chat"})
    assert jobs.claim_next().id == first.id and ask(first.id, "where?") == 1
    # The service stopped before the job was marked done: the restart runs it again, and the
    # conversation keeps one turn of it.
    assert jobs.requeue_interrupted() == 1 and jobs.claim_next().id == first.id
    assert ask(first.id, "where? (run again)") == 1
    assert jobs.mark_succeeded(first.id, {}) and questions() == ["where?"]
    # Cancelled before its turn is written: nothing is written.
    early = jobs.create("ask", {"conversation": "chat"})
    assert jobs.claim_next().id == early.id and jobs.cancel(early.id).status == CANCELLED
    assert ask(early.id, "early") is None and questions() == ["where?"]
    # Cancelled after it was written, before the job was marked done: withdrawn with the job.
    late = jobs.create("ask", {"conversation": "chat"})
    assert jobs.claim_next().id == late.id and ask(late.id, "late") == 2
    assert jobs.cancel(late.id).status == CANCELLED and not jobs.mark_succeeded(late.id, {})
    assert questions() == ["where?"]
    # A cancel after the finish changes nothing; turns without a job (the CLI's) are all kept.
    assert jobs.cancel(first.id).status == SUCCEEDED and questions() == ["where?"]
    assert [conversations.add_turn("chat", {"question": "cli"}) for _ in range(2)] == [2, 3]
