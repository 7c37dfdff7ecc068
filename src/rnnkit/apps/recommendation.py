"""Next-item recommendation on MovieLens-100K: a GRU4Rec-style model against popularity and Markov.

Each user's ratings, ordered by time (ties broken by item id), form one item sequence.
Leave-one-out: the last item is the test target, the second-to-last the validation target, the
rest is training data (``rnnkit.data.load("movielens_100k")``). The model is an item embedding, a
GRU and a full softmax over every item (:class:`rnnkit.models.LanguageModel` over item ids, padded
batches with lengths), trained with cross-entropy on every prefix of the training sequences
(GRU4Rec, Hidasi et al. 2016, here with a full softmax instead of sampled ranking losses) by the
library's trainer: `rnnkit.train.fit` on the recipe's ``experiment:`` (a `LanguageModelExperiment`,
``data.mode: sequences``), validation NDCG@k logged as ``val_ndcg@k`` each epoch and monitored
(higher is better) for the best checkpoint and early stopping; the test split is scored once, at
the end, with the best checkpoint. Each seed leaves a run directory under ``runs/`` that keeps
its test split (each user's history with the held-out item), so `rnnkit test` scores it and
`rnnkit predict` ranks every held-out item as this app does (top-k, seen items left out).

Evaluation ranks all items for each user's held-out item given the user's whole history, excluding
items the user already rated (``eval.exclude_seen``); ties count against the target (pessimistic).
Metrics: HR@k (hit rate: target in the top k), NDCG@k (``1 / log2(1 + rank)`` inside the top k) and
MRR (mean ``1 / rank`` over the full ranking).

Baselines, fitted on the training parts only: most popular items (trivial), and a first-order
Markov chain -- bigram counts ``last item -> next item`` smoothed towards popularity with a
pseudo-count chosen on the validation split.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from rnnkit.apps._common import app_experiment, app_settings, record, timer
from rnnkit.data import load
from rnnkit.models import LanguageModel
from rnnkit.train import DataParts, ExtraMetrics, build, fit
from rnnkit.train.predict import next_token_scores, rankable, target_ranks

APP = "recommendation"


# ---- recipe ----


@dataclass
class DataSettings:
    """``rnnkit.data.load(name, ...)``: every user's ratings in time order, leave-one-out."""

    name: Literal["movielens_100k"] = "movielens_100k"
    min_rating: float = 0.0  # ratings below this are dropped (0: every rating is an interaction)
    max_users: int | None = None  # the first N users (None: all 943)

    def __post_init__(self) -> None:
        if self.max_users is not None and self.max_users < 1:
            raise ValueError(f"data.max_users must be null or >= 1, got {self.max_users}")


@dataclass
class EvalSettings:
    k: int = 10  # HR@k and NDCG@k (validation NDCG@k selects the checkpoint)
    exclude_seen: bool = True  # items the user already rated are not ranked
    curve_k: int = 50  # HR@k plotted for k = 1..curve_k

    def __post_init__(self) -> None:
        for name in ("k", "curve_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"eval.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Baselines:
    # Markov: P(next | last) from training bigram counts, smoothed towards popularity with this
    # pseudo-count; the value is chosen on the validation split.
    markov_smoothing: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0, 100.0])

    def __post_init__(self) -> None:
        if not self.markov_smoothing or any(not a > 0 for a in self.markov_smoothing):
            raise ValueError(
                "baselines.markov_smoothing must be a non-empty list of numbers > 0, got "
                f"{self.markov_smoothing}"
            )


