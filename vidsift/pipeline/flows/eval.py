"""`vidsift eval`: a long-video benchmark's multiple-choice questions asked through ask at one
visual-token budget, three ways in one run, each answer stored as it comes.

The arms (ARMS), each the same Asker flow (memory -> plan -> fine decode -> the VLM) with its own
plan, on the same ingest pool and the same VLM:
- vidsift: the configured plan (selection.selector, the budget's policy), the frames scored
  against the question and its options (EvalItem.query), not the answer-format instructions;
- uniform: the whole video as one clip (selection.uniform_video), as many frames as the budget
  pays at budget.min_pixels evenly spread over it, in temporal pairs as a VLM's video input has
  them: uniform sampling at equal tokens;
- downsample: the same at 1/DOWNSAMPLE_AREA of the pixels per frame, so DOWNSAMPLE_AREA times
  the frames at equal tokens: equal-token downsampling.
A clip takes at most selection.clip_fps frames a second, so over a short video the uniform arms
size their frames up with the tokens left instead. The prompt is the set's lmms-eval format
(flows.eval_sets), laid out with the evidence as every ask is (numbered segments and the
citation line come first, for every arm alike); the reply's letter is read by the set's
lmms-eval rule.

Each (question, arm) is asked once: answers go to OUT/answers.sqlite as they come (a row per
question and arm, committed before the next is asked), so a run killed at any point and run
again asks only what has no row; a question whose video fails to read is stored with its error,
counted wrong, and asked again by the next run. Questions are asked in the file's order, all
arms of one before the next, so a partial run compares the arms on the same questions. OUT holds
one run: the store keeps the set, budget and model it was made with, and refuses another.
OUT/results.json: accuracy overall, per duration bucket and per question category, per arm.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidsift.core.config import Config
from vidsift.core.errors import ConfigError, VidsiftError
from vidsift.pipeline.flows.eval_sets import (
    BUCKETS_S, LVB_GROUPS, MAX_NEW_TOKENS, EvalItem, extract_choice,
)

ARMS = ("vidsift", "uniform", "downsample")
DOWNSAMPLE_AREA = 4  # the downsample arm's frames have 1/4 of the uniform arm's pixels
STORE = "answers.sqlite"
RESULTS = "results.json"
_BUSY_S = 30.0

# Buckets in the order tables list them; any other after these, in order of appearance.
BUCKET_ORDER = ("short", "medium", "long", *LVB_GROUPS.values(), *(n for _, n in BUCKETS_S),
                "unknown")


def arm_config(cfg: Config, arm: str) -> Config:
    """The config an arm asks with (ARMS): vidsift's as given; uniform: selection.selector
    uniform_video; downsample: that with budget.min_pixels / DOWNSAMPLE_AREA (never below one
    merged token's patch)."""
    if arm not in ARMS:
        raise ConfigError(f"eval arm {arm!r}: choose from {' | '.join(ARMS)}")
    if arm == "vidsift":
        return cfg
    selection = cfg.selection.model_copy(update={"selector": "uniform_video"})
    budget = cfg.budget
    if arm == "downsample":
        factor = cfg.vision_spec().factor
        budget = budget.model_copy(update={
            "min_pixels": max(factor * factor, budget.min_pixels // DOWNSAMPLE_AREA)})
    return cfg.model_copy(update={"selection": selection, "budget": budget})


class AnswerStore:
    """OUT/answers.sqlite: the run's settings (meta) and a row per (item, arm) asked."""

    def __init__(self, out_dir: str | Path) -> None:
        from vidsift.core.files import open_sqlite

        self.path = Path(out_dir).expanduser() / STORE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = open_sqlite(self.path, _BUSY_S)
        self._conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS answers (item TEXT, arm TEXT, bucket TEXT, category TEXT,"
            " gold TEXT, response TEXT, choice TEXT, correct INTEGER, tokens INTEGER,"
            " visual_tokens INTEGER, frames INTEGER, seconds REAL, error TEXT, asked_at REAL,"
            " PRIMARY KEY (item, arm))")

    def close(self) -> None:
        self._conn.close()

    def claim(self, settings: dict) -> None:
        """Record the run's settings, or check them against those the store was made with:
        answers at another budget, of another set or model, are not mixed (ConfigError)."""
        stored = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if not stored:
            self._conn.executemany("INSERT INTO meta VALUES (?, ?)",
                                   [(k, json.dumps(v)) for k, v in settings.items()])
            return
        differ = [f"{k} {json.loads(stored[k])} (this run: {v})" for k, v in settings.items()
                  if k in stored and json.loads(stored[k]) != v]
        if differ:
            raise ConfigError(f"{self.path.parent}: holds answers of another run ("
                              + "; ".join(differ) + "): give another --out")

    def answered(self) -> set[tuple[str, str]]:
        """(item, arm) of every row without an error: what a rerun does not ask again."""
        return set(self._conn.execute("SELECT item, arm FROM answers WHERE error IS NULL"))

    def put(self, row: dict) -> None:
        columns = ("item", "arm", "bucket", "category", "gold", "response", "choice", "correct",
                   "tokens", "visual_tokens", "frames", "seconds", "error", "asked_at")
        self._conn.execute(f"INSERT OR REPLACE INTO answers VALUES ({', '.join('?' * 14)})",
                           [row.get(c) for c in columns])

    def rows(self) -> list[dict]:
        cursor = self._conn.execute("SELECT * FROM answers ORDER BY rowid")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values)) for values in cursor]


@dataclass
class EvalReport:
    """What a run did (asked: questions x arms asked now; skipped: already stored) and the
    results over every stored answer of its items (summarize)."""

    format: str
    budget: int
    model: str
    arms: tuple[str, ...]
    items: int
    asked: int
    skipped: int
    errors: int
    results: dict
    out_dir: str
    seconds: float
    failures: list[str] = field(default_factory=list)  # "item arm: error" of this run

    def to_dict(self) -> dict:
        return {"format": self.format, "budget": self.budget, "model": self.model,
                "arms": list(self.arms), "items": self.items, "asked": self.asked,
                "skipped": self.skipped, "errors": self.errors, "seconds": round(self.seconds, 2),
                "out_dir": self.out_dir, "failures": self.failures, "results": self.results}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _ordered(names: Sequence[str]) -> list[str]:
    seen = list(dict.fromkeys(names))
    known = [b for b in BUCKET_ORDER if b in seen]
    return known + [b for b in seen if b not in known]


def summarize(rows: Sequence[dict], items: Sequence[EvalItem], arms: Sequence[str]) -> dict:
    """Per arm over the stored rows of `items`: {items, answered, errors, correct, accuracy
    (correct over answered + errors: a question that could not be asked counts wrong),
    tokens_mean (planned visual tokens), visual_tokens_mean (what the VLM kept), frames_mean
    (frames shown), buckets:
    {bucket: {n, correct, accuracy}}, categories: likewise}; None accuracy for no rows."""
    wanted = {item.id for item in items}
    by_arm: dict[str, list[dict]] = {arm: [] for arm in arms}
    for row in rows:
        if row["item"] in wanted and row["arm"] in by_arm:
            by_arm[row["arm"]].append(row)
    bucket_names = _ordered([item.bucket for item in items])
    category_names = list(dict.fromkeys(item.category for item in items))

    def groups(rows_: list[dict], key: str, names: list[str]) -> dict:
        out = {}
        for name in names:
            inside = [r for r in rows_ if r[key] == name]
            if inside:
                right = sum(r["correct"] or 0 for r in inside)
                out[name] = {"n": len(inside), "correct": right,
                             "accuracy": _ratio(right, len(inside))}
        return out

    def mean(rows_: list[dict], key: str) -> float | None:
        return round(sum(r[key] or 0 for r in rows_) / len(rows_), 1) if rows_ else None

    results = {}
    for arm, arm_rows in by_arm.items():
        ok = [r for r in arm_rows if r["error"] is None]
        right = sum(r["correct"] or 0 for r in arm_rows)
        results[arm] = {
            "items": len(items), "answered": len(ok), "errors": len(arm_rows) - len(ok),
            "correct": right, "accuracy": _ratio(right, len(arm_rows)),
            "tokens_mean": mean(ok, "tokens"), "visual_tokens_mean": mean(ok, "visual_tokens"),
            "frames_mean": mean(ok, "frames"),
            "buckets": groups(arm_rows, "bucket", bucket_names),
            "categories": groups(arm_rows, "category", category_names),
        }
    return results


def table_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """The three-way table as text: (header, rows): a row per duration bucket then overall,
    each arm's accuracy in % with its count, then the mean visual tokens and frames per arm
    (and the errors, when there are any)."""
    arms = list(results)
    buckets = _ordered([b for arm in arms for b in results[arm]["buckets"]])

    def cell(group: dict | None) -> str:
        if not group or group.get("accuracy") is None:
            return "-"
        n = group.get("n", group.get("answered", 0) + group.get("errors", 0))
        return f"{100 * group['accuracy']:.1f} ({group['correct']}/{n})"

    header = ["bucket", *arms]
    rows = [[bucket, *(cell(results[arm]["buckets"].get(bucket)) for arm in arms)]
            for bucket in buckets]
    rows.append(["overall", *(cell(results[arm]) for arm in arms)])
    for label, key in (("visual tokens (mean)", "tokens_mean"), ("frames (mean)", "frames_mean")):
        rows.append([label, *("-" if results[arm][key] is None else f"{results[arm][key]:.0f}"
                              for arm in arms)])
    if any(results[arm]["errors"] for arm in arms):
        rows.append(["errors", *(str(results[arm]["errors"]) for arm in arms)])
    return header, rows


def run_eval(
    cfg: Config,
    fmt: str,
    items: Sequence[EvalItem],
    out_dir: str | Path,
    arms: Sequence[str] = ARMS,
    budget: int | None = None,
    pool=None,
    vlm=None,
    progress: Callable[[int, int, EvalItem, str], None] | None = None,
    annotations: str = "",
) -> EvalReport:
    """Ask every (item, arm) without a stored answer, store each answer as it comes, and write
    OUT/results.json over all stored answers of `items`.

    budget: visual tokens per question (default budget.tokens). pool / vlm: an ingest pool and
    an open_vlm VLM to lend (else started here and closed at the end). progress(done, total,
    item, arm) after each answer, total being what this run asks. Raises ConfigError with no
    VLM configured, an unknown arm, or an OUT made by another run."""
    if not cfg.vlm.enabled:
        raise ConfigError("vidsift eval needs a VLM: give --model (or vlm.model)")
    arms = tuple(dict.fromkeys(arms))
    configs = {arm: arm_config(cfg, arm) for arm in arms}
    budget = budget or cfg.budget.tokens
    started = time.perf_counter()
    out = Path(out_dir).expanduser()
    store = AnswerStore(out)
    own_pool = own_vlm = None
    askers = {}
    asked = errors = 0
    failures: list[str] = []
    try:
        store.claim({"format": fmt, "budget": budget, "model": str(cfg.vlm.model),
                     "backend": cfg.vlm.backend, "vision": cfg.budget.model})
        done = store.answered()
        todo = [(item, arm) for item in items for arm in arms if (item.id, arm) not in done]
        if todo:
            from vidsift.pipeline.flows.ask import Asker

            if pool is None:
                from vidsift.pipeline.flows.index import start_pool

                pool = own_pool = start_pool(cfg)
            if vlm is None:
                from vidsift.workers.vlm import open_vlm

                vlm = own_vlm = open_vlm(cfg.vlm, cfg.pool)
            askers = {arm: Asker(configs[arm], pool=pool, vlm=vlm) for arm in arms}
        for number, (item, arm) in enumerate(todo, start=1):
            row = {"item": item.id, "arm": arm, "bucket": item.bucket, "category": item.category,
                   "gold": item.answer, "correct": 0, "asked_at": time.time()}
            began = time.perf_counter()
            try:
                result = askers[arm].ask(item.video, item.prompt, budget=budget,
                                         max_new_tokens=MAX_NEW_TOKENS[fmt], use_index=False,
                                         query=item.query)
            except VidsiftError as exc:
                errors += 1
                failures.append(f"{item.id} {arm}: {exc}")
                row["error"] = str(exc)
            else:
                response = result.answer or ""
                choice = extract_choice(item, response)
                row.update(response=response, choice=choice, correct=int(choice == item.answer),
                           tokens=result.tokens,
                           visual_tokens=result.vlm.get("visual_tokens_kept"),
                           frames=sum(len(seg["timestamps"]) for seg in result.segments))
            row["seconds"] = round(time.perf_counter() - began, 3)
            store.put(row)
            asked += 1
            if progress is not None:
                progress(number, len(todo), item, arm)
        results = summarize(store.rows(), items, arms)
    finally:
        for asker in askers.values():
            asker.close()
        if own_vlm is not None:
            own_vlm.shutdown()
        if own_pool is not None:
            own_pool.close()
        store.close()
    report = EvalReport(format=fmt, budget=budget, model=str(cfg.vlm.model), arms=arms,
                        items=len(items), asked=asked, skipped=len(items) * len(arms) - asked,
                        errors=errors, results=results, out_dir=str(out),
                        seconds=time.perf_counter() - started, failures=failures)
    from vidsift.core.files import write_atomic

    write_atomic(out / RESULTS, json.dumps({**report.to_dict(), "annotations": annotations},
                                           indent=2) + "\n")
    return report
