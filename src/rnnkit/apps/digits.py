"""Handwriting as sequences: scikit-learn's 8x8 digits read row by row and pixel by pixel.

``digits_rows``: 8 steps of 8 pixels; ``digits_pixels``: 64 steps of 1 pixel (scan order, much
harder: the classifier must carry information across 64 steps). Both come from the registry
(``rnnkit.data.load``, pixels scaled to [0, 1]) and are split here ONCE, stratified by class with
a fixed seed (``split.seed``) into train / validation / test; the seeds of a run vary the model's
initialisation and batch order only. The classifier is trained by the library's trainer
(`rnnkit.train.fit` on the recipe's ``experiment:``, a `ClassificationExperiment`); the checkpoint
with the best validation accuracy is kept (early stopping on it) and scores the test split; the
validation split also picks the logistic regression's ``C``. Each (reading, seed) leaves a run
directory under ``out_dir/runs/``.

Baselines on the same test split: majority class (trivial) and multinomial logistic regression on
the flattened 64 pixels (strong: the order of the pixels is irrelevant to it).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rnnkit.apps._common import (
    app_experiment,
    app_settings,
    merge,
    record,
    timer,
)
from rnnkit.data import SequenceDataset, load
from rnnkit.evaluate import accuracy, majority_class
from rnnkit.train import DataParts, fit, load_run
from rnnkit.train.predict import predict_classes

APP = "digits"
READINGS = {"digits_rows": "row by row (8 steps x 8 pixels)", "digits_pixels": "pixel by pixel"}
READ_STEPS = {"digits_rows": 8, "digits_pixels": 64}  # steps per image (8 or 1 pixel per step)
Reading = Literal["digits_rows", "digits_pixels"]


@dataclass
class Split:
    """One fixed stratified split of the 1797 images (fractions of the whole set)."""

    test_fraction: float = 0.2
    val_fraction: float = 0.15
    seed: int = 0  # the split is fixed; run seeds vary the model only

    def __post_init__(self) -> None:
        for name in ("test_fraction", "val_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"split.{name} must be a number in (0, 1), got {value!r}")


@dataclass
class ReadingOptions:
    """Per-reading experiment keys, merged over the recipe's ``experiment:``."""

    experiment: dict[str, Any] = field(default_factory=dict)


@dataclass
class Settings:
    """The recipe's application keys; training is the ``experiment:`` section (`rnnkit fit`'s)."""

    datasets: list[Reading] = field(default_factory=lambda: ["digits_rows", "digits_pixels"])
    split: Split = field(default_factory=Split)
    logistic_C: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])
    per_dataset: dict[Reading, ReadingOptions] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.datasets:
            raise ValueError(f"datasets must be a non-empty list of {list(READINGS)}")
        if not self.logistic_C or any(c <= 0 for c in self.logistic_C):
            raise ValueError(
                f"logistic_C must be a non-empty list of numbers > 0, got {self.logistic_C}"
            )


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


def experiment(
    config: dict[str, Any], settings: Settings, name: str, *, seed: int, root: Path
) -> Any:
    """One (reading, seed)'s `ClassificationExperiment`, checked like `rnnkit fit` checks one."""
    over = settings.per_dataset.get(name, ReadingOptions()).experiment  # type: ignore[call-overload]
    fixed = {
        "task": "classification",
        "seed": seed,
        "data": {"source": name, "seed": seed},  # recorded; the samples are the app's split
        "run": {"root": str(root), "name": f"{name}-seed{seed}", "plot": False},
    }
    return app_experiment(APP, merge(config.get("experiment", {}), over), fixed)


def _subset(data: SequenceDataset, idx: np.ndarray, source: str) -> SequenceDataset:
    labels = None if data.labels is None else [data.labels[int(i)] for i in idx]
    return SequenceDataset([data.sequences[int(i)] for i in idx], labels, source=source)


