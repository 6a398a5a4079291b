"""Videos that exist only in a bucket and behind a web server, read in place by a real local
multi-node Ray cluster (ray.cluster_utils.Cluster: a head and two worker raylets on 127.0.0.1),
run as its own process by tests/pipeline/flows/test_remote_sources.py.

    python -m tests.cluster_remote VIDEO OTHER_VIDEO WORKDIR OUT_JSON

Starts moto's S3 server and nginx on loopback (the nodes find the S3 endpoint in the standard
AWS environment, as real nodes find theirs), uploads VIDEO, then indexes, searches and asks it
from s3:// and http:// with a missing object and a 404 URL in the same batch, counting the
bytes every process read of each (the driver's probe and every shard actor); ingests both
again unchanged, then overwrites the object with OTHER_VIDEO and ingests again. Writes what the
test asserts on to OUT_JSON.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.remote_stores import moto_s3, nginx_serving, s3_client
from vidsift.core.sources import bytes_fetched, configure

BLOCK_KIB = 32


def main(video: str, other: str, workdir: str, out_json: str) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from vidsift.core.config import load_config
    from vidsift.core.media import content_hash
    from vidsift.core.probe import probe
    from vidsift.index.memory import MemoryStore
    from vidsift.pipeline.flows.ask import Asker
    from vidsift.pipeline.flows.index import index_videos, search_clips
    from vidsift.pipeline.flows.ingest import ingest_one
    from vidsift.workers.ingest import IngestPool

    work = Path(workdir)
    served = work / "served"
    served.mkdir(parents=True)
    os.link(video, served / "talk.mp4")
    report: dict = {"size": os.path.getsize(video)}
    with moto_s3() as endpoint, nginx_serving(served, work / "nginx") as web:
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket="archive")
        s3.upload_file(video, "archive", "talks/talk.mp4")
        url, http_url = "s3://archive/talks/talk.mp4", web.url + "talk.mp4"
        report["http_url"] = http_url
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "temp_dir": str(work / "ray"), "include_dashboard": False})
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, namespace="vidsift-remote-test", log_to_driver=False)
        try:
            cfg = load_config("default", [
                "embed.ocr=false", f"index.dir={work / 'index'}", "ingest.shard_minutes=0.05",
                "ingest.num_actors=3", "ingest.num_cpus_per_actor=0.5", "speech.mode=subtitles",
                f"decode.source_block_kib={BLOCK_KIB}", "decode.source_cache_blocks=4",
                "vlm.model=none", f"serve.data_dir={work / 'service'}",
            ])
            configure(BLOCK_KIB, 4)  # as ingest_videos does: the probes read 32 KiB blocks
            report["probe_s3"] = probe(url).duration
            report["probe_http"] = probe(http_url).duration
            pool = IngestPool(cfg)
            report["nodes"] = len(ray.nodes())
            report["actor_nodes"] = len(set(pool.nodes()))
            summary = index_videos([url, "s3://archive/talks/missing.mp4", web.url + "gone.mp4",
                                    http_url], cfg, pool=pool).to_dict()
            report["indexed"] = summary["indexed"]
            report["failed"] = summary["failed"]
            report["shards_done"] = pool.shards_done

            def read() -> dict[str, list[int]]:
                """url -> [bytes the driver read, bytes each actor read] so far."""
                actors = pool.bytes_read()
                return {u: [bytes_fetched().get(u, 0), *(a.get(u, 0) for a in actors)]
                        for u in (url, http_url)}

            first = read()
            report["first_ingest_bytes"] = first
            report["bytes_read"] = first[url][1:]
            report["hits"] = [hit.video for hit in search_clips("a test pattern", cfg, k=3)]
            asker = Asker(cfg, pool=pool)
            answer = asker.ask(url, "What is shown?").to_dict()
            report["ask_video"] = answer["video"]
            report["segments"] = len(answer["segments"])

            store = MemoryStore(cfg.index.dir)
            events: list = []
            report["hash_before"] = content_hash(url)
            before = read()
            ingest_one(url, cfg, pool, store, events.append)  # unchanged: reused
            ingest_one(http_url, cfg, pool, store, events.append)
            report["unchanged_reused"] = [e.reused for e in events]
            again = read()
            report["unchanged_bytes"] = {u: sum(again[u]) - sum(before[u]) for u in again}
            s3.upload_file(other, "archive", "talks/talk.mp4")
            events.clear()
            changed = ingest_one(url, cfg, pool, store, events.append)
            report["hash_after"] = content_hash(url)
            report["changed_reused"] = any(e.reused for e in events)
            report["changed_duration"] = changed.info.duration
            report["http_ranges"] = [(method, status, header)
                                     for method, _, status, header, _ in web.requests()]
            pool.close()
        finally:
            ray.shutdown()
            cluster.shutdown()
    Path(out_json).write_text(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:5])
