"""VLM prefill benchmark: what vidsift's token budget saves in Qwen2.5-VL's and Qwen3-VL's prefill.

Same model, same video, one process; three inputs for one question:
  (a) competitor: 64 frames sampled uniformly over the whole video as one clip, at the model's
      default video resolution: Qwen2.5-VL as qwen-vl-utils sizes it (per-frame max_pixels =
      min(768*28*28, total_pixels / nframes * 2) with total_pixels = 128000*28*28*0.9, i.e.
      768*28*28 for 64 frames); Qwen3-VL as transformers' Qwen3VLVideoProcessor sizes it with
      the checkpoints' video_preprocessor_config.json (shortest_edge 4096, longest_edge
      25165824) and its per-frame cap (cap_pixels_per_frame, qwen-vl-utils' rule: at most 768
      tokens or longest_edge / nframes pixels a frame);
  (b) vidsift: the default budget (BudgetConfig.tokens) planned by plan_evidence and sized by its
      allocate(); no coarse embedding pass is run here, so plan_evidence takes its uniform
      fallback (which segments are picked does not change the prefill cost, their tokens do);
  (c) (b) with DivPrune keeping 50% of the visual tokens after the encoder.
Prefill = pixel preparation + vision tower + pruning + LLM prefill up to the first token
(QwenVLBackend.generate_tokens with max_new_tokens=1). Frames are decoded (PyAV, seek + decode
forward) before timing, for both the same way. --family picks the model: qwen2_5_vl (results at
the top level of vlm.json) or qwen3_vl (under "qwen3_vl"; its budget plans with Qwen3-VL's
arithmetic, budget.model = qwen3_vl).

Remote (--remote, or --remote-only to skip the prefill cases): the same vidsift token set (b)
asked through vlm.backend=openai of an OpenAI-compatible endpoint on 127.0.0.1
(pipeline.service.openai_server) serving the tiny test model, against the same backend object called
in-process: request bytes per ask (JPEG and PNG frames), round-trip seconds and their overhead
over the in-process generate (encode, base64, JSON, HTTP, server-side decode), and the server's
prompt-token count against the plan. Recorded under "remote_openai" (other entries are kept).

CPU (default): a random-weight model with Qwen2.5-VL-3B's vision tower widths (hidden 1280,
16 heads, MLP 3420, window 112) at depth 2 (one windowed, one full-attention block), or with
Qwen3-VL-8B's (hidden 1152, 16 heads, MLP 4304, a 48 x 48 position grid) at depth 2 with a
DeepStack merger after each block, and a 4-layer LLM (hidden 1024, 8 heads, 2 KV heads, MLP
5504), so one run fits a small CPU. GPU: pass a real checkpoint:
    .venv/bin/python bench/vlm.py
    .venv/bin/python bench/vlm.py --family qwen3_vl
    .venv/bin/python bench/vlm.py --device cuda --model Qwen/Qwen2.5-VL-3B-Instruct
    .venv/bin/python bench/vlm.py --device cuda --family qwen3_vl --model Qwen/Qwen3-VL-8B-Instruct
Writes bench/results/vlm.json, keeping the entries of the other family and of --remote.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.tiny_vlm builds the random-weight checkpoint

RESULTS = ROOT / "bench" / "results" / "vlm.json"
VIDEO = ROOT.parent / "shared" / "data" / "bbb.mp4"
QUESTION = "What does the rabbit do after the butterfly lands on him?"
COMPETITOR_FRAMES = 64
# qwen-vl-utils video defaults (VIDEO_TOTAL_PIXELS, FRAME_FACTOR).
QWEN_VL_UTILS_TOTAL_PIXELS = int(128000 * 28 * 28 * 0.9)
FRAME_FACTOR = 2

CPU_TEXT = {"hidden_size": 1024, "intermediate_size": 5504, "num_hidden_layers": 4,
            "num_attention_heads": 8, "num_key_value_heads": 2}
CPU_VISION = {"depth": 2, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
              "window_size": 112, "fullatt_block_indexes": [1], "tokens_per_second": 2}
CPU_VISION_QWEN3 = {"depth": 2, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16,
                    "num_position_embeddings": 2304, "deepstack_visual_indexes": [0, 1]}
# Qwen3-VL checkpoints' video_preprocessor_config.json size, and the video processor's per-frame
# token cap (max_video_tokens).
QWEN3_VIDEO_SIZE = {"shortest_edge": 4096, "longest_edge": 25165824}
QWEN3_MAX_VIDEO_TOKENS = 768


def decode_at(path: str, times, height: int, width: int):
    """Frames shown at `times` (seconds, ascending), resized to height x width: PyAV seek to the
    keyframe before each time, decode forward to the frame whose display interval holds it."""
    import av

    from vidsift.core.types import Frame

    frames = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base, rate = float(stream.time_base), float(stream.average_rate)
        for t in times:
            container.seek(int(t / base), stream=stream, backward=True)
            previous = None
            for frame in container.decode(stream):
                if previous is not None and frame.pts * base > t:
                    break
                previous = frame
            image = previous.to_ndarray(format="rgb24", width=width, height=height)
            frames.append(Frame(image, previous.pts * base, int(round(previous.pts * base * rate))))
    return tuple(frames)


def default_video_size(family: str, info) -> tuple[int, int]:
    """(height, width) the model's own video pipeline gives 64 frames of this video (see (a))."""
    from vidsift.core.vision import VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, VISION_SPECS, smart_resize

    if family == "qwen3_vl":
        # transformers' own sizing (pure arithmetic; the processor's pixel path needs torchvision)
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize as hf_resize

        factor = VISION_SPECS[family].factor
        low, high = QWEN3_VIDEO_SIZE["shortest_edge"], QWEN3_VIDEO_SIZE["longest_edge"]
        per_frame = max(min(QWEN3_MAX_VIDEO_TOKENS * factor * factor, high // COMPETITOR_FRAMES),
                        int(low * 1.05))
        return hf_resize(COMPETITOR_FRAMES, info.height, info.width, temporal_factor=2,
                         factor=factor, min_pixels=low, max_pixels=per_frame * COMPETITOR_FRAMES)
    max_pixels = max(
        min(VIDEO_MAX_PIXELS, QWEN_VL_UTILS_TOTAL_PIXELS / COMPETITOR_FRAMES * FRAME_FACTOR),
        int(VIDEO_MIN_PIXELS * 1.05),
    )
    return smart_resize(info.height, info.width, min_pixels=VIDEO_MIN_PIXELS,
                        max_pixels=int(max_pixels))


def competitor_token_set(path: str, info, family: str = "qwen2_5_vl"):
    """(a): 64 uniform frames as one clip at the model's default per-frame video size."""
    from vidsift.core.types import PlannedSegment, SegmentKind, TokenSet
    from vidsift.core.vision import VISION_SPECS, tokens_for

    height, width = default_video_size(family, info)
    step = info.duration / COMPETITOR_FRAMES
    times = tuple(info.start_time + (k + 0.5) * step for k in range(COMPETITOR_FRAMES))
    frames = decode_at(path, times, height, width)
    segment = PlannedSegment(SegmentKind.CLIP, info.start_time, info.end_time, times, height,
                             width, tokens_for(COMPETITOR_FRAMES, height, width, VISION_SPECS[family]),
                             frames=frames)
    return TokenSet(path, [segment], budget=segment.tokens)


def vidsift_token_set(path: str, info, family: str = "qwen2_5_vl"):
    """(b): the default budget planned by plan_evidence (uniform fallback) with the family's
    arithmetic, decoded at its sizes."""
    import dataclasses

    import numpy as np

    from vidsift.core.config import BudgetConfig, SelectionConfig
    from vidsift.pipeline.plan.evidence import plan_evidence

    plan = plan_evidence(
        np.zeros(0), np.zeros((0, 1)), np.zeros((0, 1)), None, info.start_time, info.end_time,
        SelectionConfig(), BudgetConfig(model=family), (info.height, info.width), video=path,
    )
    plan.segments = [
        dataclasses.replace(seg, frames=decode_at(path, seg.timestamps, seg.height, seg.width))
        for seg in plan.segments
    ]
    return plan


def measure(cases: list[tuple], repeats: int) -> dict[str, dict]:
    """cases: (name, backend, token_set). Rounds interleave the cases (a, b, c, a, b, c, ...) so
    that a busy shared machine slows each alike; medians over the rounds. Besides the prefill's
    wall time, the process's CPU time for the whole call (all threads; the one decoded token is
    negligible): on a shared machine other jobs stretch wall time far more than CPU time."""
    from vidsift.core.types import VLMRequest

    runs: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    prefills = {}
    for _ in range(repeats):
        for name, backend, token_set in cases:
            request = VLMRequest(token_set, QUESTION, max_new_tokens=1)
            cpu_started = time.process_time()
            _, prefills[name], prefill_s, _ = backend.generate_tokens([request])
            cpu[name].append(time.process_time() - cpu_started)
            runs[name].append(prefill_s)
            print(name, f"{prefill_s:.1f} s wall, {cpu[name][-1]:.1f} s CPU", flush=True)
    return {
        name: {
            "segments": len(token_set.segments),
            "frames": sum(len(s.frames) for s in token_set.segments),
            "sizes": sorted({f"{s.height}x{s.width}" for s in token_set.segments}),
            "visual_tokens": prefills[name][0].visual_tokens,
            "visual_tokens_kept": prefills[name][0].visual_tokens_kept,
            "prefill_s": statistics.median(runs[name]),
            "prefill_runs_s": runs[name],
            "cpu_s": statistics.median(cpu[name]),
            "cpu_runs_s": cpu[name],
        }
        for name, _, token_set in cases
    }


def remote_overhead(token_set, repeats: int, max_new_tokens: int = 8) -> dict:
    """Per ask over the tiny test model: in-process generate vs the openai backend through a
    local OpenAI-compatible server hosting that same backend (see the module docstring)."""
    from tests.http_servers import serve
    from tests.tiny_vlm import save_tiny_qwen
    from vidsift.core.config import VLMConfig
    from vidsift.core.types import VLMRequest
    from vidsift.pipeline.service.openai_server import create_app
    from vidsift.workers.vlm import get_vlm
    from vidsift.workers.vlm.remote import message_content

    if any(len(s.frames) > 1 for s in token_set.segments):
        raise ValueError("remote_overhead compares image-only token sets (identical plans for "
                         "both paths)")
    with tempfile.TemporaryDirectory(prefix="vlmremote") as scratch:
        model = str(save_tiny_qwen(Path(scratch) / "tiny"))
        local = get_vlm(VLMConfig(model=model, device="cpu", dtype="float32",
                                  max_new_tokens=max_new_tokens))
        request = VLMRequest(token_set, QUESTION, max_new_tokens=max_new_tokens)

        def once(generate):
            started = time.perf_counter()
            result = generate([request])[0]
            return time.perf_counter() - started, result

        formats = ("jpeg", "png")
        with serve(create_app(local, "tiny")) as url:
            remotes = {f: get_vlm(VLMConfig(backend="openai", base_url=url, model="tiny",
                                            tokenizer=model, max_new_tokens=max_new_tokens,
                                            image_format=f)) for f in formats}
            try:
                paths = {"in_process": local.generate,
                         **{f: remotes[f].generate for f in formats}}
                reference = {name: once(generate)[1] for name, generate in paths.items()}  # warm
                runs: dict[str, list[float]] = {name: [] for name in paths}
                # Interleaved rounds: a busy shared machine slows every path alike.
                for _ in range(repeats):
                    for name, generate in paths.items():
                        runs[name].append(once(generate)[0])
                encode = {}
                for f in formats:
                    started = time.perf_counter()
                    json.dumps({"content": message_content(request, remotes[f].cfg)}).encode()
                    encode[f] = time.perf_counter() - started
            finally:
                for remote in remotes.values():
                    remote.shutdown()
        out = {"model": "tests.tiny_vlm tiny random Qwen2.5-VL", "repeats": repeats,
               "max_new_tokens": max_new_tokens, "visual_tokens": token_set.total_tokens,
               "frames": sum(len(s.frames) for s in token_set.segments),
               "in_process_s": statistics.median(runs["in_process"]),
               "in_process_runs_s": runs["in_process"]}
        for f in formats:
            usage = reference[f].usage
            out[f] = {
                "request_bytes": usage["request_bytes"],
                "round_trip_s": statistics.median(runs[f]), "round_trip_runs_s": runs[f],
                # per round, remote minus the in-process run just before it
                "overhead_s": statistics.median(
                    r - l for r, l in zip(runs[f], runs["in_process"])),
                "client_encode_s": encode[f],  # frames -> data URLs -> JSON body
                "prompt_tokens": usage["prompt_tokens"],
                "prompt_tokens_diff": usage["prompt_tokens_diff"],
                # PNG is lossless: the server sees the in-process pixels, so the same text
                "same_answer_as_in_process": reference[f].text == reference["in_process"].text,
            }
            print(f, json.dumps(out[f]), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(VIDEO))
    parser.add_argument("--model", default=None, help="checkpoint dir or hub id (default: random CPU model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--family", choices=["qwen2_5_vl", "qwen3_vl"], default="qwen2_5_vl",
                        help="VLM family: its backend, token arithmetic and default video size")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--remote", action="store_true",
                        help="also measure the openai backend's overhead (tiny model)")
    parser.add_argument("--remote-only", action="store_true",
                        help="only the openai backend's overhead; keep the recorded prefill cases")
    args = parser.parse_args()
    if args.family != "qwen2_5_vl" and (args.remote or args.remote_only):
        parser.error("--remote measures the tiny Qwen2.5-VL server: use it without --family")

    import torch

    from vidsift.core.config import BudgetConfig, VLMConfig
    from vidsift.core.probe import probe
    from vidsift.workers.vlm import get_vlm

    info = probe(args.video)
    if args.remote_only:
        result = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
        result["remote_openai"] = remote_overhead(vidsift_token_set(args.video, info),
                                                  max(args.repeats, 5))
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        return
    started = time.perf_counter()
    sets = {
        "a_uniform64_default_res": competitor_token_set(args.video, info, args.family),
        "b_vidsift_budget": vidsift_token_set(args.video, info, args.family),
    }
    print(f"decoded frames in {time.perf_counter() - started:.1f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="vlmbench") as scratch:
        if args.model is None:
            from tests.tiny_vlm import save_tiny_qwen, save_tiny_qwen3

            save, vision = ((save_tiny_qwen3, CPU_VISION_QWEN3) if args.family == "qwen3_vl"
                            else (save_tiny_qwen, CPU_VISION))
            model = str(save(Path(scratch) / "model", text=CPU_TEXT, vision=vision))
            model_desc = {"random_weights": True, "text": CPU_TEXT, "vision": vision}
        else:
            model, model_desc = args.model, {"random_weights": False, "checkpoint": args.model}
        common = {"backend": args.family, "model": model, "device": args.device,
                  "dtype": args.dtype}
        plain = get_vlm(VLMConfig(**common))
        pruned = get_vlm(VLMConfig(**common, pruner="divprune", prune_ratio=0.5))
        measure([("warm-up", plain, sets["b_vidsift_budget"])], 1)  # allocator, kernels
        cases = measure([
            ("a_uniform64_default_res", plain, sets["a_uniform64_default_res"]),
            ("b_vidsift_budget", plain, sets["b_vidsift_budget"]),
            ("c_vidsift_budget_divprune50", pruned, sets["b_vidsift_budget"]),
        ], args.repeats)

    a = cases["a_uniform64_default_res"]["prefill_s"]
    run = {
        "video": str(args.video),
        "question": QUESTION,
        "device": args.device if args.device != "cpu" else f"cpu ({platform.processor() or 'x86_64'}, "
                                                             f"{torch.get_num_threads()} threads)",
        "model": model_desc,
        "budget_tokens": BudgetConfig().tokens,
        "vidsift_plan": "plan_evidence without a coarse pass (uniform fallback), sized by allocate",
        "cases": cases,
        "ratio_b_over_a": cases["b_vidsift_budget"]["prefill_s"] / a,
        "ratio_c_over_a": cases["c_vidsift_budget_divprune50"]["prefill_s"] / a,
        "cpu_ratio_b_over_a": (cases["b_vidsift_budget"]["cpu_s"]
                               / cases["a_uniform64_default_res"]["cpu_s"]),
        "cpu_ratio_c_over_a": (cases["c_vidsift_budget_divprune50"]["cpu_s"]
                               / cases["a_uniform64_default_res"]["cpu_s"]),
        "visual_tokens_b_over_a": (cases["b_vidsift_budget"]["visual_tokens"]
                                   / cases["a_uniform64_default_res"]["visual_tokens"]),
        "target": "b prefill <= 0.25 x a",
    }
    run["target_met"] = run["ratio_b_over_a"] <= 0.25
    # Re-read just before writing: other runs (the other family, --remote-only) keep their entries.
    result = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if args.family == "qwen3_vl":
        result["qwen3_vl"] = {"family": "qwen3_vl", **run}
    else:
        result.update(run)
    if args.remote:
        result["remote_openai"] = remote_overhead(sets["b_vidsift_budget"], max(args.repeats, 5))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.family}: prefill b/a = {run['ratio_b_over_a']:.3f} "
          f"(CPU time {run['cpu_ratio_b_over_a']:.3f}), "
          f"c/a = {run['ratio_c_over_a']:.3f}, visual tokens b/a = {run['visual_tokens_b_over_a']:.3f}")


if __name__ == "__main__":
    main()
