"""Token-reduction benchmark on planted-distinct-frame sequences (issue 26): every pre-LLM pruner
and merger of workers.vlm.pruning, at equal tokens, in one run.

A sequence is one video's merged-token grid (T steps of H x W tokens of D dims, T in STEPS): a base frame
repeated with small noise (near-duplicates, as a static shot gives), and a few planted frames
at seeded random steps that are distinct (a cut, a flash of text): either wholly new content
("whole") or a new object over a quarter of the frame ("object", the rest as the base). Each
method keeps the same share of the tokens (retention 5%, 10%, 25%); evidence recall = share of the
planted frames that keep at least one token of their own (a pruner: a kept token of that step;
a merger: a merged token whose first occurrence is on that step and whose members are mostly
from it), and the share of the kept tokens spent on planted frames. Medians over seeds.

EVS keeps the first step whole (H x W tokens) and at least that many, so at a low retention of a
short sequence its budget is spent, or nearly, on frame 0: the `evs_vs_vidcom2` block reports
per (planted kind, T, retention) both methods' tokens and mean recall, and the seeds where EVS
loses a planted frame that vidcom2 keeps (EVS then holds as many tokens or more: max(H * W, ...)).

Not here: hiprune and fastervlm read the vision encoder's attention, which a synthetic grid has
none of (their rows and counts are tested on the tiny Qwen models; their recall needs a real
checkpoint, on a GPU).

    .venv/bin/python bench/tokens.py      # writes bench/results/tokens.json
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from vidsift.workers.vlm.pruning import MERGERS, PRUNERS, kept_visual_tokens

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "tokens.json"
STEPS = (8, 12, 16, 24)  # sequence lengths (temporal steps); 3 planted of 8 is still a minority
ROWS, COLS, DIM = 8, 8, 64
PLANTED = 3
SEEDS = range(12)
RETENTIONS = (0.05, 0.10, 0.25)
PRUNER_NAMES = ("evs", "vidcom2", "temporal", "divprune", "kcenter", "coverage")
NOISE = 0.05


def sequence(seed: int, kind: str, steps: int) -> tuple[np.ndarray, list[int]]:
    """(steps, H, W, D) grid and the planted steps (never step 0)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(ROWS, COLS, DIM))
    grid = base[None] + NOISE * rng.normal(size=(steps, ROWS, COLS, DIM))
    planted = sorted(rng.choice(np.arange(1, steps), PLANTED, replace=False).tolist())
    for t in planted:
        if kind == "whole":
            grid[t] = rng.normal(size=(ROWS, COLS, DIM))
        else:
            r, c = rng.integers(0, ROWS // 2 + 1), rng.integers(0, COLS // 2 + 1)
            grid[t, r:r + ROWS // 2, c:c + COLS // 2] = rng.normal(size=(ROWS // 2, COLS // 2, DIM))
    return grid, planted


def thw(steps: int) -> torch.Tensor:
    axes = torch.meshgrid(torch.arange(steps), torch.arange(ROWS), torch.arange(COLS), indexing="ij")
    return torch.stack(axes, dim=-1).reshape(-1, 3)


def score_pruner(name, features, positions, ratio, planted):
    n = features.shape[0]
    keep = max(1, round(n * ratio))
    kept = PRUNERS[name](features, keep, token_thw=positions).numpy()
    steps = positions[kept, 0].numpy()
    recall = np.mean([(steps == t).any() for t in planted])
    return len(kept), float(recall), float(np.isin(steps, planted).mean())


def score_merger(name, features, positions, ratio, planted):
    group = MERGERS[name](features, ratio, token_thw=positions).numpy()
    steps = positions[:, 0].numpy()
    count = int(group.max()) + 1
    own = []  # per group: its first member's step, if most of its members are from that step
    for g in range(count):
        members = np.nonzero(group == g)[0]
        first = steps[members[0]]
        own.append(first if (steps[members] == first).mean() > 0.5 else -1)
    own = np.array(own)
    recall = np.mean([(own == t).any() for t in planted])
    return count, float(recall), float(np.isin(own, planted).mean())


def main() -> None:
    started = time.perf_counter()
    rows, per_seed = [], {}
    methods = [("pruner", n) for n in PRUNER_NAMES] + [("merger", n) for n in sorted(MERGERS)]
    for kind in ("whole", "object"):
        for steps in STEPS:
            positions = thw(steps)
            for ratio in RETENTIONS:
                for role, name in methods:
                    counts, recalls, shares, times = [], [], [], []
                    for seed in SEEDS:
                        grid, planted = sequence(seed, kind, steps)
                        features = torch.from_numpy(grid.reshape(-1, DIM)).float()
                        tic = time.perf_counter()
                        scored = (score_pruner if role == "pruner" else score_merger)(
                            name, features, positions, ratio, planted)
                        times.append(time.perf_counter() - tic)
                        count, recall, share = scored
                        predicted = kept_visual_tokens(name if role == "pruner" else "none",
                                                       name if role == "merger" else "none",
                                                       [(steps, ROWS, COLS)], ratio)
                        assert count == predicted, (name, steps, count, predicted)
                        counts.append(count)
                        recalls.append(recall)
                        shares.append(share)
                    per_seed[kind, steps, ratio, name, role] = (counts, recalls)
                    label = name if role == "pruner" else f"merge:{name}"
                    rows.append({
                        "planted": kind, "steps": steps, "retention": ratio, "method": label,
                        "kind": role, "tokens_kept": int(np.median(counts)), "count_exact": True,
                        "evidence_recall_median": float(np.median(recalls)),
                        "evidence_recall_mean": round(float(np.mean(recalls)), 3),
                        "planted_token_share_median": round(float(np.median(shares)), 3),
                        "ms_median": round(1000 * float(np.median(times)), 2),
                    })
                    print(f"{kind:6} T={steps:2d} r={ratio:.2f} {label:14} kept "
                          f"{rows[-1]['tokens_kept']:4d}  recall {rows[-1]['evidence_recall_mean']:.2f}"
                          f"  planted share {rows[-1]['planted_token_share_median']:.2f}  "
                          f"{rows[-1]['ms_median']} ms")
    claim = []
    for kind in ("whole", "object"):
        for steps in STEPS:
            for ratio in RETENTIONS:
                evs_counts, evs_recalls = per_seed[kind, steps, ratio, "evs", "pruner"]
                vc_counts, vc_recalls = per_seed[kind, steps, ratio, "vidcom2", "pruner"]
                loses = sum(e < v for e, v in zip(evs_recalls, vc_recalls))
                claim.append({
                    "planted": kind, "steps": steps, "retention": ratio,
                    "evs_tokens": int(np.median(evs_counts)), "vidcom2_tokens": int(np.median(vc_counts)),
                    "evs_recall_mean": round(float(np.mean(evs_recalls)), 3),
                    "vidcom2_recall_mean": round(float(np.mean(vc_recalls)), 3),
                    "seeds_evs_loses_what_vidcom2_keeps": loses, "seeds": len(SEEDS),
                    "evs_loses_planted_frames_vidcom2_keeps": loses > 0,
                })
                c = claim[-1]
                print(f"claim {kind:6} T={steps:2d} r={ratio:.2f}: evs {c['evs_tokens']} tokens recall "
                      f"{c['evs_recall_mean']:.2f}, vidcom2 {c['vidcom2_tokens']} tokens recall "
                      f"{c['vidcom2_recall_mean']:.2f}; evs loses in {loses}/{len(SEEDS)} seeds")
    result = {
        "what": "planted-distinct-frame token grids: evidence recall of each pruner/merger at equal "
                "retention (medians and means over seeds)",
        "grid": {"steps": list(STEPS), "rows": ROWS, "cols": COLS, "dim": DIM, "planted": PLANTED,
                 "noise": NOISE, "seeds": len(SEEDS)},
        "not_measured": "hiprune, fastervlm: need a real vision encoder's attention (GPU checkpoint)",
        "machine": f"{os.cpu_count()} CPUs shared with other agents' tests (timings are loaded)",
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
        "evs_vs_vidcom2": claim,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
