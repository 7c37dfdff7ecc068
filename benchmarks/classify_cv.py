"""Choose the sequence-classification selection defaults by cross-validation on TRAIN splits only.

    python benchmarks/classify_cv.py             # gunpoint, IPD, basic_motions; 3 folds
    python benchmarks/classify_cv.py --datasets gunpoint --folds 3 --settings old tiebreak
    python benchmarks/classify_cv.py --study framing   # -> results/classify_cv_framing.json
    python benchmarks/classify_cv.py --table benchmarks/results/classify_cv_framing*.json

Each data set's official training split is cut into K stratified folds; per fold the app's own
protocol runs on the other K-1 folds (a stratified validation split carved from them picks the
checkpoint and drives early stopping) and the held-out fold is scored. The official test split
is never loaded. Each setting is a set of recipe overrides (``SETTINGS``); the mean held-out
accuracy per setting goes to ``benchmarks/results/classify_cv.json`` with the machine load.

``--study framing`` compares framing rules instead (``FRAMING``: the longest training series,
the median, the 90 % quantile, none; `rnnkit.data.framing.frame_size` on each fold's training
rows) on sets with long or variable-length series: GunPoint, BasicMotions, JapaneseVowels, and
PLAID, never seen by the recipes (sktime's bundled file; OSULeaf loads too). Training is the
recipe's model, one member, ``--max_epochs`` (40) and ``--patience`` (10). A rule that gives a fold
the same frame as a rule already run reuses that run (same data, same seed: the same experiment).
"none" runs only where the longest training series has at most ``--none_max_len`` steps (the
budget: step by step, PLAID's 1344 steps cost ~40x the framed run); elsewhere it is recorded as
skipped. ``gunpoint_outlier`` is GunPoint with one training series per fold slowed down 10x (see
``_with_outlier``). ``--table`` prints the markdown table of docs/tuning.md from the JSONs.
"""

from __future__ import annotations

import argparse
import json
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


# framing rules: (frame option, quantile of the training lengths) for `frame_size`, frame_steps 30
FRAMING: dict[str, tuple[Any, float]] = {
    "max": ("auto", 1.0),  # the app's rule before: the longest training series
    "median": ("auto", 0.5),
    "q90": ("auto", 0.9),
    "none": (None, 0.5),
}
FRAMING_SETS = ["plaid", "gunpoint", "gunpoint_outlier", "basic_motions", "japanese_vowels"]
# the recipe's model, one member, a capped budget (the study compares inputs, not training length)
FRAMING_TRAINING: dict[str, Any] = {
    "model": {"ensemble": 1},
    "trainer": {"max_epochs": 40},
    "early_stopping": {"patience": 10, "min_steps": 100},
}
_SKTIME = {"osuleaf": "load_osuleaf", "plaid": "load_plaid"}
# "<set>_outlier": the set with ONE extra training series per fold, a copy of the fold's first
# series slowed down 10x (every step repeated), in the training part only (never held out): what a
# framing rule does when one much longer series arrives in an otherwise unchanged file
OUTLIER_SLOWDOWN = 10


def _with_outlier(part: Any) -> Any:
    """``part`` plus a 10x slowed-down copy of its first series (same label)."""
    from rnnkit.data import SequenceDataset

    x = np.repeat(np.asarray(part.sequences[0]), OUTLIER_SLOWDOWN, axis=0)  # (10 T, C)
    return SequenceDataset([*part.sequences, x], [*part.labels, part.labels[0]], source=part.source)


def _train_split(name: str) -> tuple[Any, dict[str, Any]]:
    """The official training split (test never read) and its meta, for registry and sktime sets."""
    from rnnkit.data import SequenceDataset, load

    if name.endswith("_outlier"):
        return _train_split(name.removesuffix("_outlier"))
    if name not in _SKTIME:
        splits = load(name)
        return splits.train, splits.meta
    import sktime.datasets

    frame, labels = getattr(sktime.datasets, _SKTIME[name])(split="train", return_X_y=True)
    seqs = [
        np.stack([np.asarray(frame.iloc[i, j], dtype=np.float32) for j in range(frame.shape[1])], 1)
        for i in range(len(frame))
    ]  # each (T_i, C)
    names = sorted({str(v) for v in labels}, key=lambda v: (len(v), v))
    ids = [names.index(str(v)) for v in labels]
    return SequenceDataset(seqs, ids, source=f"{name} train"), {"classes": names}


