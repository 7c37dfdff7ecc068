"""The ``rnnkit`` command: fit, validate, test, predict, generate, forecast, datasets, diagnose,
app.

``rnnkit fit --config configs/NAME.yaml [--section.key value ...]`` follows LightningCLI's
conventions: a YAML recipe, dotted overrides, ``--print_config`` to see every value a run would use.
The recipe's ``task`` picks the experiment (language_model, classification, tagging, forecasting,
seq2seq); the other commands read a finished run directory (``--run DIR``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

COMMANDS = {
    "fit": "train an experiment from a YAML recipe; writes a run directory",
    "validate": "evaluate a finished run's model on its validation split",
    "test": "evaluate a finished run's model on its test split",
    "predict": "score text (language model) or predict a run's test split into a CSV",
    "generate": "continue a prompt with a trained language model",
    "forecast": "forecast the next N steps with a trained forecaster",
    "datasets": "list the data sets of the offline registry",
    "diagnose": "gradient flow through time, gate saturation and Jacobian spectra of a run",
    "app": "run an application end to end on real data against its baselines (configs/APP.yaml)",
}

USAGE = (
    "usage: rnnkit {"
    + ",".join(COMMANDS)
    + "} [options]   (rnnkit COMMAND --help)\n\n"
    + "\n".join(f"  {name:<10} {text}" for name, text in COMMANDS.items())
)


def _fail(message: str) -> int:
    print(f"rnnkit: error: {message}", file=sys.stderr)
    return 2


def _peek_task(args: Sequence[str]) -> str:
    """The experiment's task from ``--task`` or the (last) ``--config`` file; default LM."""
    task = None
    it = iter(range(len(args)))
    for i in it:
        a = args[i]
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


def cmd_fit(args: Sequence[str]) -> int:
    from rnnkit.train.experiment_io import parse_experiment
    from rnnkit.train.fit import fit
    from rnnkit.train.specs import EXPERIMENTS

    args = list(args)
    resume = None
    if "--resume" in args:
        i = args.index("--resume")
        if i + 1 >= len(args):
            return _fail("--resume needs a run directory or a .ckpt file")
        resume = args[i + 1]
        del args[i : i + 2]
    task = _peek_task(args)
    if task not in EXPERIMENTS:
        return _fail(f"task must be one of {', '.join(EXPERIMENTS)}; got {task!r}")
    if any(a in ("-h", "--help") for a in args):
        print(
            f"rnnkit fit --config RECIPE.yaml [--section.key value ...] [--resume RUN_DIR]\n"
            f"  task {task!r} (set `task:` in the recipe or --task to see another's options)\n"
            "  --resume RUN_DIR     continue RUN_DIR/checkpoints/last.ckpt to the same result\n"
        )
    experiment = parse_experiment(EXPERIMENTS[task], args, prog="rnnkit fit")
    result = fit(experiment, resume=resume)
    if result.summary:
        m = result.metrics
        keys = [
            k
            for k in (
                "val_bpc",
                "baseline_unigram_bpc",
                "val_accuracy",
                "val_f1",
                "val_rmse",
                "val_mase",
                "val_exact_match",
                "val_loss",
            )
            if k in m
        ]
        shown = ", ".join(f"{k} {m[k]:.4g}" for k in keys)
        print(f"run directory: {result.run_dir}  ({shown}; {result.summary['wall_time_s']:.0f} s)")
    return 0


def _run_parser(command: str, description: str) -> Any:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog=f"rnnkit {command}", description=description, exit_on_error=False)
    parser.add_argument(
        "--run", type=str, required=True, help="a run directory written by rnnkit fit"
    )
    return parser