def run(config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool) -> list[dict]:
    """Row-wise and pixel-wise recurrent classifiers over ``seeds`` vs majority and logistic
    regression, on one fixed stratified split."""
    settings = app_settings(Settings, config, app=APP)
    sp = settings.split
    root = out_dir / "runs"
    names = list(settings.datasets)
    for name in names:  # every experiment checked before anything is fitted
        experiment(config, settings, name, seed=seeds[0] if seeds else 0, root=root)
    records: list[dict[str, Any]] = []
    preds0: dict[str, np.ndarray] = {}
    images0 = labels0 = None
    for name in names:
        everything = _all_images(name)
        labels = np.asarray(everything.labels)
        tr, va, te = split_indices(
            labels, test_fraction=sp.test_fraction, val_fraction=sp.val_fraction, seed=sp.seed
        )
        parts = {
            "train": _subset(everything, tr, f"{name} train"),
            "val": _subset(everything, va, f"{name} val"),
            "test": _subset(everything, te, f"{name} test"),
        }
        sizes = {k: len(v) for k, v in parts.items()}
        y_test = np.asarray(parts["test"].labels)
        majority = float(np.mean(y_test == majority_class(parts["train"].labels or [])))
        with timer() as t:
            logistic, best_c = logistic_baseline(
                parts["train"], parts["val"], parts["test"], settings.logistic_C
            )
        logistic_wall = t["s"]
        samples = {k: list(zip(v.sequences, v.labels or [], strict=True)) for k, v in parts.items()}
        meta = {"classes": [str(d) for d in range(10)], "n_features": 64 // READ_STEPS[name]}
        data = DataParts(samples["train"], samples["val"], samples["test"], meta)
        values, walls, cpus, best_epochs, epochs_run, val_accs, runs = [], [], [], [], [], [], []
        params = 0
        for seed in seeds:
            exp = experiment(config, settings, name, seed=seed, root=root)
            run_dir = root / str(exp.run.name)
            if run_dir.exists():
                shutil.rmtree(run_dir)  # this app's own folder from an earlier run
            cpu0 = time.process_time()
            with timer() as t:
                result = fit(exp, data=data, test=True)
            walls.append(t["s"])
            cpus.append(time.process_time() - cpu0)
            values.append(result.metrics["test_accuracy"])
            # the epoch the checkpoint was kept at (ties broken by the loss), 1-based
            best = result.summary["best_epoch"]
            best_epochs.append(None if best is None else int(best) + 1)
            epochs_run.append(int(result.summary["epochs"]))
            val_accs.append(result.metrics["val_accuracy"])
            params = int(result.summary["parameters"])
            runs.append(str(result.run_dir))
            if seed == seeds[0]:
                # the run's artifact: the best checkpoint's weights, as `rnnkit predict` loads them
                preds0[name] = predict_classes(load_run(result.run_dir).model, samples["test"])
                labels0 = y_test
                images0 = np.stack([s.numpy().reshape(-1) for s in parts["test"].sequences])
        spec = exp.model
        bi = "bi, " if spec.bidirectional else ""
        model_name = (
            f"{spec.cell.upper()} {READINGS[name].split(' (')[0]} "
            f"(H={spec.hidden_size}, {bi}{spec.pooling} pool)"
        )
        common: dict[str, Any] = {
            "app": APP,
            "dataset": name,
            "model": model_name,
            "metric": "accuracy",
            "higher_is_better": True,
            "values": values,
            "seeds": seeds,
            "wall_s": float(np.mean(walls)),
            "per_seed_wall_s": [round(w, 1) for w in walls],
            "per_seed_cpu_s": [round(c, 1) for c in cpus],
            "best_epochs": best_epochs,
            "epochs_run": epochs_run,
            "val_accuracy": val_accs,
            "selection": f"{exp.run.monitor} ({exp.run.monitor_mode}), "
            f"patience {exp.early_stopping.patience} validations",
            "params": params,
            "split_sizes": sizes,
            "split": f"test (stratified {sp.test_fraction:.0%} of 1797, split seed {sp.seed})",
            "runs": runs,
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
