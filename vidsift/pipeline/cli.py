"""The `vidsift` command line.

Only typer, rich and the config module are imported at the top: torch, transformers, ray, faiss
and the decoders are imported inside the commands that need them, so `vidsift --help` is instant.
Every command takes `--config PRESET_OR_YAML` and any number of `--set section.field=value`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console

from typer.core import TyperGroup

from vidsift.core.config import Config, field_choices, load_config
from vidsift.core.errors import ConfigError, VidsiftError

UNWRAPPED_WIDTH = 10_000  # columns when output is not a terminal: no line is ever folded


def _console(stderr: bool = False) -> Console:
    """A console that never breaks a line of its own: messages are soft-wrapped (a terminal
    folds them for the eye, a copy keeps them whole), and where the output is not a terminal
    (a pipe, a file, a test) tables are laid out without a width limit too, since rich would
    otherwise fold everything at 80 columns and split the paths scripts read."""
    made = Console(stderr=stderr, soft_wrap=True)
    if not made.is_terminal:
        made.width = UNWRAPPED_WIDTH
    return made


console = _console()
err_console = _console(stderr=True)


def _bare_flags(params: list) -> list:
    """params, each flag (--json, --help: an option that takes no value) with an empty metavar:
    typer's help showed `--json <bool>` as if it took one (and `--json true` is an error)."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


class _Commands(TyperGroup):
    """Every command's typed errors (bad input, bad config, failed requests) end here: one red
    line naming the file and the cause, exit code 1, never a traceback. Every command's help
    shows its flags bare (_bare_flags)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except VidsiftError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None

    def get_params(self, ctx):
        return _bare_flags(super().get_params(ctx))

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _bare_flags([*command.params, command.get_help_option(ctx)])
        return command


app = typer.Typer(
    cls=_Commands,
    name="vidsift",
    help="Long-video understanding: ask questions, caption archives, search clips.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    # docstrings' line breaks are not the terminal's: help text wraps as paragraphs
    rich_markup_mode="markdown",
)

VLM_MODEL_HELP = ("VLM checkpoint path or hub id (Qwen2.5-VL; Qwen3-VL with --set "
                  "vlm.backend=qwen3_vl --set budget.model=qwen3_vl).")
ConfigOpt = Annotated[
    str, typer.Option("--config", "-c", help="Preset (default, gpu, cluster) or a YAML file.")
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config field: section.field=value (repeatable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def choice_option(flag: str, field: str, what: str, choices: tuple[str, ...] = ()):
    """An option whose value is one of a config field's choices (field_choices(field), or
    `choices`): its help lists them, and another value is one line naming them (exit 1)."""
    allowed = choices or field_choices(field)

    def check(value: Optional[str]) -> Optional[str]:
        if value is not None and value not in allowed:
            raise ConfigError(f"{flag} {value}: choose one of {' | '.join(allowed)}")
        return value

    return typer.Option(flag, callback=check,
                        help=f"{what}: {' | '.join(allowed)} (default: {field}).")


SpeechOpt = Annotated[Optional[str], choice_option("--speech", "speech.mode",
                                                   "What is said as evidence")]


def _show_version(wanted: bool) -> None:
    if wanted:
        from vidsift import __version__

        console.print(f"vidsift {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Long-video understanding: ask questions, caption archives, search clips."""


def resolve_config(config: str, overrides: list[str] | None, **flags: object) -> Config:
    """Load the config, then apply --set overrides, then the command's own flags
    (given as 'section.field' -> value; None means the flag was not given)."""
    extra = [f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None]
    return load_config(config, [*(overrides or []), *extra])


def print_json(payload: object) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


@app.command("config")
def show_config(config: ConfigOpt = "default", overrides: SetOpt = None) -> None:
    """Print the resolved configuration (preset + overrides) as YAML."""
    import yaml

    cfg = resolve_config(config, overrides)
    sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


