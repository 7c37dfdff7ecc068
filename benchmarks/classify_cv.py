"""Choose the sequence-classification selection defaults by cross-validation on TRAIN splits only.

    python benchmarks/classify_cv.py             # gunpoint, IPD, basic_motions; 3 folds
    python benchmarks/classify_cv.py --datasets gunpoint --folds 3 --settings old tiebreak

Each data set's official training split is cut into K stratified folds; per fold the app's own
protocol runs on the other K-1 folds (a stratified validation split carved from them picks the
checkpoint and drives early stopping) and the held-out fold is scored. The official test split
is never loaded. Each setting is a set of recipe overrides (``SETTINGS``); the mean held-out
accuracy per setting goes to ``benchmarks/results/classify_cv.json`` with the machine load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import write_json  # noqa: E402

# overrides of the recipe's ``experiment:`` section, per setting (explicit, so they keep their
# meaning whatever the recipe's defaults are)
SETTINGS: dict[str, dict[str, Any]] = {
    # the recipe before: the first maximum of val_accuracy, early stopping from the first epoch
    "old": {"run": {"monitor_tiebreak": None}, "early_stopping": {"min_steps": 0}},
    "tiebreak": {"run": {"monitor_tiebreak": "val_loss"}, "early_stopping": {"min_steps": 0}},
    "tiebreak+min100": {"early_stopping": {"min_steps": 100}},
    "tiebreak+noES": {"early_stopping": {"enabled": False, "min_steps": 0}},
    "tiebreak+min100+noES": {"early_stopping": {"enabled": False, "min_steps": 100}},
    "tiebreak+min100+ensemble3": {"early_stopping": {"min_steps": 100}, "model": {"ensemble": 3}},
    # candidates around the recipe above (tiebreak, min 100 steps, 3-seed ensemble)
    "ensemble5": {"early_stopping": {"min_steps": 100}, "model": {"ensemble": 5}},
    "ensemble3+h32": {
        "early_stopping": {"min_steps": 100},
        "model": {"ensemble": 3, "hidden_size": 32},
    },
    "ensemble3+d0.3": {
        "early_stopping": {"min_steps": 100},
        "model": {"ensemble": 3, "dropout": 0.3},
    },
}


def main(argv: list[str] | None = None) -> int:
    import torch
    from sklearn.model_selection import StratifiedKFold

    from rnnkit.apps._common import app_config, app_settings, merge
    from rnnkit.apps.sequence_classification import (
        APP,
        Settings,
        _frame,
        _subset,
        experiment,
        run_seed,
    )
    from rnnkit.data import load

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--datasets", nargs="*", default=["gunpoint", "italy_power_demand", "basic_motions"]
    )
    p.add_argument("--settings", nargs="*", default=list(SETTINGS)[:5], choices=list(SETTINGS))
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "runs" / "classify_cv"))
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "classify_cv.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    base = app_config(APP)
    settings = app_settings(Settings, base, app=APP)
    results: dict[str, Any] = {
        "protocol": f"{args.folds}-fold stratified CV on the official TRAIN split only; per fold "
        f"the app's val_fraction={settings.val_fraction} carve of the K-1 training folds selects",
        "seed": args.seed,
        "load_before": os.getloadavg(),
        "datasets": {},
    }
    for name in args.datasets:
        train = load(name).train  # standardisation fitted on the training split; test unused
        labels = np.asarray(train.labels)
        folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
        per: dict[str, Any] = {}
        for setting in args.settings:
            config = merge(base, {"experiment": SETTINGS[setting]})
            accs, walls = [], []
            for k, (tr, te) in enumerate(folds.split(np.zeros(len(labels)), labels)):
                part_train = _subset(train, tr, f"{name} cv train")
                splits = SimpleNamespace(
                    train=part_train,
                    test=_subset(train, te, f"{name} cv held"),
                    meta=load(name).meta,
                )
                frame = _frame(settings, name, longest=max(part_train.lengths))
                root = Path(args.out) / setting
                exp = experiment(config, settings, f"{name}", seed=args.seed, root=root)
                exp.run.name = f"{name}-fold{k}"
                t0 = time.perf_counter()
                row = run_seed(name, splits, exp, frame=frame, val_fraction=settings.val_fraction)
                walls.append(time.perf_counter() - t0)
                accs.append(float(row["accuracy"]))
                print(f"{name} {setting} fold {k}: {accs[-1]:.3f} ({walls[-1]:.0f} s)", flush=True)
            per[setting] = {
                "fold_accuracy": accs,
                "mean": float(np.mean(accs)),
                "wall_s": [round(w, 1) for w in walls],
            }
            print(f"{name} {setting}: CV accuracy {per[setting]['mean']:.3f}", flush=True)
        results["datasets"][name] = per
        results["load_after"] = os.getloadavg()
        write_json(Path(args.json), results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
