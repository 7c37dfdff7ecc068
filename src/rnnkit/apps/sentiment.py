"""Sentiment: fresh vs rotten Rotten Tomatoes snippets, a recurrent classifier vs bag-of-words.

Data: the registry set ``rotten_tomatoes`` (word ids, vocab from the training split) with its own
seeded train / validation / test split. The model is a `SequenceClassifier` (embedding ->
(bi)LSTM/GRU over each snippet's real words, padding skipped through ``lengths`` -> pooled ->
linear), trained with AdamW, gradient clipping and length-bucketed batches; the epoch with the best
validation accuracy is kept (early stopping on validation). Baselines, fitted on the same training
split and scored on the same test split: the majority class, and logistic regression on binary
bag-of-words and on uni+bigram TF-IDF features of the same tokens, each with ``C`` picked on the
validation split. Metrics: accuracy and macro F1.

Plots: ``length_buckets.png`` (test accuracy by snippet length, RNN vs the strongest baseline) and
``learning_curves.png`` (validation accuracy per epoch, each seed, with the baselines' levels).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.apps._common import config_field, record, seed_all, timer
from rnnkit.data import load
from rnnkit.data.batching import BucketSampler, SequenceDataset, collate
from rnnkit.evaluate import accuracy, macro_f1
from rnnkit.models import SequenceClassifier, SequenceClassifierConfig

APP = "sentiment"


# ---- recipe checks ---------------------------------------------------------------------------


def _field(config: dict[str, Any], path: str) -> Any:
    return config_field(config, path, APP)


def _int(config: dict[str, Any], path: str, *, low: int = 1) -> int:
    v = _field(config, path)
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{APP} recipe: field {path!r} must be an integer >= {low}, got {v!r}")
    return v


def _float(config: dict[str, Any], path: str, *, low: float = 0.0, high: float = math.inf) -> float:
    v = _field(config, path)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= v <= high:
        raise ValueError(
            f"{APP} recipe: field {path!r} must be a number in [{low}, {high}], got {v!r}"
        )
    return float(v)


def _optional_int(config: dict[str, Any], path: str) -> int | None:
    v = _field(config, path)
    return None if v is None else _int(config, path)


def _float_list(config: dict[str, Any], path: str) -> list[float]:
    v = _field(config, path)
    if (
        not isinstance(v, list)
        or not v
        or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and c > 0 for c in v)
    ):
        raise ValueError(
            f"{APP} recipe: field {path!r} must be a non-empty list of numbers > 0, got {v!r}"
        )
    return [float(c) for c in v]


@dataclass
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    clip: float
    word_dropout: float
    patience: int
    max_train: int | None


def _train_settings(config: dict[str, Any]) -> TrainSettings:
    return TrainSettings(
        epochs=_int(config, "train.epochs"),
        batch_size=_int(config, "train.batch_size"),
        lr=_float(config, "train.lr", low=1e-8),
        weight_decay=_float(config, "train.weight_decay"),
        clip=_float(config, "train.clip", low=1e-8),
        word_dropout=_float(config, "train.word_dropout", high=0.9),
        patience=_int(config, "train.patience"),
        max_train=_optional_int(config, "train.max_train"),
    )


def _model_config(config: dict[str, Any], vocab_size: int) -> SequenceClassifierConfig:
    m = _field(config, "model")
    if not isinstance(m, dict):
        raise ValueError(f"{APP} recipe: field 'model' must be a mapping, got {m!r}")
    allowed = {"cell", "embedding_dim", "hidden_size", "num_layers", "bidirectional", "dropout",
               "pooling"}  # fmt: skip
    unknown = sorted(set(m) - allowed)
    if unknown:
        raise ValueError(f"{APP} recipe: field 'model.{unknown[0]}' is not a model option")
    try:
        return SequenceClassifierConfig(num_outputs=2, vocab_size=vocab_size, padding_idx=0, **m)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{APP} recipe: field 'model': {err}") from None


# ---- data ------------------------------------------------------------------------------------


def _load(config: dict[str, Any]) -> Any:
    ds = _field(config, "dataset")
    if not isinstance(ds, dict) or "name" not in ds:
        raise ValueError(f"{APP} recipe: field 'dataset.name' is missing")
    opts = {k: v for k, v in ds.items() if k != "name"}
    return ds["name"], load(ds["name"], **opts)


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


def _batches(
    data: SequenceDataset, batch_size: int, *, shuffle: bool, seed: int, epoch: int = 0
) -> list[tuple[list[int], Any]]:
    sampler = BucketSampler(data.lengths, batch_size=batch_size, shuffle=shuffle, seed=seed)
    sampler.set_epoch(epoch)
    return [(idx, collate([data[i] for i in idx], source=data.source)) for idx in sampler]


@torch.no_grad()
def _predict(model: SequenceClassifier, data: SequenceDataset, batch_size: int) -> np.ndarray:
    model.eval()
    pred = np.zeros(len(data), dtype=np.int64)
    for idx, batch in _batches(data, batch_size, shuffle=False, seed=0):
        pred[idx] = model(batch.x, lengths=batch.lengths).argmax(-1).numpy()
    return pred


def _train_rnn(
    model: SequenceClassifier,
    train: SequenceDataset,
    val: SequenceDataset,
    settings: TrainSettings,
    *,
    seed: int,
) -> tuple[list[float], int]:
    """AdamW + clipping on length buckets; keeps the weights of the best validation epoch.

    Returns the validation accuracy per epoch and the (0-based) epoch kept."""
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps = settings.epochs * math.ceil(len(train) / settings.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=settings.lr, total_steps=steps, pct_start=0.1, anneal_strategy="cos"
    )
    y_val = np.asarray(val.labels)
    gen = torch.Generator().manual_seed(seed)
    curve: list[float] = []
    best_acc, best_epoch, best_state = -1.0, 0, None
    for epoch in range(settings.epochs):
        model.train()
        for _, batch in _batches(train, settings.batch_size, shuffle=True, seed=seed, epoch=epoch):
            x = batch.x
            if settings.word_dropout > 0:  # replace real words by <unk> at random (regulariser)
                drop = torch.rand(x.shape, generator=gen) < settings.word_dropout
                x = torch.where(drop & (x > 0), torch.ones_like(x), x)  # 1 = <unk>, 0 = <pad>
            assert batch.y is not None
            loss = model.loss(x, batch.y, lengths=batch.lengths)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
            opt.step()
            sched.step()
        acc = accuracy(y_val, _predict(model, val, 256))
        curve.append(acc)
        if acc > best_acc:
            best_acc, best_epoch = acc, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= settings.patience:
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    return curve, best_epoch


def _describe(cfg: SequenceClassifierConfig) -> str:
    bi = "bi" if cfg.bidirectional else ""
    return f"{bi}{cfg.cell.upper()} {cfg.hidden_size} ({cfg.pooling} pool, emb {cfg.embedding_dim})"


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


def _curve_plot(out: Path, curves: dict[int, list[float]], levels: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for seed, curve in curves.items():
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
    settings = _train_settings(config)
    grid = _float_list(config, "baselines.C_grid")
    edges = _field(config, "plot.length_edges")
    if not isinstance(edges, list) or not all(isinstance(e, int) and e > 1 for e in edges):
        raise ValueError(f"{APP} recipe: field 'plot.length_edges' must be a list of ints > 1")
    _optional_int(config, "threads")  # checked here, applied by run_app
    name, data = _load(config)
    vocab = data.meta["vocab"]
    cfg = _model_config(config, len(vocab))  # checked before anything is fitted
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
        majority = int(np.bincount(y_tr).argmax())
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

    rnn_preds: list[np.ndarray] = []
    curves: dict[int, list[float]] = {}
    chosen: list[int] = []
    walls: list[float] = []
    cpus: list[float] = []  # process CPU seconds (all threads): comparable on a shared machine
    for seed in seeds:
        seed_all(seed)
        cpu0 = time.process_time()
        with timer() as t:
            model = SequenceClassifier(cfg)
            curve, best = _train_rnn(model, train, val, settings, seed=seed)
            rnn_preds.append(_predict(model, test, 256))
        curves[seed] = curve
        walls.append(t["s"])
        cpus.append(time.process_time() - cpu0)
        chosen.append(best + 1)
    model_name = _describe(cfg)
    n_params = sum(p.numel() for p in model.parameters())
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
        "epochs_kept": chosen,
        "val_curves": {str(k): v for k, v in curves.items()},
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
