"""``rnnkit tune``: Optuna search over a recipe's keys; best recipe, refit, test metrics, plots."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from rnnkit.cli._common import fail, peek_task, resolve_configs

USAGE = """rnnkit tune --config RECIPE.yaml [--space SPACE.yaml] [--trials N] [--timeout S]
            [--cv K] [--storage URL | journal:PATH] [--study NAME] [--root DIR]
            [--pruner median|hyperband|none]
            [--search-only] [--no-compare] [--trial-ensemble one|full]
            [--section.key value ...]

  Searches the recipe's keys with Optuna's TPE sampler; the objective is the best value of the
  monitored validation metric (run.monitor, or the task's default; maximised or minimised as
  run.monitor_mode says, as for checkpoints), on the validation split or
  averaged over --cv K folds of the training + validation splits. The test split is read only
  after the search, to score the refitted best recipe (and the untuned recipe beside it).
  Without --space the task family's default space is searched (written to ROOT/space.yaml).
  The study (default name tune-RECIPE) is stored in ROOT/study.db unless --storage; rerunning
  the command continues it, and --trials counts every finished trial of the study. Several
  workers share one study with --storage journal:PATH (or an RDB URL) and --search-only; one
  final run without --search-only writes best.yaml, the refit, trials.csv, report.json and the
  plots. A recipe with model.ensemble K: each trial fits one member (the single model's
  hyperparameters, K times cheaper) unless --trial-ensemble full (all K, averaged); the refit
  fits all K. See docs/tuning.md.
"""


def _options(args: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="rnnkit tune", add_help=False, allow_abbrev=False, exit_on_error=False
    )
    parser.add_argument("--space")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--timeout", type=float)
    parser.add_argument("--cv", type=int, default=0)
    parser.add_argument("--storage")
    parser.add_argument("--study")
    parser.add_argument("--root")
    parser.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median")
    parser.add_argument("--search-only", action="store_true")
    parser.add_argument("--no-compare", action="store_true")
    parser.add_argument("--trial-ensemble", choices=("one", "full"), default="one")
    return parser.parse_known_args(args)


def _recipe_stem(args: list[str]) -> str:
    """The name of the (last) ``--config`` file: a study per recipe by default."""
    stem = "recipe"
    for i, a in enumerate(args):
        if a == "--config" and i + 1 < len(args):
            stem = Path(args[i + 1]).stem
        elif a.startswith("--config="):
            stem = Path(a.split("=", 1)[1]).stem
    return stem


def main(args: Sequence[str]) -> int:
    if not args or any(a in ("-h", "--help") for a in args):
        print(USAGE)
        return 0 if args else 2
    from rnnkit.train.experiment_io import parse_experiment
    from rnnkit.train.specs import EXPERIMENTS
    from rnnkit.tune.search import TuneOptions, tune
    from rnnkit.tune.space import default_space, load_space

    opts, rest = _options(resolve_configs(args))
    if "--config" not in rest and not any(a.startswith("--config=") for a in rest):
        return fail("rnnkit tune needs --config RECIPE.yaml")
    task = peek_task(rest)
    if task not in EXPERIMENTS:
        return fail(f"task must be one of {', '.join(EXPERIMENTS)}; got {task!r}")
    base = parse_experiment(EXPERIMENTS[task], rest, prog="rnnkit tune")
    space = load_space(opts.space) if opts.space else default_space(task)
    options = TuneOptions(
        trials=opts.trials,
        timeout=opts.timeout,
        cv=opts.cv,
        storage=opts.storage,
        study=opts.study or f"tune-{_recipe_stem(rest)}",
        root=opts.root,
        pruner=opts.pruner,
        search_only=opts.search_only,
        compare=not opts.no_compare,
        trial_ensemble=opts.trial_ensemble,
    )
    result = tune(base, space, options)
    if not result.report:
        value = "none completed" if result.best_value is None else f"{result.best_value:.6g}"
        print(f"study {result.study_name}: best so far {value}; outputs: {result.root}")
        return 0
    r = result.report
    print(f"study {r['study']} ({r['storage']}): trials {r['trials']}")
    best = r["best"]
    print(f"best trial {best['number']}: {r['metric']} {best['value']:.6g} ({r['objective']})")
    for key, value in best["params"].items():
        print(f"  {key}: {value}")
    for name, run in r["runs"].items():
        test = ", ".join(f"{k} {v:.4g}" for k, v in run["test"].items())
        print(f"{name:<7} test: {test}")
        if run.get("verdict"):
            print(f"{'':<7} {run['verdict']}")
    print(f"best recipe: {result.root / 'best.yaml'}; report: {result.root / 'report.json'}")
    return 0