@app.command("watch")
def watch_command(
    url: Annotated[str, typer.Argument(help="udp://, rtsp://, rtmp://, srt://, an HLS .m3u8 "
                                            "URL or a file still being written.")],
    name: Annotated[str, typer.Option("--name", help="The stream's name (its memory's).")],
    duration: Annotated[Optional[float], typer.Option(
        "--duration", help="Stop after this many seconds (default: watch until stopped).")] = None,
    alert: Annotated[Optional[list[str]], typer.Option(
        "--alert", help="A standing query: an event is raised when a frame matches it "
        "(a description, or a photo's path: .jpg .jpeg .png .webp .bmp).")] = None,
    index_dir: IndexDirOpt = None,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Watch a live stream: ingest it as it arrives into index.dir/streams/NAME, keep the last
    watch.retention_h hours, and print each alert event and gap as it happens."""
    cfg = resolve_config(config, overrides, **{"index.dir": index_dir})
    import dataclasses

    from vidsift.pipeline.flows.watch import watch_stream

    for item in watch_stream(url, name, cfg, alerts=alert or (), duration_s=duration):
        record = item if isinstance(item, dict) else dataclasses.asdict(item)
        if as_json:
            print(json.dumps(record), flush=True)
        else:
            console.print(record, highlight=False)


@app.command("ask")
def ask_command(
    arguments: Annotated[list[str], typer.Argument(
        metavar="[VIDEO] QUESTION",
        help="A video file and the question; the question alone asks across the clip index.")],
    conversation: Annotated[Optional[str], typer.Option(
        "--conversation", help="Ask as the next turn of this conversation (kept in "
        "serve.data_dir; a follow-up may leave the video out).")] = None,
    index_dir: IndexDirOpt = None,
    budget: Annotated[Optional[int], typer.Option(help="Visual-token budget.")] = None,
    selector: Annotated[Optional[str], choice_option(
        "--selector", "selection.selector", "Frame/clip selector")] = None,
    pruner: Annotated[Optional[str], choice_option(
        "--pruner", "vlm.pruner", "Post-encoder token pruner")] = None,
    model: Annotated[
        Optional[str], typer.Option(help=VLM_MODEL_HELP + " 'none': evidence only.")
    ] = None,
    thumbnails: Annotated[
        Optional[str], typer.Option(help="Write the evidence thumbnails into this folder.")
    ] = None,
    speech: SpeechOpt = None,
    schema: Annotated[Optional[str], typer.Option(
        "--schema", metavar="SCHEMA.json",
        help="Answer as JSON that follows this JSON Schema file (printed, and answer_json in "
        "--json).")] = None,
    stream: Annotated[Optional[str], typer.Option(
        "--stream", help="Ask a watched stream (vidsift watch --name) instead of a video.")] = None,
    last: Annotated[Optional[str], typer.Option(
        "--last", help="With --stream: the window asked about, back from its latest frame "
        "(90s, 10m, 2h; 10m unless --since/--until).")] = None,
    since: Annotated[Optional[str], typer.Option(
        "--since", help="With --stream: the window's wall-clock start (ISO 8601, naive = local "
        "time, or Unix seconds).")] = None,
    until: Annotated[Optional[str], typer.Option(
        "--until", help="With --stream: the window's wall-clock end (as --since).")] = None,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question about a video, or across every video of the clip index (no VIDEO);
    prints the answer, the cited evidence and every segment shown, with its video and time."""
    if len(arguments) > 2:
        raise typer.BadParameter(
            f"{len(arguments)} arguments: give VIDEO QUESTION, or QUESTION alone (quote it)")
    video, question = (None, *arguments) if len(arguments) == 1 else arguments
    if stream is not None:
        if len(arguments) != 1:
            raise typer.BadParameter("with --stream give the QUESTION alone")
        from datetime import datetime, timezone

        from vidsift.pipeline.flows.watch import parse_duration, parse_time, stream_window

        if last is None and since is None and until is None:
            last = "10m"
        cfg_dir = resolve_config(config, overrides, **{"index.dir": index_dir})
        video, window_start = stream_window(
            cfg_dir, stream, None if last is None else parse_duration(last),
            None if since is None else parse_time(since, "--since"),
            None if until is None else parse_time(until, "--until"))
        err_console.print(f"stream {stream}: times below count from "
                          f"{datetime.fromtimestamp(window_start, timezone.utc).isoformat()}")
    answer_schema = None
    if schema is not None:  # a bad schema fails here, before any pool starts
        from vidsift.core.schema import load_schema
        from vidsift.workers.vlm.structured import check_compiles

        answer_schema = check_compiles(load_schema(schema), schema)
    cfg = resolve_config(
        config, overrides, **{"selection.selector": selector, "vlm.pruner": pruner,
                              "vlm.model": model, "index.dir": index_dir, "speech.mode": speech},
    )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vidsift.pipeline.flows.ask import ask

    # Off a terminal the transient bar shows nothing and leaves a blank line above an error.
    with Progress(TextColumn("ingesting"), BarColumn(), MofNCompleteColumn(), TextColumn("shards"),
                  TimeElapsedColumn(), console=err_console,
                  disable=as_json or not err_console.is_terminal, transient=True) as bar:
        task = bar.add_task("", total=None)

        def progress(event) -> None:
            bar.update(task, total=event.shards_total, completed=event.shards_done)

        shown: list[str] = []  # the answer's pieces, printed as the VLM generates them

        def show(piece: str) -> None:
            if not shown:
                piece = piece.lstrip()
                if not piece:
                    return
                bar.stop()  # the answer takes the terminal from the bar
                console.print("[bold]answer:[/] ", end="")
            shown.append(piece)
            console.out(piece, end="", highlight=False)  # as generated: no markup, no wrap

        result = ask(cfg, video, question, budget=budget, thumbnails_dir=thumbnails,
                     progress=progress, conversation=conversation,
                     on_text=None if as_json else show, schema=answer_schema)
    if as_json:
        print_json(result.to_dict())
        return
    from rich.markup import escape  # the model's text may hold brackets like [segment 2]

    if result.answer is None:
        console.print("[bold]evidence only[/] (no VLM: pass --model PATH_OR_ID for an answer)")
    else:
        if shown:
            console.out("")  # ends the answer's line
        else:
            console.print(f"[bold]answer:[/] {escape(result.answer)}", highlight=False)
        console.print(f"[bold]cited:[/] {result.citation_line() or 'none (all evidence below)'}",
                      highlight=False)
    if result.conversation:
        console.print(f"[bold]conversation:[/] {escape(result.conversation_line())}",
                      highlight=False)
    console.print("evidence:")
    for line in result.evidence_lines():
        console.print(f"  {line}", highlight=False)


@app.command("caption")
def caption_command(
    source: Annotated[str, typer.Argument(help="A folder of videos, or a .jsonl/.csv manifest.")],
    out: Annotated[str, typer.Option("--out", help="Output folder (resumable).")],
    model: Annotated[Optional[str], typer.Option(help=VLM_MODEL_HELP)] = None,
    to_index: Annotated[
        bool, typer.Option("--to-index", help="Add the captions to the clip index's text space.")
    ] = False,
    speech: SpeechOpt = None,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Caption every clip of every video: Parquet rows plus SRT and WebVTT per video."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    cfg = resolve_config(config, overrides, **{"vlm.model": model, "speech.mode": speech})
    from vidsift.core.media import find_videos
    from vidsift.pipeline.flows.caption import run_caption

    total = len(find_videos([source]))
    with Progress(TextColumn("captioning"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}"), console=err_console,
                  disable=as_json) as bar:
        task = bar.add_task("", total=total)

        def progress(report, video, status):
            bar.update(task, completed=report.skipped + report.captioned + report.failed,
                       description=f"{status}: {video}")

        report = run_caption(source, out, cfg, progress=progress)
    payload = report.to_dict()
    if to_index:
        from vidsift.pipeline.flows.caption import add_captions_to_index

        payload["index"] = add_captions_to_index(out, cfg)
    if as_json:
        print_json(payload)
        return
    console.print(f"{report.captioned} captioned ({report.clips} clips), {report.skipped} already "
                  f"done, {report.failed} failed, in {report.seconds:.1f} s -> {out}")
    for video, error in report.failures.items():
        console.print(f"  failed: {video}: {error}", highlight=False)
    if to_index:
        added = payload["index"]
        console.print(f"clip index: {added['clips']} caption clips of {added['added']} videos "
                      f"added ({added['skipped']} already there) -> {cfg.index.dir}")


@app.command("eval")
def eval_command(
    annotations: Annotated[str, typer.Argument(
        help="The set's annotations as published: Video-MME's parquet, LongVideoBench's "
        "lvb_val.json, MLVU's json folder (or one file), LVBench's video_info.meta.jsonl.")],
    fmt: Annotated[str, typer.Option(
        "--format", help="The set: videomme | longvideobench | mlvu | lvbench.")],
    videos: Annotated[str, typer.Option("--videos", help="The folder holding the set's videos.")],
    out: Annotated[str, typer.Option(
        "--out", help="Output folder: answers.sqlite (resumable) and results.json.")],
    budget: Annotated[Optional[int], typer.Option(
        help="Visual tokens per question, every arm (default: budget.tokens).")] = None,
    arms: Annotated[Optional[list[str]], typer.Option(
        "--arms", help="Arms to run, repeatable or comma-separated: vidsift | uniform | "
        "downsample (default: all three).")] = None,
    limit: Annotated[Optional[int], typer.Option(
        min=1, help="Only the first N questions of the file.")] = None,
    model: Annotated[Optional[str], typer.Option(help=VLM_MODEL_HELP)] = None,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a long-video benchmark (Video-MME, LongVideoBench, MLVU, LVBench) at one
    visual-token budget: vidsift's plan, uniform sampling and equal-token downsampling, each
    question's letter read as lmms-eval reads it; accuracy overall and per duration bucket.
    Answers are stored as they come: run it again to go on after a stop."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from vidsift.pipeline.flows.eval import ARMS, RESULTS, run_eval, table_rows
    from vidsift.pipeline.flows.eval_sets import read_set

    cfg = resolve_config(config, overrides, **{"vlm.model": model})
    chosen = [a.strip() for given in arms or [] for a in given.split(",") if a.strip()] or ARMS
    items = read_set(fmt, annotations, videos)[:limit]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console,
                  disable=as_json or not err_console.is_terminal) as bar:
        # (off a terminal the bar would print its empty frame above an error line)
        task = bar.add_task(f"{fmt}", total=None)

        def progress(done: int, total: int, item, arm: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{fmt} {item.id} {arm}")

        report = run_eval(cfg, fmt, items, out, arms=chosen, budget=budget, progress=progress,
                          annotations=str(annotations))
    if as_json:
        print_json(report.to_dict())
        return
    header, rows = table_rows(report.results)
    table = Table(title=f"{fmt}: accuracy % at {report.budget} visual tokens ({report.model})")
    for name in header:
        table.add_column(name, justify="left" if name == "bucket" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"{report.asked} asked, {report.skipped} already answered, {report.errors} "
                  f"failed, in {report.seconds:.1f} s -> {report.out_dir}/{RESULTS}",
                  highlight=False)
    for failure in report.failures:
        console.print(f"  failed: {failure}", highlight=False)


IndexDirOpt = Annotated[
    Optional[str], typer.Option("--index-dir", help="Clip index folder (default: index.dir).")
]


@app.command("index")
def index_command(
    paths: Annotated[list[str], typer.Argument(
        help="Video files, folders (walked for videos) or .jsonl/.csv manifests.")],
    index_dir: IndexDirOpt = None,
    speech: SpeechOpt = None,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add videos to the clip index (resumable: videos already indexed with these speech settings
    are skipped; ones indexed with other settings are re-done from their stored memory)."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cfg = resolve_config(config, overrides, **{"index.dir": index_dir, "speech.mode": speech})
    from vidsift.pipeline.flows.index import index_videos

    counts = {"clips": 0, "frames": 0}
    with Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("videos  {task.fields[clips]} clips  {task.fields[fps]} frames/s"),
                  TimeElapsedColumn(), TextColumn("{task.description}"),
                  console=err_console, disable=as_json) as bar:
        task = bar.add_task("", total=None, clips=0, fps="-")
        started = time.perf_counter()

        def progress(event) -> None:
            if event.kind == "indexed":
                counts["clips"] += event.clips
                counts["frames"] += event.frames
            elif event.kind == "failed":
                err_console.print(f"[yellow]failed:[/] {event.error}", highlight=False)
            elapsed = time.perf_counter() - started
            fps = f"{counts['frames'] / elapsed:.1f}" if counts["frames"] else "-"
            bar.update(task, total=event.total, completed=event.done, clips=counts["clips"],
                       fps=fps, description=event.path.rsplit("/", 1)[-1])

        summary = index_videos(paths, cfg, progress=progress)
    if as_json:
        print_json(summary.to_dict())
    else:
        redone = f"{len(summary.reindexed)} re-indexed for other speech settings, " if summary.reindexed else ""
        console.print(
            f"{len(summary.indexed)} indexed ({redone}{summary.clips} clips, {summary.frames} frames), "
            f"{len(summary.skipped)} already indexed, {len(summary.failed)} failed, "
            f"in {summary.wall_s:.1f} s -> {summary.index_dir}", highlight=False)
    if summary.every_video_failed:
        raise typer.Exit(1)


@app.command("search")
def search_command(
    query: Annotated[
        Optional[str], typer.Argument(help="What to look for, in words (optional with --image).")
    ] = None,
    image: Annotated[
        Optional[str], typer.Option("--image", help="A photo: find clips that look like it.")
    ] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Number of clips.")] = 10,
    video: Annotated[
        Optional[list[str]], typer.Option("--video", help="Only clips of this video (repeatable).")
    ] = None,
    index_dir: IndexDirOpt = None,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the clips of indexed videos that best match a text query, a photo, or both (the
    photo searches the index's visual space; with both, scores fuse by index.visual_weight)."""
    if not query and not image:
        raise typer.BadParameter("give a QUERY, an --image, or both")
    cfg = resolve_config(config, overrides, **{"index.dir": index_dir})
    from vidsift.core.images import read_image
    from vidsift.pipeline.flows.index import search_clips

    pixels = read_image(image) if image else None
    hits = search_clips(query, cfg, k=k, videos=video, image=pixels)
    if as_json:
        print_json({"query": query, "image": image, "hits": [h.to_dict() for h in hits]})
        return
    print_hits(hits, console)


def print_hits(hits: list, out: Console) -> None:
    """Search hits (index.clip_index.ClipHit) as a table on `out`: rank, the video's file name
    (whole: at 80 columns the paths were folded mid-name), clip span, score; the paths and
    thumbnails are in --json."""
    from rich.table import Column, Table

    from vidsift.core.timeline import hms

    if not hits:
        out.print("no clips found (is the index empty?)")
        return
    table = Table("rank", Column("video", no_wrap=True), Column("clip", no_wrap=True),
                  Column("score", no_wrap=True))
    names = short_names([hit.video for hit in hits])
    for rank, hit in enumerate(hits, 1):
        table.add_row(str(rank), names[hit.video], f"{hms(hit.start)}-{hms(hit.end)}",
                      f"{hit.score:.3f}")
    out.print(table)
    out.print("each clip's video path and thumbnail: --json", highlight=False)


def short_names(paths: list[str]) -> dict[str, str]:
    """Each path -> its file name, or as many folders above it as tell it apart from the
    others' (a/intro.mp4 and b/intro.mp4)."""
    from pathlib import PurePath

    parts = {path: PurePath(path).parts for path in paths}
    names = {}
    for path, own in parts.items():
        depth = 1
        while depth < len(own) and any(other[-depth:] == own[-depth:]
                                       for key, other in parts.items() if key != path):
            depth += 1
        names[path] = str(PurePath(*own[-depth:]))
    return names


@app.command("summarize")
def summarize_command(
    videos: Annotated[list[str], typer.Argument(metavar="VIDEO", help="Video files.")],
    model: Annotated[Optional[str], typer.Option(help=VLM_MODEL_HELP + " 'none': extractive "
                                                 "chapters (titles read or heard in them, no "
                                                 "written prose).")] = None,
    chapters: Annotated[Optional[str], typer.Option(
        "--chapters", help="How many chapters, or auto (summary.chapters).")] = None,
    thumbnails: Annotated[Optional[str], typer.Option(
        help="Write the chapters' thumbnails into this folder (default: under index.dir).")
    ] = None,
    fmt: Annotated[Optional[str], typer.Option(
        "--format", help="Write the chapters as md | vtt | ffmetadata | youtube (with -o).")
    ] = None,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", help="The file --format writes (one video).")] = None,
    reel: Annotated[Optional[str], typer.Option(
        "--reel", help="Join the highlights into this MP4, a chapter each (one video).")] = None,
    captions: Annotated[Optional[str], typer.Option(
        "--captions", help="A caption run's --out folder: chapters its captions cover are "
                           "summarized from them (summary.captions_dir).")] = None,
    index_dir: IndexDirOpt = None,
    speech: SpeechOpt = None,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Summary, chapters and highlights of each video: chapters cut from its memory where what
    is seen, read or said changes; with a VLM each chapter's title and summary written from its
    own planned frames (chapters in parallel), then the video's summary and highlights; with
    --model none titles read or heard in each chapter. Finished chapters are stored: a re-run
    redoes only missing ones, a second summary reads the stored memory."""
    from vidsift.core.errors import ConfigError

    if chapters is not None and chapters != "auto":
        if not chapters.isdigit() or int(chapters) < 1:
            raise ConfigError(f"--chapters {chapters!r}: give a number of chapters (1 or more) "
                              "or auto")
    from vidsift.pipeline.flows.chapter_files import CHAPTER_FORMATS

    if fmt is not None and fmt not in CHAPTER_FORMATS:
        raise ConfigError(f"--format {fmt}: choose one of {' | '.join(CHAPTER_FORMATS)}")
    if (fmt is None) != (out is None):
        raise ConfigError("--format and --out go together: --format md|vtt|ffmetadata|youtube "
                          "-o FILE")
    if reel is not None and not reel.lower().endswith(".mp4"):
        raise ConfigError(f"--reel {reel}: a reel is written as MP4: name it .mp4")
    if len(videos) > 1 and (out or reel):
        raise ConfigError(f"{'--out' if out else '--reel'} writes one video's file: give one "
                          f"video, not {len(videos)}")
    cfg = resolve_config(config, overrides, **{
        "vlm.model": model, "index.dir": index_dir, "speech.mode": speech,
        "summary.captions_dir": captions,
        "summary.chapters": int(chapters) if chapters and chapters.isdigit() else chapters})
    from vidsift.pipeline.flows.summarize import summarize_videos

    if len(videos) == 1:  # one video: its error is the command's, before anything starts
        from vidsift.core.probe import check_video

        check_video(videos[0])
    results = summarize_videos(cfg, videos, thumbnails_dir=thumbnails)
    if len(videos) == 1 and isinstance(results[0][1], Exception):
        raise results[0][1]
    written = {}
    if len(videos) == 1:
        result = results[0][1]
        if out:
            from vidsift.pipeline.flows.chapter_files import write_chapter_file

            written["out"] = str(write_chapter_file(out, fmt, result.to_dict()))
        if reel:
            from vidsift.pipeline.flows.reel import write_reel

            written["reel"] = reel
            written["reel_chapters"] = write_reel(result.video, result.highlights, reel,
                                                  cfg.export)
    if as_json:
        payloads = [{**result.to_dict(), **written} if not isinstance(result, Exception)
                    else {"video": video, "error": f"{type(result).__name__}: {result}"}
                    for video, result in results]
        print_json(payloads[0] if len(videos) == 1 else payloads)
    else:
        for video, result in results:
            if isinstance(result, Exception):
                err_console.print(f"[bold red]error:[/] {result}", highlight=False)
                continue
            how = ("extractive: titles read or heard in each, no VLM" if result.extractive
                   else f"by {result.model}")
            console.print((f"{video}: " if len(videos) > 1 else "")
                          + f"[bold]{len(result.chapters)} chapters[/] ({how})"
                          + (" (memory reused)" if result.reused else ""), highlight=False)
            if result.summary:
                console.print(result.summary, highlight=False, markup=False)
            for line, chapter in zip(result.lines(), result.chapters):
                console.print(f"  {line}  {chapter['thumbnail']}", highlight=False, markup=False)
            if result.highlights:
                console.print(f"highlights ({result.highlights_from}):")
                for line in result.highlight_lines():
                    console.print(f"  {line}", highlight=False, markup=False)
        for key in ("out", "reel"):
            if key in written:
                console.print(f"wrote {written[key]}", highlight=False)
    if all(isinstance(result, Exception) for _, result in results):
        raise typer.Exit(1)


@app.command("serve")
def serve_command(
    host: Annotated[Optional[str], typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default 8000).")] = None,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
) -> None:
    """Run the HTTP service (Ray Serve + FastAPI): the web page at /, OpenAPI at /docs."""
    cfg = resolve_config(config, overrides, **{"serve.host": host, "serve.port": port})
    from vidsift.pipeline.service.http import serve_forever

    console.print(f"vidsift serving on http://{cfg.serve.host}:{cfg.serve.port} "
                  "(the page: /, the API's docs: /docs)")
    serve_forever(cfg)


@app.command("serve-vlm")
def serve_vlm_command(
    model: Annotated[Optional[str], typer.Option(help=VLM_MODEL_HELP)] = None,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8001,
    api_key_env: Annotated[
        Optional[str], typer.Option(help="Environment variable holding the API key clients send.")
    ] = None,
    served_name: Annotated[
        Optional[str], typer.Option(help="Model name clients ask for (default: --model).")
    ] = None,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
) -> None:
    """Serve the in-process VLM as an OpenAI-compatible /v1/chat/completions endpoint (for
    vlm.backend=openai elsewhere)."""
    cfg = resolve_config(config, overrides, **{"vlm.model": model})
    from vidsift.pipeline.service.openai_server import serve_vlm

    console.print(f"serving {served_name or cfg.vlm.model} on http://{host}:{port}/v1")
    serve_vlm(cfg, host, port, api_key_env, served_name)


@app.command("demo")
def demo_command(
    out: Annotated[str, typer.Option("--out", help="Folder for the demo's index and outputs.")],
    video: Annotated[
        Optional[str], typer.Option(help="Video to use; default: generate a sample with ffmpeg.")
    ] = None,
    question: Annotated[str, typer.Option(help="Question for the ask step.")] = (
        "Where does the text appear?"
    ),
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
) -> None:
    """Index a video, search it, and ask it (evidence only): the whole pipeline, no downloads."""
    from pathlib import Path

    out_dir = Path(out).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(config, overrides, **{"index.dir": str(out_dir / "index"),
                                               "vlm.model": "none"})
    from vidsift.pipeline.flows.demo import run_demo

    run_demo(cfg, out_dir, video, question, console)


@app.command("transcribe")
def transcribe_command(
    video: Annotated[str, typer.Argument(help="Video file.")],
    speech: Annotated[Optional[str], choice_option(
        "--speech", "--set speech.mode, else auto", "Where the words come from",
        ("subtitles", "asr", "auto"))] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="srt | vtt | json")] = "srt",
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    index_dir: IndexDirOpt = None,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
) -> None:
    """Write what is said in a video as SRT, WebVTT or JSON: its subtitle track or sidecar file,
    or speech recognition on its audio (stored in the index dir and reused)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from vidsift.core.errors import ConfigError

    writers = {"srt": "srt_text", "vtt": "vtt_text", "json": None}
    if fmt not in writers:
        raise ConfigError(f"--format {fmt!r}: choose one of {' | '.join(writers)}")
    from vidsift.core.config import parse_override

    # The preset's speech.mode (subtitles: what index and ask can read for free) is not this
    # command's default: a transcript is asked for, so recognition fills in where no subtitles are.
    chosen = any(parse_override(text)[0] == ["speech", "mode"] for text in overrides or [])
    cfg = resolve_config(config, overrides, **{"index.dir": index_dir, "speech.mode": speech})
    if cfg.speech.mode == "none" or (speech is None and not chosen):
        cfg.speech.mode = "auto"
    from vidsift.pipeline.flows.speech import video_transcript

    with Progress(TextColumn("transcribing"), BarColumn(), TextColumn("{task.fields[done]}"),
                  TimeRemainingColumn(), console=err_console,
                  disable=not err_console.is_terminal, transient=True) as bar:  # as in ask
        task = bar.add_task("", total=None, done="")

        def progress(done: float, total: float) -> None:
            bar.update(task, completed=done, total=total or None,
                       done=f"{done:.0f}/{total:.0f} s" if total else f"{done:.0f} s")

        transcript = video_transcript(video, cfg, progress=progress)
    if cfg.speech.mode == "subtitles" and not transcript.sources:  # say why the output is empty
        transcript.warnings.append(f"{video}: no text subtitle track and no sidecar subtitle file")
    for warning in transcript.warnings:
        err_console.print(f"[yellow]note:[/] {warning}", highlight=False)
    if fmt == "json":
        text = json.dumps({"video": video, **transcript.to_dict()}, indent=2, ensure_ascii=False) + "\n"
    else:
        from vidsift.pipeline.flows import subtitles

        cues = [subtitles.Cue(s.start, s.end, s.text) for s in transcript.segments]
        text = getattr(subtitles, writers[fmt])(cues)
    if out:
        from vidsift.core.files import write_atomic

        write_atomic(out, text)
        err_console.print(f"{len(transcript.segments)} segments from "
                          f"{', '.join(transcript.sources) or 'nothing'} -> {out}", highlight=False)
    else:
        sys.stdout.write(text)


@app.command("export")
def export_command(
    video: Annotated[str, typer.Argument(help="Video file.")],
    start: Annotated[str, typer.Option("--start", help="Clip start: seconds, M:SS or H:MM:SS.")],
    end: Annotated[str, typer.Option("--end", help="Clip end: seconds, M:SS or H:MM:SS.")],
    out: Annotated[str, typer.Option("--out", "-o", help="The MP4 to write.")],
    fast: Annotated[bool, typer.Option(
        "--fast", help="Copy the streams, no re-encode: from the keyframe before --start.")] = False,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a moment of a video as an MP4: frame-exact (re-encoded), or --fast (stream copy from
    the keyframe before the start). At most export.max_s seconds."""
    from vidsift.pipeline.flows.export import export_clip, parse_time

    cfg = resolve_config(config, overrides)
    clip = export_clip(video, parse_time(start, "--start"), parse_time(end, "--end"), out,
                       cfg.export, fast=fast)
    if as_json:
        print_json(clip.to_dict())
        return
    how = (f"stream copy from the keyframe at {clip.start:.3f} s, "
           f"{clip.asked_start - clip.start:.3f} s before --start" if fast else "re-encoded")
    console.print(f"{clip.out}: {clip.start:.3f}-{clip.end:.3f} s of {video} ({clip.frames} "
                  f"frames, {clip.duration:.3f} s, {how}"
                  f"{'' if clip.audio else ', no audio'}) in {clip.seconds:.1f} s", highlight=False)


@app.command("probe")
def probe_command(
    video: Annotated[str, typer.Argument(help="Video file.")],
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a video's container facts: duration, rates, frames, size, rotation, keyframes."""
    import dataclasses

    from rich.table import Table

    from vidsift.core.probe import probe

    cfg = resolve_config(config, overrides)
    info = probe(video, max_pixels=cfg.decode.max_pixels)
    facts = dataclasses.asdict(info)
    if as_json:
        print_json(facts)
        return
    keyframes = facts.pop("keyframe_times")
    table = Table(show_header=False)
    for key, value in facts.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    gaps = [b - a for a, b in zip(keyframes, keyframes[1:])]
    table.add_row("keyframes", f"{len(keyframes)}" + (f" (max gap {max(gaps):.2f} s)" if gaps else ""))
    console.print(table)


@app.command("sample")
def sample_command(
    video: Annotated[str, typer.Argument(help="Video file.")],
    fps: Annotated[float, typer.Option("--fps", help="Frames per second to sample.")] = 1.0,
    max_side: Annotated[Optional[int], typer.Option("--max-side", help="Longest side, px.")] = None,
    out: Annotated[Optional[str], typer.Option("--out", help="Directory to save JPEGs in.")] = None,
    config: ConfigOpt = "default",
    overrides: SetOpt = None,
) -> None:
    """Decode frames at a fixed rate (config decode.backend) and optionally save them as JPEGs."""
    import time
    from pathlib import Path

    from vidsift.workers.decode import get_decoder

    cfg = resolve_config(config, overrides)
    decoder = get_decoder(cfg.decode.backend, threads=cfg.decode.threads, max_pixels=cfg.decode.max_pixels)
    started = time.perf_counter()
    frames = decoder.sample(video, fps, max_side=max_side if max_side else cfg.decode.coarse_max_side)
    elapsed = time.perf_counter() - started
    if out:
        from PIL import Image

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for frame in frames:
            Image.fromarray(frame.image).save(folder / f"frame_{frame.index:06d}_{frame.pts:010.3f}.jpg", quality=90)
    size = f"{frames[0].width}x{frames[0].height}" if frames else "-"
    console.print(
        f"{len(frames)} frames ({size}) with {decoder.name} in {elapsed:.2f} s"
        + (f", saved to {out}" if out else "")
    )


def main() -> None:
    """The `vidsift` console script."""
    app()


if __name__ == "__main__":
    main()