@dataclass
class Settings:
    """The recipe's application keys; training is the ``experiment:`` section (`rnnkit fit`'s)."""

    data: DataSettings = field(default_factory=DataSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    baselines: Baselines = field(default_factory=Baselines)


# ---- ranking metrics ----


def rank_metrics(rank: Tensor, k: int) -> dict[str, float]:
    """HR@k, NDCG@k and MRR of 1-based ranks."""
    r = rank.double()
    hit = r <= k
    return {
        f"hr@{k}": float(hit.double().mean()),
        f"ndcg@{k}": float(torch.where(hit, 1.0 / torch.log2(r + 1.0), 0.0).mean()),
        "mrr": float((1.0 / r).mean()),
    }


def hit_curve(rank: Tensor, max_k: int) -> np.ndarray:
    """HR@k for k = 1..max_k."""
    return np.array([float((rank <= k).double().mean()) for k in range(1, max_k + 1)])


# ---- baselines ----


class Popularity:
    """Scores every item by its count in the training sequences."""

    def __init__(self, sequences: list[Tensor], vocab: int) -> None:
        counts = np.zeros(vocab)
        for s in sequences:
            np.add.at(counts, s.numpy(), 1.0)
        self.counts = counts
        self.prob = counts / counts.sum()

    def scores(self, histories: list[Tensor]) -> Tensor:
        return torch.from_numpy(np.tile(self.counts, (len(histories), 1)))


class Markov:
    """First-order Markov chain over items: ``P(next | last)`` from training bigram counts,
    ``(count(last, next) + a * P_pop(next)) / (count(last, .) + a)``."""

    def __init__(self, sequences: list[Tensor], vocab: int, popularity: Popularity) -> None:
        counts = np.zeros((vocab, vocab))
        for s in sequences:
            ids = s.numpy()
            np.add.at(counts, (ids[:-1], ids[1:]), 1.0)
        self.counts = counts
        self.row = counts.sum(axis=1)
        self.pop = popularity.prob
        self.smoothing = 1.0

    def scores(self, histories: list[Tensor]) -> Tensor:
        last = np.array([int(h[-1]) for h in histories])
        a = self.smoothing
        p = (self.counts[last] + a * self.pop[None, :]) / (self.row[last, None] + a)
        return torch.from_numpy(p)


# ---- the model ----


def model_scores(model: LanguageModel, histories: list[Tensor], batch_size: int = 32) -> Tensor:
    """Next-item logits ``(N, V)`` after each whole history (`rnnkit.train.next_token_scores`:
    batched by length, only each history's last step projected to all V items)."""
    return next_token_scores(model, histories, batch_size=batch_size)


def _evaluate(
    scores: Tensor, histories: list[Tensor], targets: Tensor, settings: EvalSettings
) -> Tensor:
    # padding (id 0) never offered; the same rule `rnnkit predict` reads from the run (parts())
    masked = rankable(scores, histories, exclude=[0], exclude_seen=settings.exclude_seen)
    return target_ranks(masked, targets)


def experiment(config: dict[str, Any], settings: Settings, *, seed: int, root: Path) -> Any:
    """The recipe's ``experiment:`` as one seed's `LanguageModelExperiment` (sequences mode),
    monitoring validation NDCG@k."""
    fixed = {
        "task": "language_model",
        "seed": seed,
        "data": {"mode": "sequences"},
        "run": {
            "root": str(root),
            "name": f"recommendation-seed{seed}",
            "plot": False,
            "monitor": f"val_ndcg@{settings.eval.k}",
            "monitor_mode": "max",
        },
        "sample_chars": 0,
    }
    return app_experiment(APP, config.get("experiment", {}), fixed)


@dataclass
class Sessions:
    """The leave-one-out splits as item-id tensors (items are ``1..n_items``, 0 is padding)."""

    train: list[Tensor]  # each user's sequence without its last two items
    val_hist: list[Tensor]  # = train; the second-to-last item is the validation target
    val_y: Tensor
    test_hist: list[Tensor]  # = train + the validation item; the last item is the test target
    test_y: Tensor
    vocab: int  # n_items + 1
    names: list[str]  # item names by id (id 0: padding)


def load_sessions(settings: DataSettings) -> Sessions:
    data = load(settings.name, min_rating=settings.min_rating, max_users=settings.max_users)
    assert data.val is not None
    return Sessions(
        train=[s.long() for s in data.train.sequences],
        val_hist=[s.long() for s in data.val.sequences],
        val_y=torch.tensor(data.val.labels, dtype=torch.long),
        test_hist=[s.long() for s in data.test.sequences],
        test_y=torch.tensor(data.test.labels, dtype=torch.long),
        vocab=data.meta["n_items"] + 1,
        names=["<pad>", *data.meta["titles"]],
    )


def parts(data: Sessions, settings: Settings) -> DataParts:
    """What the trainer gets: every training sequence with a next item, and each user's history
    plus held-out item for validation and test (the run keeps the test split, so `rnnkit test`
    and `rnnkit predict` read it). ``next_token`` tells `rnnkit predict` how this app ranks."""

    def held_out(hist: list[Tensor], y: Tensor) -> list[Tensor]:
        return [torch.cat([h, t[None]]) for h, t in zip(hist, y, strict=True)]

    meta = {
        "vocab_size": data.vocab,
        "next_token": {
            "top_k": settings.eval.k,
            "exclude_seen": settings.eval.exclude_seen,
            "exclude": [0],  # padding
        },
        "token_names": data.names,
    }
    return DataParts(
        [s for s in data.train if len(s) >= 2],  # a prefix needs a next item
        held_out(data.val_hist, data.val_y),
        held_out(data.test_hist, data.test_y),
        meta,
    )


def train_model(
    config: dict[str, Any], settings: Settings, data: Sessions, *, seed: int, root: Path
) -> tuple[LanguageModel, list[float]]:
    """Train on every prefix of the training sequences through `rnnkit.train.fit`; the checkpoint
    with the best validation NDCG@k is kept. Returns that model and the NDCG@k after each epoch."""
    exp = experiment(config, settings, seed=seed, root=root)
    k = settings.eval.k
    run_dir = root / str(exp.run.name)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # this app's own folder from an earlier run
    # The validation sequences give val_loss; the selection is on NDCG.
    curve: list[float] = []

    def ndcg(module: Any) -> dict[str, float]:
        scores = model_scores(module.model, data.val_hist).to(torch.float64)
        metrics = rank_metrics(_evaluate(scores, data.val_hist, data.val_y, settings.eval), k)
        if module.trainer.state.fn == "fit":  # not the final re-validation of the best checkpoint
            curve.append(metrics[f"ndcg@{k}"])
        return {f"ndcg@{k}": metrics[f"ndcg@{k}"], f"hr@{k}": metrics[f"hr@{k}"]}

    built = build(exp, data=parts(data, settings))
    fit(exp, built=built, callbacks=[ExtraMetrics(ndcg)])  # ends on the best checkpoint
    model: LanguageModel = built.module.model.eval()
    return model, curve


# ---- the application ----


def check_config(config: dict[str, Any]) -> Settings:
    """The recipe's settings, with its ``experiment:`` checked too (before anything is loaded);
    a bad field is a one-line ``ValueError`` naming it."""
    settings = app_settings(Settings, config, app=APP)
    experiment(config, settings, seed=0, root=Path("runs"))
    return settings


def run(config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool) -> list[dict]:
    settings = check_config(config)
    k, curve_k, ev = settings.eval.k, settings.eval.curve_k, settings.eval
    data = load_sessions(settings.data)
    train, val_hist, val_y = data.train, data.val_hist, data.val_y
    test_hist, test_y, vocab = data.test_hist, data.test_y, data.vocab

    # baselines: deterministic, fitted on the training parts; Markov smoothing chosen on validation
    with timer() as tb:
        pop = Popularity(train, vocab)
        markov = Markov(train, vocab, pop)
        val_ndcg = {}
        for a in settings.baselines.markov_smoothing:
            markov.smoothing = float(a)
            r = _evaluate(markov.scores(val_hist), val_hist, val_y, ev)
            val_ndcg[float(a)] = rank_metrics(r, k)[f"ndcg@{k}"]
        markov.smoothing = max(val_ndcg, key=lambda a: val_ndcg[a])
        base_rank = {
            "popularity": _evaluate(pop.scores(test_hist), test_hist, test_y, ev),
            "markov": _evaluate(markov.scores(test_hist), test_hist, test_y, ev),
        }
        base_val = {
            "popularity": rank_metrics(_evaluate(pop.scores(val_hist), val_hist, val_y, ev), k),
            "markov": rank_metrics(_evaluate(markov.scores(val_hist), val_hist, val_y, ev), k),
        }
    base = {n: rank_metrics(r, k) for n, r in base_rank.items()}

    per_seed: list[dict[str, float]] = []
    walls: list[float] = []
    curves: list[list[float]] = []
    first_rank: Tensor | None = None
    for seed in seeds:
        with timer() as t:
            model, curve = train_model(config, settings, data, seed=seed, root=out_dir / "runs")
            rank = _evaluate(model_scores(model, test_hist), test_hist, test_y, ev)
        per_seed.append(rank_metrics(rank, k))
        walls.append(t["s"])
        curves.append(curve)
        if first_rank is None:
            first_rank = rank
    assert first_rank is not None

    _plot_hits(
        out_dir / "hit_rate.png",
        {f"GRU4Rec (seed {seeds[0]})": hit_curve(first_rank, curve_k)}
        | {f"{n}": hit_curve(r, curve_k) for n, r in base_rank.items()},
        len(test_y),
    )
    _plot_curves(out_dir / "validation.png", curves, seeds, base_val, k)

    strongest = max(base, key=lambda n: base_val[n][f"ndcg@{k}"])
    ds = f"{settings.data.name} (leave-one-out)"
    common: dict[str, Any] = {
        "app": APP,
        "dataset": ds,
        "seeds": seeds,
        "wall_s": float(np.mean(walls)),
        "per_seed_wall_s": [round(w, 1) for w in walls],
        "users": len(test_y),
        "items": vocab - 1,
        "exclude_seen": ev.exclude_seen,
        "markov_smoothing": markov.smoothing,
        "strongest_baseline": strongest,
        "baseline_wall_s": round(tb["s"], 1),
        "runs": [str(out_dir / "runs" / f"recommendation-seed{s}") for s in seeds],
    }
    labels = {"popularity": "most popular", "markov": "Markov (last item)"}
    records = []
    for metric, heads in ((f"hr@{k}", ("markov", "popularity")), (f"ndcg@{k}", ("markov",))):
        for b in ("markov", "popularity"):
            records.append(
                record(
                    model="GRU4Rec (GRU, full softmax)",
                    metric=metric.upper(),
                    higher_is_better=True,
                    values=[s[metric] for s in per_seed],
                    baseline=labels[b],
                    baseline_values=base[b][metric],
                    headline=b in heads,
                    **common,
                )
            )
    records.append(
        record(
            model="GRU4Rec (GRU, full softmax)",
            metric="MRR",
            higher_is_better=True,
            values=[s["mrr"] for s in per_seed],
            baseline=labels["markov"],
            baseline_values=base["markov"]["mrr"],
            headline=False,
            **common,
        )
    )
    return records


def _plot_hits(path: Path, curves: dict[str, np.ndarray], users: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, hr in curves.items():
        ax.plot(np.arange(1, len(hr) + 1), hr, label=label)
    ax.set_xlabel("k (list length)")
    ax.set_ylabel("HR@k (test)")
    ax.set_title(f"MovieLens-100K next item, {users} users, all items ranked")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_curves(
    path: Path,
    curves: list[list[float]],
    seeds: list[int],
    base_val: dict[str, dict[str, float]],
    k: int,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for seed, c in zip(seeds, curves, strict=True):
        ax.plot(np.arange(1, len(c) + 1), c, marker="o", label=f"GRU4Rec seed {seed}")
    for n, style in (("markov", "--"), ("popularity", ":")):
        ax.axhline(base_val[n][f"ndcg@{k}"], color="gray", ls=style, label=n)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"NDCG@{k} (validation)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
