"""``rnnkit fit``: train an experiment from a YAML recipe into a run directory.

Arguments and the recipe are parsed and checked (every field's rule, in `rnnkit.train.config`)
before torch or Lightning is imported, so a wrong value is reported in well under a second.
``--dry-run`` goes one step further — builds the data and the model and the trainer — and stops
before training.
"""

from __future__ import annotations

from collections.abc import Sequence

from rnnkit.cli._common import fail, peek_task, resolve_configs

# The headline metrics printed after a run, in this order, when the run has them.
SHOWN = (
    "val_bpc",
    "baseline_unigram_bpc",
    "val_accuracy",
    "val_f1",
    "val_rmse",
    "val_mase",
    "val_exact_match",
    "val_loss",
    "test_accuracy",
    "test_mae",
    "test_mase",
    "test_exact_match",
)

USAGE = (
    "rnnkit fit --config RECIPE.yaml [--section.key value ...] [--resume RUN_DIR] [--dry-run]\n"
    "  task {task!r} (set `task:` in the recipe or --task to see another's options)\n"
    "  --resume RUN_DIR     continue RUN_DIR/checkpoints/last.ckpt to the same result\n"
    "  --dry-run            check the config, build data, model and trainer; do not train\n"
)


def _take(args: list[str], flag: str, *, value: bool) -> tuple[bool, str | None]:
    """Remove ``flag`` (and its value) from ``args``; whether it was there, and the value."""
    if flag not in args:
        return False, None
    i = args.index(flag)
    if not value:
        del args[i]
        return True, None
    if i + 1 >= len(args):
        raise ValueError(f"{flag} needs a run directory or a .ckpt file")
    found = args[i + 1]
    del args[i : i + 2]
    return True, found


def main(args: Sequence[str]) -> int:
    from rnnkit.train.experiment_io import help_text
    from rnnkit.train.specs import EXPERIMENTS

    args = resolve_configs(args)
    _, resume = _take(args, "--resume", value=True)
    dry_run, _ = _take(args, "--dry-run", value=False)
    task = peek_task(args)
    if task not in EXPERIMENTS:
        return fail(f"task must be one of {', '.join(EXPERIMENTS)}; got {task!r}")
    if any(a in ("-h", "--help") for a in args):
        print(USAGE.format(task=task))
        print(help_text(EXPERIMENTS[task], args))
        return 0
    from rnnkit.train.experiment_io import parse_experiment

    experiment = parse_experiment(EXPERIMENTS[task], args, prog="rnnkit fit")
    if dry_run:
        from rnnkit.train.dry_run import dry_run as plan

        print(plan(experiment, resume=resume))
        return 0
    from rnnkit.evaluate.reference import judge_run
    from rnnkit.train.trainer import fit

    result = fit(experiment, resume=resume, judge=judge_run)
    if result.summary:
        m = result.metrics
        shown = ", ".join(f"{k} {m[k]:.4g}" for k in SHOWN if k in m)
        print(f"run directory: {result.run_dir}  ({shown}; {result.summary['wall_time_s']:.0f} s)")
        if "verdict" in result.summary:
            print(f"verdict: {result.summary['verdict']['line']}")
    return 0
