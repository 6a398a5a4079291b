"""Token-reduction benchmark on planted-distinct-frame sequences (issue 26): every pre-LLM pruner
and merger of workers.vlm.pruning, at equal tokens, in one run.

A sequence is one video's merged-token grid (T steps of H x W tokens of D dims): a base frame
repeated with small noise (near-duplicates, as a static shot gives), and a few planted frames
at seeded random steps that are distinct (a cut, a flash of text): either wholly new content
("whole") or a new object over a quarter of the frame ("object", the rest as the base). Each
method keeps the same share of the tokens (retention 5%, 10%, 25%); evidence recall = share of the
planted frames that keep at least one token of their own (a pruner: a kept token of that step;
a merger: a merged token whose first occurrence is on that step and whose members are mostly
from it), and the share of the kept tokens spent on planted frames. Medians over seeds.

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
STEPS, ROWS, COLS, DIM = 24, 8, 8, 64
PLANTED = 3
SEEDS = range(12)
RETENTIONS = (0.05, 0.10, 0.25)
PRUNER_NAMES = ("evs", "vidcom2", "temporal", "divprune", "kcenter", "coverage")
NOISE = 0.05


def sequence(seed: int, kind: str) -> tuple[np.ndarray, list[int]]:
    """(T, H, W, D) grid and the planted steps (never step 0)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(ROWS, COLS, DIM))
    grid = base[None] + NOISE * rng.normal(size=(STEPS, ROWS, COLS, DIM))
    planted = sorted(rng.choice(np.arange(1, STEPS), PLANTED, replace=False).tolist())
    for t in planted:
        if kind == "whole":
            grid[t] = rng.normal(size=(ROWS, COLS, DIM))
        else:
            r, c = rng.integers(0, ROWS // 2 + 1), rng.integers(0, COLS // 2 + 1)
            grid[t, r:r + ROWS // 2, c:c + COLS // 2] = rng.normal(size=(ROWS // 2, COLS // 2, DIM))
    return grid, planted


def thw() -> torch.Tensor:
    axes = torch.meshgrid(torch.arange(STEPS), torch.arange(ROWS), torch.arange(COLS), indexing="ij")
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
    positions = thw()
    rows = []
    for kind in ("whole", "object"):
        for ratio in RETENTIONS:
            methods = [("pruner", n) for n in PRUNER_NAMES] + [("merger", n) for n in sorted(MERGERS)]
            for role, name in methods:
                counts, recalls, shares, times = [], [], [], []
                for seed in SEEDS:
                    grid, planted = sequence(seed, kind)
                    features = torch.from_numpy(grid.reshape(-1, DIM)).float()
                    tic = time.perf_counter()
                    scored = (score_pruner if role == "pruner" else score_merger)(
                        name, features, positions, ratio, planted)
                    times.append(time.perf_counter() - tic)
                    count, recall, share = scored
                    predicted = kept_visual_tokens(name if role == "pruner" else "none",
                                                   name if role == "merger" else "none",
                                                   [(STEPS, ROWS, COLS)], ratio)
                    assert count == predicted, (name, count, predicted)
                    counts.append(count)
                    recalls.append(recall)
                    shares.append(share)
                label = name if role == "pruner" else f"merge:{name}"
                rows.append({
                    "planted": kind, "retention": ratio, "method": label, "kind": role,
                    "tokens_kept": int(np.median(counts)), "count_exact": True,
                    "evidence_recall_median": float(np.median(recalls)),
                    "evidence_recall_mean": round(float(np.mean(recalls)), 3),
                    "planted_token_share_median": round(float(np.median(shares)), 3),
                    "ms_median": round(1000 * float(np.median(times)), 2),
                })
                print(f"{kind:6} r={ratio:.2f} {label:14} kept {rows[-1]['tokens_kept']:4d}  recall "
                      f"{rows[-1]['evidence_recall_mean']:.2f}  planted share "
                      f"{rows[-1]['planted_token_share_median']:.2f}  {rows[-1]['ms_median']} ms")
    result = {
        "what": "planted-distinct-frame token grids: evidence recall of each pruner/merger at equal "
                "retention (medians and means over seeds)",
        "grid": {"steps": STEPS, "rows": ROWS, "cols": COLS, "dim": DIM, "planted": PLANTED,
                 "noise": NOISE, "seeds": len(SEEDS)},
        "not_measured": "hiprune, fastervlm: need a real vision encoder's attention (GPU checkpoint)",
        "machine": f"{os.cpu_count()} CPUs shared with other agents' tests (timings are loaded)",
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
