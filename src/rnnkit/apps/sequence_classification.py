"""Sequence classification on four UCR/UEA archive sets, against 1-NN DTW.

JapaneseVowels (speech, 12 channels, variable length: kept as ``lengths``, never truncated),
BasicMotions (smart-watch gestures, 6 channels), GunPoint and ItalyPowerDemand (univariate), each on
its official train/test split (``rnnkit.data.load``; per-channel standardisation fitted on the
training split). A :class:`rnnkit.models.SequenceClassifier` (LSTM/GRU, pooling over real steps) is
trained per seed by the library's trainer (`rnnkit.train.fit` on the recipe's ``experiment:``, a
`ClassificationExperiment`): a stratified validation split is carved from the training split per
seed, the checkpoint with the best validation accuracy is kept (equal accuracies go to the lower
validation loss; early stopping on the same rule), and that checkpoint scores the test split.
Long series are framed (``frame`` steps stacked into one; `rnnkit.data.framing`, the library's
``data.frame`` option) so the longest training series (``frame_quantile: 1``; 0.5 would be the
median one) runs at most ``frame_steps`` steps. Each (data set, seed) leaves a run directory under
``out_dir/runs/`` that ``rnnkit predict`` / ``load_run`` read.

Baselines, all on the same test split:

- majority class of the training split (trivial);
- 1-NN DTW computed here: full warping window, squared-Euclidean local cost summed over channels
  (DTW_D for the multivariate sets), nearest training series by
  `rnnkit.evaluate.baselines.dtw_distances`;
- the published 1-NN DTW accuracy of the archive (``PUBLISHED_DTW``, with its source).
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
from rnnkit.data.framing import check_frame_options, frame_all, frame_size
from rnnkit.evaluate import accuracy, majority_class, stratified_holdout
from rnnkit.evaluate.baselines import dtw_distances
from rnnkit.train import DataParts, fit

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

Dataset = Literal["japanese_vowels", "basic_motions", "gunpoint", "italy_power_demand"]


@dataclass
class DatasetOptions:
    """Per-data-set overrides: a fixed ``frame`` and experiment keys merged over the recipe's."""

    frame: int | None = None  # steps stacked into one (None: the frame_steps rule)
    experiment: dict[str, Any] = field(default_factory=dict)  # e.g. {model: {hidden_size: 32}}


