"""``rnnkit fit``: train an experiment from a YAML recipe into a run directory."""

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


def main(args: Sequence[str]) -> int:
    from rnnkit.evaluate.reference import fit_and_judge
    from rnnkit.train.experiment_io import parse_experiment
    from rnnkit.train.specs import EXPERIMENTS

    args = resolve_configs(args)
    resume = None
    if "--resume" in args:
        i = args.index("--resume")
        if i + 1 >= len(args):
            return fail("--resume needs a run directory or a .ckpt file")
        resume = args[i + 1]
        del args[i : i + 2]
    task = peek_task(args)
    if task not in EXPERIMENTS:
        return fail(f"task must be one of {', '.join(EXPERIMENTS)}; got {task!r}")
    if any(a in ("-h", "--help") for a in args):
        print(
            f"rnnkit fit --config RECIPE.yaml [--section.key value ...] [--resume RUN_DIR]\n"
            f"  task {task!r} (set `task:` in the recipe or --task to see another's options)\n"
            "  --resume RUN_DIR     continue RUN_DIR/checkpoints/last.ckpt to the same result\n"
        )
    experiment = parse_experiment(EXPERIMENTS[task], args, prog="rnnkit fit")
    result = fit_and_judge(experiment, resume=resume)
    if result.summary:
        m = result.metrics
        shown = ", ".join(f"{k} {m[k]:.4g}" for k in SHOWN if k in m)
        print(f"run directory: {result.run_dir}  ({shown}; {result.summary['wall_time_s']:.0f} s)")
        if "verdict" in result.summary:
            print(f"verdict: {result.summary['verdict']['line']}")
    return 0
