"""Handwriting as sequences: scikit-learn's 8x8 digits read row by row and pixel by pixel.

``digits_rows``: 8 steps of 8 pixels; ``digits_pixels``: 64 steps of 1 pixel (scan order, much
harder: the classifier must carry information across 64 steps). Both come from the registry
(``rnnkit.data.load``, pixels scaled to [0, 1]) and are split here ONCE, stratified by class with
a fixed seed (``split.seed``) into train / validation / test; the seeds of a run vary the model's
initialisation and batch order only. The validation split picks the epoch kept (and the logistic
regression's ``C``); the test split is only scored.

Baselines on the same test split: majority class (trivial) and multinomial logistic regression on
the flattened 64 pixels (strong: the order of the pixels is irrelevant to it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.apps._classify import (
    Padded,
    majority_accuracy,
    model_config,
    padded,
    subset,
    train_settings,
)
from rnnkit.apps._classify import evaluate as evaluate_model
from rnnkit.apps._classify import fit as fit_model
from rnnkit.apps._common import record, seed_all, timer
from rnnkit.data import SequenceDataset, load
from rnnkit.evaluate import accuracy
from rnnkit.models import SequenceClassifier

APP = "digits"
READINGS = {"digits_rows": "row by row (8 steps x 8 pixels)", "digits_pixels": "pixel by pixel"}


def _fraction(split: dict[str, Any], key: str, default: float) -> float:
    value = split.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"split.{key} must be a number in (0, 1), got {value!r}")
    return float(value)


def split_indices(
    labels: np.ndarray, *, test_fraction: float, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified (train, val, test) indices; the fractions are of the whole set."""
    from sklearn.model_selection import train_test_split

    if test_fraction + val_fraction >= 1:
        raise ValueError(
            f"split.test_fraction + split.val_fraction must be < 1, got "
            f"{test_fraction} + {val_fraction}"
        )
    idx = np.arange(len(labels))
    rest, test = train_test_split(idx, test_size=test_fraction, stratify=labels, random_state=seed)
    train, val = train_test_split(
        rest,
        test_size=val_fraction / (1 - test_fraction),
        stratify=labels[rest],
        random_state=seed,
    )
    return np.sort(train), np.sort(val), np.sort(test)


def _all_images(name: str) -> SequenceDataset:
    # the registry's own split is replaced by a stratified one: ask for everything in "train"
    data = load(name, val_fraction=0.0, test_fraction=0.0)
    all_rows: SequenceDataset = data.train
    return all_rows


