"""VLM prefill benchmark: what vidsift's token budget saves in Qwen2.5-VL's prefill.

Same model, same video, one process; three inputs for one question:
  (a) competitor: 64 frames sampled uniformly over the whole video as one clip, at qwen-vl-utils'
      default video resolution (per-frame max_pixels = min(768*28*28, total_pixels / nframes * 2)
      with total_pixels = 128000*28*28*0.9, i.e. 768*28*28 for 64 frames);
  (b) vidsift: the default budget (BudgetConfig.tokens) planned by plan_evidence and sized by its
      allocate(); no coarse embedding pass is run here, so plan_evidence takes its uniform
      fallback (which segments are picked does not change the prefill cost, their tokens do);
  (c) (b) with DivPrune keeping 50% of the visual tokens after the encoder.
Prefill = pixel preparation + vision tower + pruning + LLM prefill up to the first token
(QwenVLBackend.generate_tokens with max_new_tokens=1). Frames are decoded (PyAV, seek + decode
forward) before timing, for both the same way.

CPU (default): a random-weight model with Qwen2.5-VL-3B's vision tower widths (hidden 1280,
16 heads, MLP 3420, window 112) at depth 2 (one windowed, one full-attention block) and a 4-layer
LLM (hidden 1024, 8 heads, 2 KV heads, MLP 5504), so one run fits a small CPU. GPU: pass a real
checkpoint:
    .venv/bin/python bench/vlm.py
    .venv/bin/python bench/vlm.py --device cuda --model Qwen/Qwen2.5-VL-3B-Instruct
Writes bench/results/vlm.json.
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


def competitor_token_set(path: str, info):
    """(a): 64 uniform frames as one clip at qwen-vl-utils' default per-frame size."""
    from vidsift.core.vision import VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, smart_resize, tokens_for
    from vidsift.core.types import PlannedSegment, SegmentKind, TokenSet

    max_pixels = max(
        min(VIDEO_MAX_PIXELS, QWEN_VL_UTILS_TOTAL_PIXELS / COMPETITOR_FRAMES * FRAME_FACTOR),
        int(VIDEO_MIN_PIXELS * 1.05),
    )
    height, width = smart_resize(info.height, info.width, min_pixels=VIDEO_MIN_PIXELS,
                                 max_pixels=int(max_pixels))
    step = info.duration / COMPETITOR_FRAMES
    times = tuple(info.start_time + (k + 0.5) * step for k in range(COMPETITOR_FRAMES))
    frames = decode_at(path, times, height, width)
    segment = PlannedSegment(SegmentKind.CLIP, info.start_time, info.end_time, times, height,
                             width, tokens_for(COMPETITOR_FRAMES, height, width), frames=frames)
    return TokenSet(path, [segment], budget=segment.tokens)


def vidsift_token_set(path: str, info):
    """(b): the default budget planned by plan_evidence (uniform fallback), decoded at its sizes."""
    import dataclasses

    import numpy as np

    from vidsift.core.config import BudgetConfig, SelectionConfig
    from vidsift.pipeline.evidence import plan_evidence

    plan = plan_evidence(
        np.zeros(0), np.zeros((0, 1)), np.zeros((0, 1)), None, info.start_time, info.end_time,
        SelectionConfig(), BudgetConfig(), (info.height, info.width), video=path,
    )
    plan.segments = [
        dataclasses.replace(seg, frames=decode_at(path, seg.timestamps, seg.height, seg.width))
        for seg in plan.segments
    ]
    return plan


def measure(backend, token_set, repeats: int) -> dict:
    from vidsift.core.types import VLMRequest

    request = VLMRequest(token_set, QUESTION, max_new_tokens=1)
    runs = []
    for _ in range(repeats):
        _, prefills, prefill_s, _ = backend.generate_tokens([request])
        runs.append(prefill_s)
    return {
        "segments": len(token_set.segments),
        "frames": sum(len(s.frames) for s in token_set.segments),
        "sizes": sorted({f"{s.height}x{s.width}" for s in token_set.segments}),
        "visual_tokens": prefills[0].visual_tokens,
        "visual_tokens_kept": prefills[0].visual_tokens_kept,
        "prefill_s": statistics.median(runs),
        "prefill_runs_s": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(VIDEO))
    parser.add_argument("--model", default=None, help="checkpoint dir or hub id (default: random CPU model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    import torch

    from vidsift.core.config import BudgetConfig, VLMConfig
    from vidsift.core.probe import probe
    from vidsift.workers.vlm import get_vlm

    info = probe(args.video)
    started = time.perf_counter()
    sets = {
        "a_uniform64_default_res": competitor_token_set(args.video, info),
        "b_vidsift_budget": vidsift_token_set(args.video, info),
    }
    print(f"decoded frames in {time.perf_counter() - started:.1f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="vlmbench") as scratch:
        if args.model is None:
            from tests.tiny_vlm import save_tiny_qwen

            model = str(save_tiny_qwen(Path(scratch) / "model", text=CPU_TEXT, vision=CPU_VISION))
            model_desc = {"random_weights": True, "text": CPU_TEXT, "vision": CPU_VISION}
        else:
            model, model_desc = args.model, {"random_weights": False, "checkpoint": args.model}
        common = {"model": model, "device": args.device, "dtype": args.dtype}
        plain = get_vlm(VLMConfig(**common))
        pruned = get_vlm(VLMConfig(**common, pruner="divprune", prune_ratio=0.5))
        measure(plain, sets["b_vidsift_budget"], 1)  # warm-up (allocator, kernels)
        cases = {}
        for name, backend, token_set in [
            ("a_uniform64_default_res", plain, sets["a_uniform64_default_res"]),
            ("b_vidsift_budget", plain, sets["b_vidsift_budget"]),
            ("c_vidsift_budget_divprune50", pruned, sets["b_vidsift_budget"]),
        ]:
            cases[name] = measure(backend, token_set, args.repeats)
            print(name, json.dumps(cases[name]), flush=True)

    a = cases["a_uniform64_default_res"]["prefill_s"]
    result = {
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
        "target": "b prefill <= 0.25 x a",
    }
    result["target_met"] = result["ratio_b_over_a"] <= 0.25
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"prefill b/a = {result['ratio_b_over_a']:.3f}, c/a = {result['ratio_c_over_a']:.3f}")


if __name__ == "__main__":
    main()