def framing_table(paths: list[Path]) -> str:
    """Markdown: one row per (data set, JSON), mean CV accuracy and the frames per rule."""
    rules = list(FRAMING)
    head = "| set (lengths min/median/max) | CV seed, epochs | " + " | ".join(rules) + " |"
    lines = [head, "|---|---|" + "---|" * len(rules)]
    for path in paths:
        res = json.loads(path.read_text())
        epochs = res["training"]["trainer"]["max_epochs"]
        for name, per in res["datasets"].items():
            n = per["lengths"]
            cells = []
            for rule in rules:
                r = per.get(rule)
                if r is None:
                    cells.append("")
                elif "skipped" in r:
                    cells.append("skipped")
                else:
                    frames = "/".join(str(f) for f in sorted(set(r["frames"])))
                    cells.append(f"{r['mean']:.3f} (frame {frames})")
            where = f"{name} ({n['min']}/{n['median']:g}/{n['max']})"
            where += " + one 10x series per fold" if name.endswith("_outlier") else ""
            lines.append(f"| {where} | {res['seed']}, {epochs} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    from rnnkit.data.framing import frame_size

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--study", choices=["selection", "framing"], default="selection")
    p.add_argument("--datasets", nargs="*", default=None)
    p.add_argument("--settings", nargs="*", default=None)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--none_max_len", type=int, default=200, help="framing: 'none' up to this T")
    p.add_argument("--append", action="store_true", help="keep the JSON's other data sets")
    p.add_argument("--max_epochs", type=int, default=40, help="framing: training epochs at most")
    p.add_argument("--patience", type=int, default=10, help="framing: early-stopping patience")
    p.add_argument("--table", nargs="*", help="print the markdown table of these framing JSONs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "runs" / "classify_cv"))
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "classify_cv.json"))
    args = p.parse_args(argv)
    if args.table:
        print(framing_table([Path(t) for t in args.table]))
        return 0
    framing = args.study == "framing"
    training = merge(
        FRAMING_TRAINING,
        {"trainer": {"max_epochs": args.max_epochs}, "early_stopping": {"patience": args.patience}},
    )
    table = FRAMING if framing else SETTINGS
    args.settings = args.settings or (list(FRAMING) if framing else list(SETTINGS)[:5])
    unknown = [s for s in args.settings if s not in table]
    if unknown:
        p.error(f"--settings {unknown}: not in {list(table)}")
    if args.datasets is None:
        args.datasets = (
            FRAMING_SETS if framing else ["gunpoint", "italy_power_demand", "basic_motions"]
        )
    if framing and args.json.endswith("classify_cv.json"):
        args.json = args.json.replace("classify_cv.json", "classify_cv_framing.json")
    torch.set_num_threads(1)
    base = app_config(APP)
    settings = app_settings(Settings, base, app=APP)
    results: dict[str, Any] = {
        "protocol": f"{args.folds}-fold stratified CV on the official TRAIN split only; per fold "
        f"the app's val_fraction={settings.val_fraction} carve of the K-1 training folds selects",
        "seed": args.seed,
        "study": args.study,
        "settings": {k: table[k] for k in args.settings},
        "training": training if framing else "the recipe's experiment with the setting",
        "load_before": os.getloadavg(),
        "datasets": {},
    }
    if args.append and Path(args.json).is_file():
        before = json.loads(Path(args.json).read_text())
        if before.get("study", "selection") == args.study:
            results["datasets"] = before["datasets"]
            results["earlier_runs_load"] = before.get("load_before")
    for name in args.datasets:
        train, meta = _train_split(name)  # the official test split is never loaded
        labels = np.asarray(train.labels)
        folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
        per: dict[str, Any] = {}
        done: dict[tuple[int, int], tuple[float, float]] = {}  # (fold, frame) -> (accuracy, wall)
        lengths = np.asarray(train.lengths)
        per["lengths"] = {
            "min": int(lengths.min()),
            "median": float(np.median(lengths)),
            "max": int(lengths.max()),
            "n": len(lengths),
        }
        results["datasets"][name] = per
        for setting in args.settings:
            if framing and setting == "none" and lengths.max() > args.none_max_len:
                per[setting] = {"skipped": f"longest series {lengths.max()} > --none_max_len"}
                continue
            over = training if framing else SETTINGS[setting]
            config = merge(base, {"experiment": over})
            accs, walls, frames = [], [], []
            for k, (tr, te) in enumerate(folds.split(np.zeros(len(labels)), labels)):
                part_train = _subset(train, tr, f"{name} cv train")
                if name.endswith("_outlier"):
                    part_train = _with_outlier(part_train)
                splits = SimpleNamespace(
                    train=part_train, test=_subset(train, te, f"{name} cv held"), meta=meta
                )
                if framing:
                    option, quantile = FRAMING[setting]
                    frame = frame_size(
                        part_train.lengths,
                        frame=option,
                        steps=settings.frame_steps,
                        quantile=quantile,
                    )
                else:
                    frame = _frame(settings, name, lengths=part_train.lengths)
                frames.append(frame)
                if (k, frame) in done:
                    accs.append(done[k, frame][0])
                    walls.append(done[k, frame][1])
                    print(f"{name} {setting} fold {k}: frame {frame} as run", flush=True)
                    continue
                root = Path(args.out) / setting
                source = name.removesuffix("_outlier")  # the app's name for the set
                exp = experiment(config, settings, source, seed=args.seed, root=root)
                exp.run.name = f"{name}-fold{k}"
                t0 = time.perf_counter()
                row = run_seed(name, splits, exp, frame=frame, val_fraction=settings.val_fraction)
                walls.append(time.perf_counter() - t0)
                accs.append(float(row["accuracy"]))
                if framing:
                    done[k, frame] = (accs[-1], walls[-1])
                print(
                    f"{name} {setting} fold {k}: frame {frame} {accs[-1]:.3f} ({walls[-1]:.0f} s)",
                    flush=True,
                )
            per[setting] = {
                "fold_accuracy": accs,
                "mean": float(np.mean(accs)),
                "frames": frames,
                "wall_s": [round(w, 1) for w in walls],
            }
            print(f"{name} {setting}: CV accuracy {per[setting]['mean']:.3f}", flush=True)
            results["load_after"] = os.getloadavg()
            write_json(Path(args.json), results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