@dataclass
class Settings:
    """The recipe's application keys; training is the ``experiment:`` section (`rnnkit fit`'s)."""

    datasets: list[Dataset] = field(default_factory=lambda: list(KNOWN))  # type: ignore[arg-type]
    val_fraction: float = 0.2  # stratified, carved from the training split per seed
    dtw: bool = True  # also compute 1-NN DTW (full window) on the same split
    # frame = ceil(frame_quantile of the training lengths / frame_steps) (rnnkit.data.framing)
    frame_steps: int = 30
    frame_quantile: float = 1.0  # 1: the longest training length; 0.5: the median
    frame: int | None = None  # one frame for every set (None: the frame_steps rule)
    per_dataset: dict[str, DatasetOptions] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.datasets:
            raise ValueError(f"datasets must be a non-empty list, some of {list(KNOWN)}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        check_frame_options(None, self.frame_steps, self.frame_quantile, prefix="")
        for name, opts in self.per_dataset.items():
            if name not in KNOWN:
                raise ValueError(f"per_dataset: unknown data set {name!r}; choose from {KNOWN}")
            if opts.frame is not None and opts.frame < 1:
                raise ValueError(f"per_dataset.{name}.frame must be >= 1, got {opts.frame}")
        if self.frame is not None and self.frame < 1:
            raise ValueError(f"frame must be >= 1, got {self.frame}")


def frame_sequences(data: SequenceDataset, frame: int, source: str) -> SequenceDataset:
    """``data`` framed by `rnnkit.data.framing.frame_series` (``frame=1`` returns ``data``)."""
    if frame == 1:
        return data
    framed = frame_all([np.asarray(s) for s in data.sequences], frame)
    return SequenceDataset(framed, data.labels, source=source)


def _frame(settings: Settings, name: str, *, lengths: list[int]) -> int:
    """The data set's frame: its own, the recipe's, or `frame_size`'s rule on the training
    ``lengths``."""
    opts = settings.per_dataset.get(name, DatasetOptions())
    fixed = opts.frame if opts.frame is not None else settings.frame
    return frame_size(
        lengths,
        frame="auto" if fixed is None else fixed,
        steps=settings.frame_steps,
        quantile=settings.frame_quantile,
    )


def experiment(
    config: dict[str, Any], settings: Settings, name: str, *, seed: int, root: Path
) -> Any:
    """One (data set, seed)'s `ClassificationExperiment`: the recipe's ``experiment:`` with the
    data set's overrides, checked like `rnnkit fit` checks a recipe."""
    over = settings.per_dataset.get(name, DatasetOptions()).experiment
    fixed = {
        "task": "classification",
        "seed": seed,
        # the source is recorded, the samples are the app's (framed, validation carved out)
        "data": {"source": name, "seed": seed},
        "run": {"root": str(root), "name": f"{name}-seed{seed}", "plot": False},
    }
    return app_experiment(APP, merge(config.get("experiment", {}), over), fixed)


def _subset(data: SequenceDataset, idx: np.ndarray, source: str) -> SequenceDataset:
    labels = None if data.labels is None else [data.labels[int(i)] for i in idx]
    return SequenceDataset([data.sequences[int(i)] for i in idx], labels, source=source)


def _standardised(
    train: SequenceDataset, others: dict[str, SequenceDataset]
) -> dict[str, SequenceDataset]:
    """Per-channel standardisation fitted on ``train``'s rows only (after the validation carve,
    so neither the validation nor the test series shape the statistics), applied to every split."""
    rows = np.concatenate([np.asarray(x, dtype=np.float64) for x in train.sequences])
    mean, std = rows.mean(0), rows.std(0)
    std = np.where(std > 0, std, 1.0)

    def apply(data: SequenceDataset) -> SequenceDataset:
        seqs = [
            ((np.asarray(x, dtype=np.float64) - mean) / std).astype(np.float32)
            for x in data.sequences
        ]
        return SequenceDataset(seqs, data.labels, source=data.source)

    return {"train": apply(train), **{k: apply(v) for k, v in others.items()}}


def run_seed(
    name: str, splits: Any, exp: Any, *, frame: int, val_fraction: float
) -> dict[str, Any]:
    """Train one classifier on one data set for one seed through `rnnkit.train.fit`; the best
    checkpoint on validation accuracy scores the test split."""
    keep, held = stratified_holdout(splits.train.labels, val_fraction, seed=exp.seed)
    train = _subset(splits.train, keep, f"{name} train")
    scaled = _standardised(
        train, {"val": _subset(splits.train, held, f"{name} val"), "test": splits.test}
    )
    parts = {k: frame_sequences(v, frame, k) for k, v in scaled.items()}
    run_dir = Path(exp.run.root) / str(exp.run.name)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # this app's own folder from an earlier run
    meta = {
        "classes": list(splits.meta["classes"]),
        "n_features": int(parts["train"].sequences[0].shape[-1]),
    }
    samples = {k: list(zip(v.sequences, v.labels or [], strict=True)) for k, v in parts.items()}
    result = fit(
        exp,
        data=DataParts(samples["train"], samples["val"], samples["test"], meta),
        test=True,
    )
    runs = result.summary.get("members") or [result.summary]  # an ensemble's members, or itself
    best = [None if m.get("best_epoch") is None else int(m["best_epoch"]) + 1 for m in runs]
    epochs = [int(m["epochs"]) for m in runs]
    return {
        "accuracy": result.metrics["test_accuracy"],
        "best_epoch": best[0] if len(runs) == 1 else best,
        "epochs_run": epochs[0] if len(runs) == 1 else epochs,
        "val_accuracy": result.metrics["val_accuracy"],
        "params": int(result.summary["parameters"]),
        "n_train": len(keep),
        "n_val": len(held),
        "run_dir": str(result.run_dir),
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


def _selection(exp: Any) -> str:
    """How the checkpoint was chosen, in words, for the results JSON."""
    es, run = exp.early_stopping, exp.run
    text = f"{run.monitor} ({run.monitor_mode}), ties: {run.monitor_tiebreak}"
    text += f"; no candidate before step {es.min_steps}" if es.min_steps else ""
    text += f"; early stopping, patience {es.patience}" if es.enabled else "; no early stopping"
    ensemble = exp.model.ensemble
    return text + (f"; ensemble of {ensemble} seeds (mean probabilities)" if ensemble > 1 else "")


def run(config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool) -> list[dict]:
    """Every data set in ``datasets``: the RNN over ``seeds`` vs majority and 1-NN DTW."""
    settings = app_settings(Settings, config, app=APP)
    root = out_dir / "runs"
    for name in settings.datasets:  # every experiment checked before anything is fitted
        experiment(config, settings, name, seed=seeds[0] if seeds else 0, root=root)
    records: list[dict[str, Any]] = []
    rows = []
    for name in settings.datasets:
        splits = load(name, scale=False)  # standardised per seed, on its training rows only
        frame = _frame(settings, name, lengths=splits.train.lengths)
        train, test = splits.train, splits.test
        majority = float(np.mean(np.asarray(test.labels) == majority_class(train.labels)))
        dtw: float | None = None
        dtw_wall = 0.0
        if settings.dtw:  # on the archive's data as distributed, as published
            with timer() as t:
                dtw = nn_dtw_accuracy(splits.train, splits.test)
            dtw_wall = t["s"]
        per_seed, walls, cpus = [], [], []
        for seed in seeds:
            exp = experiment(config, settings, name, seed=seed, root=root)
            cpu0 = time.process_time()
            with timer() as t:
                per_seed.append(
                    run_seed(name, splits, exp, frame=frame, val_fraction=settings.val_fraction)
                )
            walls.append(t["s"])
            cpus.append(time.process_time() - cpu0)
        values = [r["accuracy"] for r in per_seed]
        spec = exp.model
        model_name = (
            f"{spec.cell.upper()} classifier (H={spec.hidden_size}, "
            f"{'bi, ' if spec.bidirectional else ''}{spec.pooling} pool"
            f"{', frame ' + str(frame) if frame > 1 else ''}"
            f"{f', {spec.ensemble}-seed ensemble' if spec.ensemble > 1 else ''})"
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
            "best_epochs": [r["best_epoch"] for r in per_seed],
            "epochs_run": [r["epochs_run"] for r in per_seed],
            "val_accuracy": [r["val_accuracy"] for r in per_seed],
            "selection": _selection(exp),
            "params": per_seed[0]["params"],
            "split_sizes": {
                "train": per_seed[0]["n_train"],
                "val": per_seed[0]["n_val"],
                "test": len(test),
            },
            "runs": [r["run_dir"] for r in per_seed],
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
