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

from vidsift.pipeline.config import Config, load_config
from vidsift.pipeline.errors import VidsiftError

app = typer.Typer(
    name="vidsift",
    help="Long-video understanding: ask questions, caption archives, search clips.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[
    str, typer.Option("--config", "-c", help="Preset (default, gpu, cluster) or a YAML file.")
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override a config field: section.field=value (repeatable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.callback()
def root() -> None:
    """Long-video understanding: ask questions, caption archives, search clips."""


def resolve_config(config: str, overrides: list[str] | None, **flags: object) -> Config:
    """Load the config, then apply --set overrides, then the command's own flags
    (given as 'section.field' -> value; None means the flag was not given)."""
    extra = [f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None]
    return load_config(config, [*(overrides or []), *extra])


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def print_json(payload: object) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


@app.command("config")
def show_config(config: ConfigOpt = "default", overrides: SetOpt = None) -> None:
    """Print the resolved configuration (preset + overrides) as YAML."""
    import yaml

    try:
        cfg = resolve_config(config, overrides)
    except VidsiftError as exc:
        raise fail(str(exc)) from None
    sys.stdout.write(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


def main() -> None:
    try:
        app()
    except VidsiftError as exc:  # typed errors print as one clear line, never a traceback
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
