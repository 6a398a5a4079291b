"""A multi-node ingest run on a real local Ray cluster (ray.cluster_utils.Cluster: a head and two
worker raylets, each a separate node on 127.0.0.1), run as its own process by
tests/workers/test_ingest_cluster.py, since a driver joins one Ray cluster per process.

    python -m tests.cluster_ingest VIDEO WORKDIR OUT_JSON

Ingests VIDEO twice, speech recognised in the shards, with one ingest actor per node: once
undisturbed, once removing a worker node while shards are in flight; writes what the test asserts
on to OUT_JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(video: str, workdir: str, out_json: str) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from vidsift.core.config import load_config
    from vidsift.index.memory import MemoryStore
    from vidsift.pipeline.flows.ingest import cut_clips, ingest_one
    from vidsift.workers.ingest import IngestPool

    work = Path(workdir)
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "temp_dir": str(work / "ray"), "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="vidsift-cluster-test", log_to_driver=False)
    report: dict = {"nodes": len(ray.nodes())}
    try:
        def cfg(index_dir: Path):
            return load_config("default", [
                "embed.ocr=false", f"index.dir={index_dir}", "ingest.shard_minutes=0.05",
                "ingest.num_actors=3", "ingest.num_cpus_per_actor=0.5", "speech.mode=asr",
            ])

        clean_cfg = cfg(work / "clean")
        pool = IngestPool(clean_cfg)
        report["actor_nodes"] = len(set(pool.nodes()))
        clean = ingest_one(video, clean_cfg, pool, MemoryStore(clean_cfg.index.dir))
        nodes = pool.nodes()
        report["nodes_that_ran_shards"] = len({n for n, done in zip(nodes, pool.shards_done) if done})
        pool.close()

        lossy_cfg = cfg(work / "lossy")
        pool = IngestPool(lossy_cfg)
        # A worker node that hosts a decode actor of this pool (SPREAD may double one up).
        decode_nodes = set(pool.nodes())
        victim = next(w for w in workers if w.node_id in decode_nodes)
        removed = []

        def remove_a_node(event) -> None:
            # After the first shard lands, the other actors hold shards in flight: take one
            # worker node (and the actor on it) away mid-ingest.
            if event.shards_done == 1 and not removed:
                cluster.remove_node(victim, allow_graceful=False)
                removed.append(victim)

        lossy = ingest_one(video, lossy_cfg, pool, MemoryStore(lossy_cfg.index.dir), remove_a_node)
        report["removed"] = len(removed)
        report["shards_rerun"] = pool.shards_rerun
        pool.close()

        a, b = clean.frames, lossy.frames
        report["frames"] = [len(a), len(b)]
        report["same_times"] = bool(np.array_equal(a.times, b.times))
        report["visual_max_diff"] = float(np.abs(a.embeddings.visual - b.embeddings.visual).max())
        report["text_max_diff"] = float(np.abs(a.embeddings.text - b.embeddings.text).max())
        report["same_descriptions"] = a.embeddings.descriptions == b.embeddings.descriptions
        report["same_clips"] = cut_clips(clean, clean_cfg).spans == cut_clips(lossy, lossy_cfg).spans
        report["segments"] = [len(clean.transcript.segments), len(lossy.transcript.segments)]
        report["same_transcript"] = clean.transcript.to_dict() == lossy.transcript.to_dict()
        report["stored_equal"] = bool(np.array_equal(
            MemoryStore(lossy_cfg.index.dir).get(lossy.content_hash, lossy.key).frames.times,
            a.times))
    finally:
        ray.shutdown()
        cluster.shutdown()
    Path(out_json).write_text(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:4])