def cmd_evaluate(command: str, args: Sequence[str]) -> int:
    from rnnkit.train.fit import evaluate

    parser = _run_parser(command, COMMANDS[command])
    ns = parser.parse_args(list(args))
    metrics = evaluate(ns.run, stage=command)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_generate(args: Sequence[str]) -> int:
    from rnnkit.models import LanguageModel
    from rnnkit.train.lm_task import sample_text
    from rnnkit.train.predict import load_run

    parser = _run_parser("generate", COMMANDS["generate"])
    parser.add_argument("--prompt", type=str, default="\n", help="text that primes the state")
    parser.add_argument("--chars", type=int, default=300, help="characters to generate")
    parser.add_argument("--strategy", type=Literal["sample", "greedy", "beam"], default="sample")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top_k", type=int | None, default=None)
    parser.add_argument("--top_p", type=float | None, default=None)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same text)")
    ns = parser.parse_args(list(args))
    loaded = load_run(ns.run)
    if not isinstance(loaded.model, LanguageModel) or loaded.vocab is None:
        return _fail(f"{ns.run} holds a {loaded.task} model; generate needs a language model run")
    text = sample_text(
        loaded.model,
        loaded.vocab,
        prompt=ns.prompt,
        chars=ns.chars,
        temperature=ns.temperature,
        top_k=ns.top_k,
        top_p=ns.top_p,
        strategy=ns.strategy,
        seed=ns.seed,
    )
    print(ns.prompt + text)
    return 0


def cmd_predict(args: Sequence[str]) -> int:
    from rnnkit.train.predict import predict_run

    parser = _run_parser("predict", COMMANDS["predict"])
    parser.add_argument("--text", type=str | None, default=None, help="LM: text to score (bpc)")
    parser.add_argument("--out", type=str | None, default=None, help="CSV path (default: run dir)")
    ns = parser.parse_args(list(args))
    print(json.dumps(predict_run(ns.run, text=ns.text, out=ns.out), indent=2))
    return 0


def cmd_forecast(args: Sequence[str]) -> int:
    from rnnkit.train.predict import forecast_run

    parser = _run_parser("forecast", COMMANDS["forecast"])
    parser.add_argument("--horizon", type=int, required=True, help="steps ahead to forecast")
    ns = parser.parse_args(list(args))
    print(json.dumps(forecast_run(ns.run, horizon=ns.horizon), indent=2))
    return 0


def cmd_datasets(args: Sequence[str]) -> int:
    from rnnkit.data import list_datasets

    if any(a in ("-h", "--help") for a in args):
        print("rnnkit datasets: " + COMMANDS["datasets"])
        return 0
    for info in list_datasets():
        print(f"{info.name:<20} {info.task:<15} {info.size}")
        print(f"{'':<20} {info.description}  [{info.source}; {info.licence}]")
    return 0


def cmd_app(args: Sequence[str]) -> int:
    from rnnkit.apps import APPS, run_app

    p = argparse.ArgumentParser(prog="rnnkit app", description=COMMANDS["app"])
    p.add_argument("name", choices=sorted(APPS), help="the application")
    p.add_argument("--config", help="recipe YAML (default: configs/NAME.yaml)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one run per seed")
    p.add_argument("--out", help="output folder (default: runs/apps/NAME)")
    p.add_argument("--quick", action="store_true", help="the recipe's scaled-down CI version")
    ns = p.parse_args(list(args))
    records = run_app(ns.name, config=ns.config, seeds=ns.seeds, out_dir=ns.out, quick=ns.quick)
    for r in records:
        arrow = "higher" if r["higher_is_better"] else "lower"
        print(
            f"{r['dataset']:<18} {r['model']:<26} {r['metric']} ({arrow} is better): "
            f"{r['value']:.4g} ± {r['spread']:.2g}  vs {r['baseline']} {r['baseline_value']:.4g}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnnkit`` command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        return _fail(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    try:
        if command == "fit":
            return cmd_fit(rest)
        if command in ("validate", "test"):
            return cmd_evaluate(command, rest)
        if command == "generate":
            return cmd_generate(rest)
        if command == "predict":
            return cmd_predict(rest)
        if command == "forecast":
            return cmd_forecast(rest)
        if command == "diagnose":
            from rnnkit.diagnostics.cli import diagnose_main

            return diagnose_main(rest)
        if command == "app":
            return cmd_app(rest)
        return cmd_datasets(rest)
    except (ValueError, argparse.ArgumentError) as err:
        return _fail(str(err))


if __name__ == "__main__":
    raise SystemExit(main())
