"""Sentiment: fresh vs rotten Rotten Tomatoes snippets, a recurrent classifier vs bag-of-words.

Data: the registry set ``rotten_tomatoes`` (word ids, vocab from the training split) with its own
seeded train / validation / test split. The model is a `SequenceClassifier` (embedding ->
(bi)LSTM/GRU over each snippet's real words, padding skipped through ``lengths`` -> pooled ->
linear), trained by the library's trainer (`rnnkit.train.fit` on the recipe's ``experiment:``, a
`ClassificationExperiment`): AdamW with a one-cycle schedule, gradient clipping, length-bucketed
batches (``data.bucket_by_length``) and word dropout (``data.word_dropout``); the checkpoint with
the best validation accuracy is kept (early stopping on it) and scores the test split. Each seed
leaves a run directory under ``out_dir/runs/``; with ``model.ensemble: K`` a seed's model is a
K-member seed ensemble (seeds s..s+K-1, averaged probabilities, members under the run's
``members/``). Baselines, fitted on the same training
split and scored on the same test split: the majority class, and logistic regression on binary
bag-of-words and on uni+bigram TF-IDF features of the same tokens, each with ``C`` picked on the
validation split. Metrics: accuracy and macro F1.

Plots: ``length_buckets.png`` (test accuracy by snippet length, RNN vs the strongest baseline) and
``learning_curves.png`` (validation accuracy per epoch, each seed, with the baselines' levels).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.apps._common import (
    ValidationCurve,
    app_experiment,
    app_settings,
    record,
    timer,
)
from rnnkit.data import load
from rnnkit.data.batching import SequenceDataset
from rnnkit.evaluate import accuracy, macro_f1, majority_class
from rnnkit.train import DataParts, fit, load_run
from rnnkit.train.predict import predict_classes

APP = "sentiment"


# ---- recipe ----------------------------------------------------------------------------------


@dataclass
class DatasetSettings:
    """``rnnkit.data.load(name, **rest)``: the set's own seeded split and vocabulary."""

    name: str = "rotten_tomatoes"
    min_freq: int = 2  # vocab: training-split words seen at least this often
    max_size: int | None = 20000  # vocab entries, specials included
    val_fraction: float = 0.1  # validation split (model selection, C of the baselines)
    test_fraction: float = 0.1  # test split (reported numbers only)
    seed: int = 0  # the split is fixed; the run seeds vary the model only


