"""What `rnnkit tune` leaves after the search: trials.csv, plots, best.yaml, refits, the report.

Everything here runs after the last trial; it is the only part of ``rnnkit tune`` that reads the
test split (through `rnnkit.train.evaluate` on the refitted runs).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from rnnkit.integrity import atomic_write_text
from rnnkit.tune.space import with_params


def trials_csv(study: Any) -> str:
    """One row per trial: number, state, value, seconds, each parameter, fold values, best step.

    ``value`` of a pruned trial is the last value it reported; ``best_step`` is the optimiser step
    of the best validation (one per fold with --cv).
    """
    keys = sorted({k for t in study.trials for k in t.params})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["number", "state", "value", "seconds", *keys, "fold_values", "best_step"])
    for t in study.trials:
        seconds = (
            f"{(t.datetime_complete - t.datetime_start).total_seconds():.2f}"
            if t.datetime_complete and t.datetime_start
            else ""
        )
        value = "" if t.value is None or not math.isfinite(t.value) else repr(t.value)
        folds = " ".join(f"{v:.6g}" for v in t.user_attrs.get("fold_values", []))
        writer.writerow(
            [
                t.number,
                t.state.name.lower(),
                value,
                seconds,
                *(t.params.get(k, "") for k in keys),
                folds,
                t.user_attrs.get("best_step", "")
                or " ".join(str(s) for s in t.user_attrs.get("fold_best_steps", [])),
            ]
        )
    return out.getvalue()


def write_plots(study: Any, root: Path) -> dict[str, str]:
    """history.png, importances.png, parallel.png; a plot Optuna cannot draw yet is skipped.

    Returns the skipped plots with the reason (importances need two finished trials that differ).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    skipped: dict[str, str] = {}
    plots: dict[str, Callable[[Any], Any]] = {
        "history": ovm.plot_optimization_history,
        "importances": ovm.plot_param_importances,
        "parallel": ovm.plot_parallel_coordinate,
    }
    for name, draw in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ExperimentalWarning on every call
                axes = draw(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as err:
            skipped[name] = str(err) or type(err).__name__
            plt.close("all")
            continue
        fig = getattr(axes, "figure", None) or plt.gcf()
        fig.set_size_inches(10, 5)
        fig.tight_layout()
        tmp = root / f".{name}.tmp.png"
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, root / f"{name}.png")
        plt.close(fig)
    return skipped


def recipe_yaml(experiment: Any, *, header: str) -> str:
    """The experiment as a recipe (``task`` first), after a comment header."""
    data = json.loads(json.dumps(asdict(experiment)))
    ordered = {"task": data.pop("task"), **data}
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + yaml.safe_dump(ordered, sort_keys=False)


def _finite(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)
    }


def write_outputs(
    study: Any,
    base: Any,
    best: Any,
    *,
    root: Path,
    metric: str,
    options: Any,
    storage: str,
    refit: Callable[[Any, Path, str], dict[str, Any]],
) -> dict[str, Any]:
    """Write trials.csv, the plots and best.yaml; refit best (and the recipe); the report."""
    atomic_write_text(root / "trials.csv", trials_csv(study))
    skipped = write_plots(study, root)
    values = dict(best.user_attrs.get("values", best.params))  # what the best trial ran
    tuned = with_params(base, values)
    where = (
        f"{options.cv}-fold cross-validation on train + validation"
        if options.cv
        else "validation split"
    )
    refit_members = int(getattr(tuned.model, "ensemble", 1))
    trial_members = int(best.user_attrs.get("members", 1))
    if refit_members > 1 or trial_members > 1:  # what a trial's score is of, beside the refit's
        where += (
            f"; each trial fitted {trial_members} member(s) (--trial-ensemble "
            f"{options.trial_ensemble}), the refit fits model.ensemble = {refit_members}"
        )
    header = (
        f"Tuned by rnnkit tune: study {study.study_name!r}, trial {best.number}, "
        f"{metric} {best.value:.6g} ({where}).\n"
        f"Reproduce the refit: rnnkit fit --config {root / 'best.yaml'}"
    )
    atomic_write_text(root / "best.yaml", recipe_yaml(tuned, header=header))
    runs = {"tuned": refit(tuned, root, "refit")}
    if options.compare:
        runs["recipe"] = refit(base, root, "recipe")
    # the baselines depend on the data only, so the tuned run's stand for both refits
    baselines = {name: _finite(scores) for name, scores in runs["tuned"]["baselines"].items()}
    recipe_trial = next((t for t in study.trials if t.user_attrs.get("recipe")), None)
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    return {
        "study": study.study_name,
        "storage": storage,
        "metric": metric,
        "direction": study.direction.name.lower(),
        "objective": where,
        "trials": counts,
        "best": {
            "number": best.number,
            "value": best.value,
            "params": values,
            "fold_values": best.user_attrs.get("fold_values"),
        },
        "recipe_trial": None
        if recipe_trial is None
        else {
            "number": recipe_trial.number,
            "state": recipe_trial.state.name.lower(),
            "value": recipe_trial.value,
            "params": dict(recipe_trial.params),
        },
        "refit": "train split, validation split choosing the checkpoint (as rnnkit fit does)",
        "ensemble": {
            "trial_ensemble": options.trial_ensemble,
            "trial_members": trial_members,
            "refit_members": refit_members,
        },
        "runs": {
            name: {
                "run_dir": run["run_dir"],
                "val": _finite({k: v for k, v in run["fit"].items() if k.startswith("val_")}),
                "test": _finite(run["test"]),
                "verdict": run["verdict"],
            }
            for name, run in runs.items()
        },
        "baselines": baselines,
        "files": {
            "best_recipe": "best.yaml",
            "trials": "trials.csv",
            "space": "space.yaml",
            "plots": [
                f"{n}.png" for n in ("history", "importances", "parallel") if n not in skipped
            ],
        },
        "plots_skipped": skipped,
    }
