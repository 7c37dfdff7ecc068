"""What more than one command needs: the error line, the task of a recipe, the --run parser."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml


def fail(message: str) -> int:
    """Print ``rnnkit: error: message`` on stderr; the exit status of a usage error."""
    print(f"rnnkit: error: {message}", file=sys.stderr)
    return 2


def resolve_configs(args: Sequence[str]) -> list[str]:
    """``args`` with each ``--config`` value made a file: a path, or a shipped recipe's name."""
    from rnnkit.recipes import recipe_path

    out = list(args)
    for i, a in enumerate(out):
        if a == "--config" and i + 1 < len(out):
            out[i + 1] = str(recipe_path(out[i + 1]))
        elif a.startswith("--config="):
            out[i] = "--config=" + str(recipe_path(a.split("=", 1)[1]))
    return out


def peek_task(args: Sequence[str]) -> str:
    """The experiment's task from ``--task`` or the (last) ``--config`` file; default LM."""
    task = None
    for i, a in enumerate(args):
        value = None
        if a in ("--task", "--config") and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(("--task=", "--config=")):
            value = a.split("=", 1)[1]
        if value is None:
            continue
        if a.startswith("--task"):
            task = value
        else:
            path = Path(value)
            if not path.is_file():
                raise ValueError(f"config file {path} does not exist")
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(data, dict):
                raise ValueError(f"config file {path} must hold a YAML mapping of sections")
            if "app" in data:
                raise ValueError(
                    f"{path} is an application recipe; run it with `rnnkit app {data['app']}`"
                )
            task = data.get("task", task)
    return task or "language_model"


def run_parser(command: str) -> Any:
    """A jsonargparse parser with the ``--run DIR`` every run-reading command takes."""
    from jsonargparse import ArgumentParser

    from rnnkit.cli import COMMANDS

    parser = ArgumentParser(
        prog=f"rnnkit {command}", description=COMMANDS[command][1], exit_on_error=False
    )
    parser.add_argument(
        "--run", type=str, required=True, help="a run directory written by rnnkit fit"
    )
    return parser
