"""``rnnkit backtest``: walk-forward evaluation of a forecasting recipe on the user's series."""

from __future__ import annotations

from collections.abc import Sequence

from rnnkit.cli._common import fail, peek_task


def _take(args: list[str], flag: str) -> str | None:
    if flag not in args:
        return None
    i = args.index(flag)
    if i + 1 >= len(args):
        raise ValueError(f"{flag} needs a value")
    value = args[i + 1]
    del args[i : i + 2]
    return value


def _registry(experiment: object, origins: int, refit: bool) -> int:
    """A registry series (``data.source``): `rnnkit.evaluate.backtest`, one series, no baselines."""
    from rnnkit.evaluate.backtest import backtest

    result = backtest(experiment, origins=origins, refit=refit)
    for origin, m in zip(result.origins, result.metrics, strict=True):
        print(f"origin at step {origin.train_end}: model mae {m['mae']:.4g}, rmse {m['rmse']:.4g}")
    print(f"mean: mae {result.mean['mae']:.4g}, rmse {result.mean['rmse']:.4g} (scaled units)")
    return 0


def main(args: Sequence[str]) -> int:
    from rnnkit.evaluate.file_backtest import backtest
    from rnnkit.train.experiment_io import parse_experiment
    from rnnkit.train.specs import EXPERIMENTS

    args = list(args)
    if any(a in ("-h", "--help") for a in args):
        print(
            "rnnkit backtest --config RECIPE.yaml --origins K [--step S] [--refit] "
            "[--section.key value ...]\n"
            "  K forecast origins ending at the end of every series, S steps apart (default: the\n"
            "  horizon); --refit retrains before every origin (default: train once, before the\n"
            "  first). Writes RUN_ROOT/NAME/backtest.json with the baselines and the verdict."
        )
        return 0
    origins = _take(args, "--origins")
    step = _take(args, "--step")
    refit = "--refit" in args
    args = [a for a in args if a != "--refit"]
    if origins is None or not origins.isdigit():
        return fail("rnnkit backtest needs --origins K (a whole number)")
    if step is not None and not step.isdigit():
        return fail(f"--step must be a whole number, got {step!r}")
    task = peek_task(args)
    if task != "forecasting":
        return fail(f"rnnkit backtest needs a forecasting recipe; this one is {task!r}")
    experiment = parse_experiment(EXPERIMENTS[task], args, prog="rnnkit backtest")
    if experiment.data.path is None:
        if step is not None:
            return fail("--step applies to recipes with data.path (your files)")
        return _registry(experiment, int(origins), refit)
    report = backtest(
        experiment, origins=int(origins), refit=refit, step=int(step) if step else None
    )
    for fold in report["folds"]:
        base = ", ".join(f"{k} {v['mae']:.4g}" for k, v in fold["baselines"].items())
        print(f"origin {fold['origin']}: model mae {fold['model']['mae']:.4g} ({base})")
    print(f"backtest: {report['file']}")
    print(f"verdict: {report['verdict']['line']}")
    return 0