@dataclass
class Baselines:
    C_grid: list[float] = field(
        default_factory=lambda: [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
    )

    def __post_init__(self) -> None:
        if not self.C_grid or any(c <= 0 for c in self.C_grid):
            raise ValueError(
                f"baselines.C_grid must be a non-empty list of numbers > 0, got {self.C_grid}"
            )


@dataclass
class Plot:
    length_edges: list[int] = field(default_factory=lambda: [10, 15, 20, 25, 30, 40])

    def __post_init__(self) -> None:
        if any(e <= 1 for e in self.length_edges):
            raise ValueError(f"plot.length_edges must be ints > 1, got {self.length_edges}")


@dataclass
class Settings:
    """The recipe's application keys; training is the ``experiment:`` section (`rnnkit fit`'s)."""

    dataset: DatasetSettings = field(default_factory=DatasetSettings)
    max_train: int | None = None  # subsample the training split (None: all of it)
    baselines: Baselines = field(default_factory=Baselines)
    plot: Plot = field(default_factory=Plot)

    def __post_init__(self) -> None:
        if self.max_train is not None and self.max_train < 1:
            raise ValueError(f"max_train must be >= 1 or null, got {self.max_train}")


def experiment(config: dict[str, Any], settings: Settings, *, seed: int, root: Path) -> Any:
    """One seed's `ClassificationExperiment`, checked like `rnnkit fit` checks a recipe."""
    fixed = {
        "task": "classification",
        "seed": seed,
        # the source is recorded (the samples are the app's); the length buckets' shuffle follows
        # the run's seed, as the model's initialisation does
        "data": {"source": settings.dataset.name, "seed": seed},
        "run": {"root": str(root), "name": f"sentiment-seed{seed}", "plot": False},
    }
    return app_experiment(APP, config.get("experiment", {}), fixed)


# ---- data ------------------------------------------------------------------------------------


def _load(settings: DatasetSettings) -> Any:
    opts = {k: v for k, v in vars(settings).items() if k != "name"}
    return load(settings.name, **opts)


def _texts(data: SequenceDataset, vocab: Any) -> list[str]:
    """The tokens the RNN sees (unknown words as ``<unk>``), joined by spaces, for sklearn."""
    return [" ".join(vocab.decode(s.tolist())) for s in data.sequences]


# ---- baselines -------------------------------------------------------------------------------


def _fit_logreg(
    kind: str,
    train: tuple[list[str], np.ndarray],
    val: tuple[list[str], np.ndarray],
    test_texts: list[str],
    grid: list[float],
) -> dict[str, Any]:
    """Logistic regression on ``bow`` (binary unigram counts) or ``tfidf`` (uni+bigram) features;
    C picked by validation accuracy; returns test predictions and the chosen C."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    # tokens are already split; keep every token (punctuation and one-letter words included)
    common: dict[str, Any] = {"token_pattern": r"\S+", "lowercase": False}
    vec: Any = (
        CountVectorizer(binary=True, **common)
        if kind == "bow"
        else TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, **common)
    )
    xtr = vec.fit_transform(train[0])
    xva, xte = vec.transform(val[0]), vec.transform(test_texts)
    scores = []
    for c in grid:
        clf = LogisticRegression(C=c, max_iter=2000, solver="liblinear")
        clf.fit(xtr, train[1])
        scores.append(accuracy(val[1], clf.predict(xva)))
    best = grid[int(np.argmax(scores))]
    clf = LogisticRegression(C=best, max_iter=2000, solver="liblinear").fit(xtr, train[1])
    return {
        "pred": clf.predict(xte),
        "C": best,
        "val_acc": max(scores),
        "features": int(xtr.shape[1]),
    }


# ---- the recurrent model ---------------------------------------------------------------------


def _describe(spec: Any) -> str:
    bi = "bi" if spec.bidirectional else ""
    pool, emb = spec.pooling, spec.embedding_dim
    members = f", {spec.ensemble}-seed ensemble" if spec.ensemble > 1 else ""
    return f"{bi}{spec.cell.upper()} {spec.hidden_size} ({pool} pool, emb {emb}{members})"


# ---- plots -----------------------------------------------------------------------------------


def _length_plot(
    out: Path,
    lengths: np.ndarray,
    y: np.ndarray,
    preds: dict[str, list[np.ndarray]],
    edges: list[int],
) -> list[dict[str, Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bounds = [*edges, int(lengths.max()) + 1]
    lows = [1, *[e for e in edges]]
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(lows, bounds, strict=True)]
    buckets = [(lengths >= lo) & (lengths < hi) for lo, hi in zip(lows, bounds, strict=True)]
    rows = []
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(preds)
    for k, (name, runs) in enumerate(preds.items()):
        means, stds = [], []
        for b in buckets:
            accs = [float(np.mean(p[b] == y[b])) for p in runs]
            means.append(float(np.mean(accs)))
            stds.append(float(np.std(accs)))
        pos = np.arange(len(buckets)) + (k - (len(preds) - 1) / 2) * width
        ax.bar(pos, means, width, yerr=stds if len(runs) > 1 else None, label=name, capsize=3)
        rows.append({"model": name, "buckets": labels, "accuracy": means})
    for i, b in enumerate(buckets):
        ax.text(i, 0.51, f"n={int(b.sum())}", ha="center", fontsize=8)
    ax.set_xticks(np.arange(len(buckets)), labels)
    ax.set_xlabel("snippet length (tokens)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0.5, 1.0)
    ax.set_title("Rotten Tomatoes test accuracy by snippet length")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "length_buckets.png", dpi=110)
    plt.close(fig)
    return rows


def _curve_plot(out: Path, curves: dict[str, list[float]], levels: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for seed, curve in curves.items():  # a member of seed s's ensemble: "s/member seed"
        ax.plot(range(1, len(curve) + 1), curve, marker="o", label=f"RNN, seed {seed}")
    for (name, level), style in zip(levels.items(), ("--", ":", "-."), strict=False):
        ax.axhline(level, color="gray", linestyle=style, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Validation accuracy per epoch (model selection picks the best epoch)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=110)
    plt.close(fig)


# ---- the application -------------------------------------------------------------------------


def run(config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool) -> list[dict]:
    """Train the RNN over ``seeds``, fit the baselines once, and return the records."""
    if not seeds:
        raise ValueError(f"{APP}: no seeds given")
    settings = app_settings(Settings, config, app=APP)
    grid, edges = settings.baselines.C_grid, settings.plot.length_edges
    root = out_dir / "runs"
    exp = experiment(
        config, settings, seed=seeds[0], root=root
    )  # checked before anything is fitted
    data = _load(settings.dataset)
    name = settings.dataset.name
    vocab = data.meta["vocab"]
    train, val, test = data.train, data.val, data.test
    if settings.max_train is not None and settings.max_train < len(train):
        keep = np.random.default_rng(0).permutation(len(train))[: settings.max_train]
        train = SequenceDataset(
            [train.sequences[i] for i in keep], [train.labels[i] for i in keep], source=train.source
        )
    y_tr, y_va, y_te = (np.asarray(d.labels) for d in (train, val, test))
    lengths = np.asarray(test.lengths)

    # baselines: deterministic given the split, so computed once and shared by every seed
    cpu0 = time.process_time()
    with timer() as t_base:
        majority = majority_class(y_tr.tolist())
        maj_pred = np.full_like(y_te, majority)
        tr_txt, va_txt, te_txt = _texts(train, vocab), _texts(val, vocab), _texts(test, vocab)
        logreg = {
            kind: _fit_logreg(kind, (tr_txt, y_tr), (va_txt, y_va), te_txt, grid)
            for kind in ("bow", "tfidf")
        }
    base_cpu = time.process_time() - cpu0
    base_names = {
        "majority": "majority class (train)",
        "bow": f"BoW logistic regression (C={logreg['bow']['C']:g} on val)",
        "tfidf": f"uni+bigram TF-IDF logistic regression (C={logreg['tfidf']['C']:g} on val)",
    }
    base_preds = {"majority": maj_pred, **{k: v["pred"] for k, v in logreg.items()}}
    base_scores = {
        k: {"accuracy": accuracy(y_te, p), "macro_f1": macro_f1(y_te, p)}
        for k, p in base_preds.items()
    }
    # the strongest baseline is the logistic regression with the better VALIDATION accuracy
    strongest = max(("bow", "tfidf"), key=lambda k: logreg[k]["val_acc"])

    train_s, val_s, test_s = (
        list(zip(d.sequences, d.labels or [], strict=True)) for d in (train, val, test)
    )
    parts = DataParts(train_s, val_s, test_s, {"vocab": vocab, "classes": data.meta["classes"]})
    rnn_preds: list[np.ndarray] = []
    curves: dict[str, list[float]] = {}  # "seed" or, for an ensemble, "seed/member seed"
    chosen: list[Any] = []  # the epoch kept: per seed, or per member of a seed's ensemble
    val_acc: list[float] = []  # the kept model's (an ensemble's averaged) validation accuracy
    walls: list[float] = []
    cpus: list[float] = []  # process CPU seconds (all threads): comparable on a shared machine
    runs: list[str] = []
    n_params = 0
    for seed in seeds:
        exp = experiment(config, settings, seed=seed, root=root)
        run_dir = root / str(exp.run.name)
        if run_dir.exists():
            shutil.rmtree(run_dir)  # this app's own folder from an earlier run
        curve = ValidationCurve("val_accuracy")
        cpu0 = time.process_time()
        with timer() as t:
            result = fit(exp, data=parts, callbacks=[curve], test=True)
            # the run's artifact holds the best checkpoint's weights, as `rnnkit predict` loads it
            rnn_preds.append(predict_classes(load_run(result.run_dir).model, test_s))
        members = result.summary.get("members") or [result.summary]  # an ensemble's, or itself
        for i, values in enumerate(curve.fits):
            curves[f"{seed}/{seed + i}" if len(members) > 1 else str(seed)] = values
        walls.append(t["s"])
        cpus.append(time.process_time() - cpu0)
        # the checkpoint kept (ties broken by the loss)
        best = [None if m["best_epoch"] is None else int(m["best_epoch"]) + 1 for m in members]
        chosen.append(best[0] if len(best) == 1 else best)
        val_acc.append(float(result.metrics["val_accuracy"]))
        runs.append(str(result.run_dir))
        n_params = int(result.summary["parameters"])
    model_name = _describe(exp.model)
    scores = {
        "accuracy": [accuracy(y_te, p) for p in rnn_preds],
        "macro_f1": [macro_f1(y_te, p) for p in rnn_preds],
    }

    common: dict[str, Any] = {
        "app": APP,
        "dataset": f"{name} ({len(train)}/{len(val)}/{len(test)} train/val/test)",
        "higher_is_better": True,
        "seeds": seeds,
        "wall_s": float(np.mean(walls)),
        "per_seed_wall_s": [round(w, 1) for w in walls],
        "per_seed_cpu_s": [round(c, 1) for c in cpus],
        "baseline_fit_s": round(t_base["s"], 1),
        "baseline_fit_cpu_s": round(base_cpu, 1),
        "params": n_params,
        "vocab_size": len(vocab),
        "epochs_kept": chosen,
        "val_accuracy": val_acc,
        "val_curves": curves,
        "selection": f"{exp.run.monitor} ({exp.run.monitor_mode}), "
        f"patience {exp.early_stopping.patience} validations",
        "runs": runs,
    }
    records = []
    for metric in ("accuracy", "macro_f1"):
        for key in (strongest, "majority", *(k for k in ("bow", "tfidf") if k != strongest)):
            headline = (metric == "accuracy" and key in (strongest, "majority")) or (
                metric == "macro_f1" and key == strongest
            )
            extra: dict[str, Any] = {}
            if key in logreg:
                extra = {
                    "baseline_C": logreg[key]["C"],
                    "baseline_val_accuracy": logreg[key]["val_acc"],
                    "baseline_features": logreg[key]["features"],
                }
            records.append(
                record(
                    model=model_name,
                    metric=metric,
                    values=scores[metric],
                    baseline=base_names[key],
                    baseline_values=base_scores[key][metric],
                    headline=headline,
                    strongest_baseline=key == strongest,
                    **extra,
                    **common,
                )
            )
    records.append(
        record(
            model=model_name,
            metric="accuracy",
            values=scores["accuracy"],
            baseline="Kim (2014) CNN on MR, published; a different split/version of the corpus",
            baseline_values=0.815,
            headline=False,
            source="Kim 2014, Convolutional Neural Networks for Sentence Classification (EMNLP), "
            "Table 2, MR, CNN-static/non-static ~81.0-81.5% (10-fold CV); not this test split",
            published=True,
            **common,
        )
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = _length_plot(
        out_dir,
        lengths,
        y_te,
        {"RNN (" + model_name + ")": rnn_preds, base_names[strongest]: [base_preds[strongest]]},
        edges,
    )
    for rec in records:
        rec["length_buckets"] = rows
    levels = {f"{base_names[strongest]} (val)": logreg[strongest]["val_acc"],
              "majority class (val)": float(np.mean(y_va == majority))}  # fmt: skip
    _curve_plot(out_dir, curves, levels)
    return records