def logistic_baseline(
    train: SequenceDataset, val: SequenceDataset, test: SequenceDataset, grid: list[float]
) -> tuple[float, float]:
    """Test accuracy of logistic regression on the flattened pixels, ``C`` chosen on ``val``."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    def flat(d: SequenceDataset) -> tuple[np.ndarray, np.ndarray]:
        return np.stack([s.numpy().reshape(-1) for s in d.sequences]), np.asarray(d.labels)

    (xtr, ytr), (xva, yva), (xte, yte) = flat(train), flat(val), flat(test)
    best: tuple[float, float] = (-1.0, grid[0])
    with threadpool_limits(1):  # BLAS threads only slow this small problem down
        for c in grid:
            clf = LogisticRegression(C=c, max_iter=5000).fit(xtr, ytr)
            score = accuracy(yva, clf.predict(xva))
            if score > best[0]:
                best = (score, c)
        clf = LogisticRegression(C=best[1], max_iter=5000).fit(xtr, ytr)
        return accuracy(yte, clf.predict(xte)), best[1]


def _plots(
    images: np.ndarray, labels: np.ndarray, preds: dict[str, np.ndarray], out_dir: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    fig, axes = plt.subplots(1, len(preds), figsize=(5 * len(preds), 4.4))
    axes = np.atleast_1d(axes)
    for ax, (name, pred) in zip(axes, preds.items(), strict=True):
        cm = confusion_matrix(labels, pred, labels=list(range(10)))
        ax.imshow(np.log1p(cm), cmap="Blues")
        for i in range(10):
            for j in range(10):
                if cm[i, j]:
                    color = "white" if i == j else "black"
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color=color)
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{READINGS[name]}: acc {accuracy(labels, pred):.3f}", fontsize=9)
    fig.suptitle("Test-split confusion matrices, seed 0")
    fig.tight_layout()
    fig.savefig(out_dir / "confusion.png", dpi=110)
    plt.close(fig)

    name = next(iter(preds))
    wrong = np.flatnonzero(preds[name] != labels)[:16]
    if len(wrong) == 0:
        return
    cols = 8
    nrows = (len(wrong) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(1.3 * cols, 1.55 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong, strict=False):
        ax.imshow(images[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"{labels[i]} -> {preds[name][i]}", fontsize=8)
    fig.suptitle(f"Misclassified test digits ({READINGS[name]}, seed 0): true -> predicted")
    fig.tight_layout()
    fig.savefig(out_dir / "misclassified.png", dpi=110)
    plt.close(fig)


def run(config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool) -> list[dict]:
    """Row-wise and pixel-wise recurrent classifiers over ``seeds`` vs majority and logistic
    regression, on one fixed stratified split."""
    names = config.get("datasets", list(READINGS))
    if not isinstance(names, list) or not names or any(n not in READINGS for n in names):
        raise ValueError(f"datasets must be a non-empty list of {list(READINGS)}, got {names!r}")
    split = config.get("split") or {}
    if not isinstance(split, dict):
        raise ValueError("split must be a mapping with test_fraction, val_fraction, seed")
    test_fraction = _fraction(split, "test_fraction", 0.2)
    val_fraction = _fraction(split, "val_fraction", 0.15)
    split_seed = split.get("seed", 0)
    if isinstance(split_seed, bool) or not isinstance(split_seed, int):
        raise ValueError(f"split.seed must be an integer, got {split_seed!r}")
    grid = config.get("logistic_C", [0.01, 0.1, 1.0, 10.0])
    if not isinstance(grid, list) or not grid or any(not isinstance(c, (int, float)) for c in grid):
        raise ValueError(f"logistic_C must be a non-empty list of numbers, got {grid!r}")
    per_reading = config.get("per_dataset") or {}

    records: list[dict[str, Any]] = []
    preds0: dict[str, np.ndarray] = {}
    images0 = labels0 = None
    for name in names:
        everything = _all_images(name)
        labels = np.asarray(everything.labels)
        tr, va, te = split_indices(
            labels, test_fraction=test_fraction, val_fraction=val_fraction, seed=split_seed
        )
        parts = {
            "train": subset(everything, tr, f"{name} train"),
            "val": subset(everything, va, f"{name} val"),
            "test": subset(everything, te, f"{name} test"),
        }
        sizes = {k: len(v) for k, v in parts.items()}
        majority = majority_accuracy(parts["train"].labels or [], parts["test"].labels or [])
        with timer() as t:
            logistic, best_c = logistic_baseline(parts["train"], parts["val"], parts["test"], grid)
        logistic_wall = t["s"]
        data: dict[str, Padded] = {k: padded(v) for k, v in parts.items()}
        over = per_reading.get(name) or {}
        model_cfg = {**(config.get("model") or {}), **(over.get("model") or {})}
        settings = train_settings({**(config.get("train") or {}), **(over.get("train") or {})})
        values, walls, best_epochs, epochs_run, val_accs = [], [], [], [], []
        params = 0
        for seed in seeds:
            with timer() as t:
                seed_all(seed)
                mcfg = model_config(model_cfg, input_size=data["train"].x.shape[2], num_classes=10)
                model = SequenceClassifier(mcfg)
                result = fit_model(model, data["train"], data["val"], settings, seed=seed)
                pred, _ = evaluate_model(model, data["test"])
            walls.append(t["s"])
            values.append(accuracy(data["test"].y.numpy(), pred))
            best_epochs.append(result.best_epoch)
            epochs_run.append(result.epochs_run)
            val_accs.append(result.val_accuracy)
            params = sum(p.numel() for p in model.parameters())
            if seed == seeds[0]:
                preds0[name] = pred
                labels0 = data["test"].y.numpy()
                images0 = np.stack([s.numpy().reshape(-1) for s in parts["test"].sequences])
        cell = str(model_cfg.get("cell", "lstm")).upper()
        bi = "bi, " if model_cfg.get("bidirectional") else ""
        model_name = (
            f"{cell} {READINGS[name].split(' (')[0]} "
            f"(H={model_cfg.get('hidden_size', 64)}, {bi}{model_cfg.get('pooling', 'last')} pool)"
        )
        common = {
            "app": APP,
            "dataset": name,
            "model": model_name,
            "metric": "accuracy",
            "higher_is_better": True,
            "values": values,
            "seeds": seeds,
            "wall_s": float(np.mean(walls)),
            "per_seed_wall_s": [round(w, 1) for w in walls],
            "best_epochs": best_epochs,
            "epochs_run": epochs_run,
            "val_accuracy": val_accs,
            "params": params,
            "split_sizes": sizes,
            "split": f"test (stratified {test_fraction:.0%} of 1797, split seed {split_seed})",
        }
        records.append(
            record(
                **common,
                baseline="logistic regression, 64 pixels",
                baseline_values=logistic,
                baseline_wall_s=round(logistic_wall, 1),
                logistic_C=best_c,
                headline=True,
            )
        )
        records.append(
            record(
                **common,
                baseline="majority class",
                baseline_values=majority,
                headline=name == names[0],
            )
        )
    assert images0 is not None and labels0 is not None
    _plots(images0, labels0, preds0, out_dir)
    return records
