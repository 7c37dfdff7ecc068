"""Sequence classification on four UCR/UEA archive sets, against 1-NN DTW.

JapaneseVowels (speech, 12 channels, variable length: kept as ``lengths``, never truncated),
BasicMotions (smart-watch gestures, 6 channels), GunPoint and ItalyPowerDemand (univariate), each on
its official train/test split (``rnnkit.data.load``; per-channel standardisation fitted on the
training split). A :class:`rnnkit.models.SequenceClassifier` (LSTM/GRU, pooling over real steps) is
trained per seed with model selection on a stratified validation split carved from the training
split (``rnnkit.apps._classify``).

Baselines, all on the same test split:

- majority class of the training split (trivial);
- 1-NN DTW computed here: full warping window, squared-Euclidean local cost summed over channels
  (DTW_D for the multivariate sets), nearest training series by
  `rnnkit.evaluate.baselines.dtw_distances`;
- the published 1-NN DTW accuracy of the archive (``PUBLISHED_DTW``, with its source).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.apps._classify import (
    Padded,
    majority_accuracy,
    model_config,
    padded,
    stratified_split,
    subset,
    train_settings,
)
from rnnkit.apps._classify import evaluate as evaluate_model
from rnnkit.apps._classify import fit as fit_model
from rnnkit.apps._common import record, seed_all, timer
from rnnkit.data import SequenceDataset, load
from rnnkit.evaluate import accuracy
from rnnkit.evaluate.baselines import dtw_distances
from rnnkit.models import SequenceClassifier

APP = "sequence_classification"
KNOWN = ("japanese_vowels", "basic_motions", "gunpoint", "italy_power_demand")

_UCR_SUMMARY = (
    "UCR archive 2018 DataSummary.csv, column 'DTW (w=100)' (test error rate; accuracy = 1 - "
    "error); Dau et al., 'The UCR Time Series Archive', IEEE/CAA J. Autom. Sinica 6(6), 2019"
)
_UEA_TABLE = (
    "Bagnall et al., 'The UEA multivariate time series classification archive, 2018', "
    "arXiv:1811.00075, benchmark table, 1-NN DTW_D (full window, normalised data)"
)
# Published 1-NN DTW test accuracy, full warping window (cited, not measured here).
PUBLISHED_DTW: dict[str, dict[str, Any]] = {
    "gunpoint": {"accuracy": 1 - 0.0933, "method": "1-NN DTW (w=100%)", "source": _UCR_SUMMARY},
    "italy_power_demand": {
        "accuracy": 1 - 0.0496,
        "method": "1-NN DTW (w=100%)",
        "source": _UCR_SUMMARY,
    },
    "japanese_vowels": {"accuracy": 0.949, "method": "1-NN DTW_D", "source": _UEA_TABLE},
    "basic_motions": {"accuracy": 0.975, "method": "1-NN DTW_D", "source": _UEA_TABLE},
}

NAMES = {
    "japanese_vowels": "JapaneseVowels",
    "basic_motions": "BasicMotions",
    "gunpoint": "GunPoint",
    "italy_power_demand": "ItalyPowerDemand",
}


# ---- 1-NN DTW ----


def nn_dtw_accuracy(train: SequenceDataset, test: SequenceDataset) -> float:
    """Test accuracy of the 1-nearest-neighbour classifier under ``dtw_distances``."""
    assert train.labels is not None and test.labels is not None
    dist = dtw_distances(
        [s.numpy().reshape(len(s), -1) for s in test.sequences],
        [s.numpy().reshape(len(s), -1) for s in train.sequences],
    )
    pred = np.asarray(train.labels)[dist.argmin(axis=1)]
    return accuracy(np.asarray(test.labels), pred)


# ---- the recurrent classifier ----


def frame_sequences(data: SequenceDataset, frame: int, source: str) -> SequenceDataset:
    """Stack ``frame`` consecutive steps into one: ``(T, C) -> (ceil(T / frame), frame * C)``
    (the last frame is filled by repeating the last step). ``frame=1`` returns ``data``."""
    if frame == 1:
        return data
    seqs = []
    for s in data.sequences:
        arr = s.numpy().reshape(len(s), -1)
        steps = math.ceil(len(arr) / frame)
        fill = steps * frame - len(arr)
        if fill:
            arr = np.concatenate([arr, np.repeat(arr[-1:], fill, axis=0)])
        seqs.append(arr.reshape(steps, frame * arr.shape[1]))
    return SequenceDataset(seqs, data.labels, source=source)


def _dataset_config(config: dict[str, Any], name: str, *, longest: int) -> dict[str, Any]:
    per = config.get("per_dataset") or {}
    if not isinstance(per, dict):
        raise ValueError("per_dataset must be a mapping of data set name -> overrides")
    over = per.get(name) or {}
    if not isinstance(over, dict):
        raise ValueError(f"per_dataset.{name} must be a mapping")
    unknown = sorted(set(over) - {"model", "train", "frame"})
    if unknown:
        raise ValueError(f"per_dataset.{name}: unknown field {unknown[0]!r}")
    frame = over.get("frame", config.get("frame"))
    if frame is None:  # the rule: stack steps so the longest training sequence has <= max_steps
        max_steps = config.get("max_steps", 30)
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
        frame = math.ceil(longest / max_steps)
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 1:
        raise ValueError(f"frame must be an integer >= 1, got {frame!r}")
    return {
        "model": {**(config.get("model") or {}), **(over.get("model") or {})},
        "train": {**(config.get("train") or {}), **(over.get("train") or {})},
        "frame": frame,
    }


def _check(config: dict[str, Any]) -> list[str]:
    names = config.get("datasets")
    if not isinstance(names, list) or not names:
        raise ValueError(f"datasets must be a non-empty list, some of {list(KNOWN)}")
    for n in names:
        if n not in KNOWN:
            raise ValueError(f"datasets: unknown data set {n!r}; choose from {list(KNOWN)}")
    vf = config.get("val_fraction", 0.2)
    if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0 < vf < 1:
        raise ValueError(f"val_fraction must be a number in (0, 1), got {vf!r}")
    return list(names)


def run_seed(
    name: str, splits: Any, cfg: dict[str, Any], *, seed: int, val_fraction: float
) -> dict[str, Any]:
    """Train and test one classifier on one data set for one seed."""
    train_full, test = splits.train, splits.test
    keep, held = stratified_split(train_full.labels, val_fraction, seed=seed)
    frame = cfg["frame"]
    parts = {
        "train": frame_sequences(subset(train_full, keep, f"{name} train"), frame, "train"),
        "val": frame_sequences(subset(train_full, held, f"{name} val"), frame, "val"),
        "test": frame_sequences(test, frame, "test"),
    }
    data: dict[str, Padded] = {k: padded(v) for k, v in parts.items()}
    settings = train_settings(cfg["train"])
    seed_all(seed)
    mcfg = model_config(
        cfg["model"], input_size=data["train"].x.shape[2], num_classes=len(splits.meta["classes"])
    )
    model = SequenceClassifier(mcfg)
    result = fit_model(model, data["train"], data["val"], settings, seed=seed)
    pred, _ = evaluate_model(model, data["test"])
    return {
        "accuracy": accuracy(data["test"].y.numpy(), pred),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "val_accuracy": result.val_accuracy,
        "params": sum(p.numel() for p in model.parameters()),
        "n_train": len(keep),
        "n_val": len(held),
    }


def _plot(rows: list[dict[str, Any]], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [NAMES[r["name"]] for r in rows]
    x = np.arange(len(rows))
    width = 0.2
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = [
        ("majority class", [r["majority"] for r in rows], None, "#bbbbbb"),
        ("1-NN DTW (computed here)", [r["dtw"] for r in rows], None, "#6a8caf"),
        ("1-NN DTW (published)", [r["published"] for r in rows], None, "#a7c4e0"),
        (
            "RNN (mean ± sd, 3 seeds)" if len(rows[0]["rnn"]) > 1 else "RNN",
            [float(np.mean(r["rnn"])) for r in rows],
            [float(np.std(r["rnn"], ddof=1)) if len(r["rnn"]) > 1 else 0.0 for r in rows],
            "#d1603d",
        ),
    ]
    for k, (label, values, err, color) in enumerate(bars):
        vals = [np.nan if v is None else v for v in values]
        ax.bar(x + (k - 1.5) * width, vals, width, yerr=err, label=label, color=color, capsize=3)
    ax.set_xticks(x, labels)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Official test splits of the UCR/UEA archive")
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy.png", dpi=120)
    plt.close(fig)


def run(config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool) -> list[dict]:
    """Every data set in ``config['datasets']``: RNN over ``seeds`` vs majority and 1-NN DTW."""
    names = _check(config)
    val_fraction = float(config.get("val_fraction", 0.2))
    use_dtw = bool(config.get("dtw", True))
    records: list[dict[str, Any]] = []
    rows = []
    for name in names:
        splits = load(name)  # per-channel standardisation fitted on the training split
        cfg = _dataset_config(config, name, longest=max(splits.train.lengths))
        train, test = splits.train, splits.test
        majority = majority_accuracy(train.labels, test.labels)
        dtw: float | None = None
        dtw_wall = 0.0
        if use_dtw:
            raw = load(name, scale=False)  # the archive's data as distributed, as published
            with timer() as t:
                dtw = nn_dtw_accuracy(raw.train, raw.test)
            dtw_wall = t["s"]
        per_seed, walls = [], []
        for seed in seeds:
            with timer() as t:
                per_seed.append(run_seed(name, splits, cfg, seed=seed, val_fraction=val_fraction))
            walls.append(t["s"])
        values = [r["accuracy"] for r in per_seed]
        wall = float(np.mean(walls))
        model_name = (
            f"{cfg['model'].get('cell', 'lstm').upper()} classifier "
            f"(H={cfg['model'].get('hidden_size', 64)}, "
            f"{'bi, ' if cfg['model'].get('bidirectional') else ''}"
            f"{cfg['model'].get('pooling', 'last')} pool"
            f"{', frame ' + str(cfg['frame']) if cfg['frame'] > 1 else ''})"
        )
        common = {
            "app": APP,
            "dataset": name,
            "model": model_name,
            "metric": "accuracy",
            "higher_is_better": True,
            "values": values,
            "seeds": seeds,
            "wall_s": wall,
            "per_seed_wall_s": [round(w, 1) for w in walls],
            "best_epochs": [r["best_epoch"] for r in per_seed],
            "epochs_run": [r["epochs_run"] for r in per_seed],
            "val_accuracy": [r["val_accuracy"] for r in per_seed],
            "params": per_seed[0]["params"],
            "split_sizes": {
                "train": per_seed[0]["n_train"],
                "val": per_seed[0]["n_val"],
                "test": len(test),
            },
        }
        if dtw is not None:
            records.append(
                record(
                    **common,
                    baseline="1-NN DTW (full window, computed here)",
                    baseline_values=dtw,
                    baseline_wall_s=round(dtw_wall, 1),
                    notes="1-NN DTW on the archive's data as distributed, whole training split",
                )
            )
        pub = PUBLISHED_DTW.get(name)
        if pub is not None:
            records.append(
                record(
                    **common,
                    baseline=f"{pub['method']}, published",
                    baseline_values=float(pub["accuracy"]),
                    source=pub["source"],
                    headline=False,
                    notes="published figure, cited (not measured here)",
                )
            )
        records.append(
            record(
                **common,
                baseline="majority class",
                baseline_values=majority,
                headline=dtw is None,
            )
        )
        rows.append(
            {
                "name": name,
                "majority": majority,
                "dtw": dtw,
                "published": None if pub is None else float(pub["accuracy"]),
                "rnn": values,
            }
        )
    _plot(rows, out_dir)
    return records
