"""The ``rnnkit`` command: one module per subcommand, imported only when that command runs.

``rnnkit fit --config configs/NAME.yaml [--section.key value ...]`` follows LightningCLI's
conventions: a YAML recipe, dotted overrides, ``--print_config`` to see every value a run would use.
The recipe's ``task`` picks the experiment (language_model, classification, tagging, forecasting,
seq2seq); the other commands read a finished run directory (``--run DIR``).

A command is ``"module:function"`` in `COMMANDS`; the function takes the arguments after the
command's name and returns the exit status. This module imports nothing heavy, so ``rnnkit --help``
and argument errors never wait for torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# name -> (module:function under rnnkit.cli, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("fit:main", "train an experiment from a YAML recipe; writes a run directory"),
    "tune": (
        "tune:main",
        "search a recipe's hyperparameters with Optuna; best recipe, refit, test",
    ),
    "validate": ("evaluate:validate", "evaluate a finished run's model on its validation split"),
    "test": ("evaluate:test", "evaluate a finished run's model on its test split"),
    "predict": (
        "predict:predict",
        "score text (LM), or predict a new file (--input) or the test split into a CSV",
    ),
    "generate": ("predict:generate", "continue a prompt with a trained language model"),
    "forecast": ("predict:forecast", "forecast the next N steps with a trained forecaster"),
    "backtest": ("backtest:main", "walk-forward backtest of a forecasting recipe (--origins K)"),
    "datasets": ("datasets:main", "list the data sets of the offline registry"),
    "diagnose": (
        "diagnose:main",
        "gradient flow through time, gate saturation and Jacobian spectra of a run",
    ),
    "export": ("export:main", "export a run's model to ONNX with its state as inputs and outputs"),
    "serve": ("serve:main", "serve a run (or an exported model) over HTTP with streaming sessions"),
    "app": (
        "app:main",
        "run an application end to end on real data against its baselines (configs/APP.yaml)",
    ),
}


def usage() -> str:
    lines = [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    head = "usage: rnnkit {" + ",".join(COMMANDS) + "} [options]   (rnnkit COMMAND --help)"
    return head + "\n\n" + "\n".join(lines)


def _warning_line(
    message: Warning | str, category: type[Warning], *args: object, **kwargs: object
) -> str:
    """Warnings as ``rnnkit: warning: ...`` lines, without the source line Python adds."""
    return f"rnnkit: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnnkit`` command.

    Errors a user can act on are one line on stderr: a ``ValueError`` (bad input, config,
    damaged file) exits 2; an error carrying an ``exit_code`` (a diverged run) exits with it.
    """
    import warnings

    formatwarning, warnings.formatwarning = warnings.formatwarning, _warning_line
    try:
        return _run(argv)
    finally:
        warnings.formatwarning = formatwarning


def _run(argv: Sequence[str] | None) -> int:
    from rnnkit.cli._common import fail

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        return fail(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    module_name, function = COMMANDS[command][0].split(":")
    run = getattr(importlib.import_module(f"rnnkit.cli.{module_name}"), function)
    try:
        return int(run(rest))
    except BrokenPipeError:  # `rnnkit fit --help | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, argparse.ArgumentError) as err:
        return fail(str(err))
    except Exception as err:
        code = getattr(err, "exit_code", None)
        if code is None:
            raise
        fail(str(err))
        return int(code)


__all__ = ["COMMANDS", "main"]
