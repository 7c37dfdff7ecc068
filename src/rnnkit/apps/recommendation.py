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
the end, with the best checkpoint. Each seed leaves a run directory under ``runs/``.

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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnkit.apps._common import merge, record, timer
from rnnkit.data import load
from rnnkit.models import LanguageModel
from rnnkit.models._common import gather_steps
from rnnkit.train import DataParts, ExtraMetrics, build, fit
from rnnkit.train.experiment_io import experiment_from_dict

APP = "recommendation"


# ---- recipe fields ----


def _field(cfg: dict[str, Any], dotted: str, kind: type, *, minimum: float | None = None) -> Any:
    """``cfg["a"]["b"]`` for ``"a.b"``, checked: a ``ValueError`` names the field."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"recipe field {dotted!r} is missing")
        node = node[part]
    ok = isinstance(node, kind) and not (kind is not bool and isinstance(node, bool))
    if kind is float and isinstance(node, int) and not isinstance(node, bool):
        node, ok = float(node), True
    if not ok:
        raise ValueError(f"recipe field {dotted!r} must be {kind.__name__}, got {node!r}")
    if minimum is not None and node < minimum:
        raise ValueError(f"recipe field {dotted!r} must be >= {minimum}, got {node!r}")
    return node


# ---- ranking metrics ----


def ranks(scores: Tensor, targets: Tensor) -> Tensor:
    """1-based rank of each target among the scores ``(N, V)``; ties count against the target."""
    target_scores = scores.gather(1, targets[:, None])  # (N, 1)
    return (scores >= target_scores).sum(dim=1)


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


def _exclusion(histories: list[Tensor], vocab: int, exclude_seen: bool) -> Tensor:
    """``(N, V)`` True where an item may not be recommended: padding 0, and seen items."""
    mask = torch.zeros(len(histories), vocab, dtype=torch.bool)
    mask[:, 0] = True
    if exclude_seen:
        for i, h in enumerate(histories):
            mask[i, h.long()] = True
    return mask


def _masked(scores: Tensor, mask: Tensor) -> Tensor:
    return scores.masked_fill(mask, float("-inf"))


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


def _pad(seqs: list[Tensor]) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    x = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    return x, lengths


def _length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


@torch.no_grad()
def model_scores(model: LanguageModel, histories: list[Tensor], batch_size: int = 32) -> Tensor:
    """Next-item logits ``(N, V)`` after each whole history (batched by length).

    Only each history's last state goes through the output layer: the model's ``forward`` would
    project every step to all V items, which costs as much as a training epoch's forward pass
    when it runs on every validation epoch."""
    was_training = model.training
    model.eval()
    out = torch.empty(len(histories), model.config.vocab_size)
    device = next(model.parameters()).device
    for idx in _length_batches([len(h) for h in histories], batch_size):
        x, lengths = _pad([histories[i] for i in idx])
        lengths = lengths.to(device)
        hidden, _ = model.rnn(model.inputs(x.to(device)), lengths=lengths)  # (B, T, P)
        last = gather_steps(hidden, lengths - 1)  # (B, P)
        if model.proj is not None:
            last = model.proj(last)  # (B, E)
        out[idx] = model.out(last).float().cpu()  # (B, V)
    model.train(was_training)
    return out


def _evaluate(
    scores: Tensor, histories: list[Tensor], targets: Tensor, cfg: dict[str, Any]
) -> Tensor:
    vocab = scores.shape[1]
    mask = _exclusion(histories, vocab, cfg["eval"]["exclude_seen"])
    return ranks(_masked(scores.double(), mask), targets)


def experiment(cfg: dict[str, Any], *, seed: int, root: Path) -> Any:
    """The recipe's ``experiment:`` as one seed's `LanguageModelExperiment` (sequences mode),
    monitoring validation NDCG@k."""
    k = _field(cfg, "eval.k", int, minimum=1)
    fixed = {
        "task": "language_model",
        "seed": seed,
        "data": {"mode": "sequences"},
        "run": {
            "root": str(root),
            "name": f"recommendation-seed{seed}",
            "plot": False,
            "monitor": f"val_ndcg@{k}",
            "monitor_mode": "max",
        },
        "sample_chars": 0,
    }
    if not isinstance(cfg.get("experiment"), dict):
        raise ValueError("recipe field 'experiment' is missing (a LanguageModelExperiment)")
    try:
        return experiment_from_dict(merge(cfg["experiment"], fixed))
    except ValueError as err:
        raise ValueError(f"recipe field 'experiment': {err}") from None


def train_model(
    cfg: dict[str, Any],
    train: list[Tensor],
    val_hist: list[Tensor],
    val_targets: Tensor,
    vocab: int,
    *,
    seed: int,
    root: Path,
) -> tuple[LanguageModel, list[float]]:
    """Train on every prefix of ``train`` through `rnnkit.train.fit`; the checkpoint with the best
    validation NDCG@k is kept. Returns that model and the NDCG@k after each epoch."""
    exp = experiment(cfg, seed=seed, root=root)
    k = cfg["eval"]["k"]
    run_dir = root / str(exp.run.name)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # this app's own folder from an earlier run
    seqs = [s for s in train if len(s) >= 2]  # a prefix needs a next item
    # Validation sequences (history + held-out item) give val_loss; the selection is on NDCG.
    val_seqs = [torch.cat([h, t[None]]) for h, t in zip(val_hist, val_targets, strict=True)]
    curve: list[float] = []

    def ndcg(module: Any) -> dict[str, float]:
        scores = model_scores(module.model, val_hist).to(torch.float64)
        metrics = rank_metrics(_evaluate(scores, val_hist, val_targets, cfg), k)
        if module.trainer.state.fn == "fit":  # not the final re-validation of the best checkpoint
            curve.append(metrics[f"ndcg@{k}"])
        return {f"ndcg@{k}": metrics[f"ndcg@{k}"], f"hr@{k}": metrics[f"hr@{k}"]}

    data = DataParts(seqs, val_seqs, None, {"vocab_size": vocab})
    built = build(exp, data=data)
    fit(exp, built=built, callbacks=[ExtraMetrics(ndcg)])  # ends on the best checkpoint
    model: LanguageModel = built.module.model.eval()
    return model, curve


# ---- the application ----

_FIELDS: list[tuple[str, type, float | None]] = [
    ("data.name", str, None),
    ("eval.k", int, 1),
    ("eval.curve_k", int, 1),
    ("eval.exclude_seen", bool, None),
]


def run(config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool) -> list[dict]:
    cfg = config
    for dotted, kind, low in _FIELDS:  # every field checked before anything is loaded
        _field(cfg, dotted, kind, minimum=low)
    experiment(cfg, seed=seeds[0] if seeds else 0, root=out_dir / "runs")
    k = _field(cfg, "eval.k", int, minimum=1)
    curve_k = _field(cfg, "eval.curve_k", int, minimum=1)
    _field(cfg, "eval.exclude_seen", bool)
    grid = cfg.get("baselines", {}).get("markov_smoothing", [1.0])
    if not grid or not all(isinstance(a, (int, float)) and a > 0 for a in grid):
        raise ValueError(
            f"recipe field 'baselines.markov_smoothing' must be positive numbers, got {grid!r}"
        )
    name = _field(cfg, "data.name", str)
    data = load(
        name,
        min_rating=float(cfg["data"].get("min_rating", 0.0)),
        max_users=cfg["data"].get("max_users"),
    )
    assert data.val is not None
    vocab = data.meta["n_items"] + 1  # id 0 is padding
    train = [s.long() for s in data.train.sequences]
    val_hist = [s.long() for s in data.val.sequences]
    val_y = torch.tensor(data.val.labels, dtype=torch.long)
    test_hist = [s.long() for s in data.test.sequences]
    test_y = torch.tensor(data.test.labels, dtype=torch.long)

    # baselines: deterministic, fitted on the training parts; Markov smoothing chosen on validation
    with timer() as tb:
        pop = Popularity(train, vocab)
        markov = Markov(train, vocab, pop)
        val_ndcg = {}
        for a in grid:
            markov.smoothing = float(a)
            r = _evaluate(markov.scores(val_hist), val_hist, val_y, cfg)
            val_ndcg[float(a)] = rank_metrics(r, k)[f"ndcg@{k}"]
        markov.smoothing = max(val_ndcg, key=lambda a: val_ndcg[a])
        base_rank = {
            "popularity": _evaluate(pop.scores(test_hist), test_hist, test_y, cfg),
            "markov": _evaluate(markov.scores(test_hist), test_hist, test_y, cfg),
        }
        base_val = {
            "popularity": rank_metrics(_evaluate(pop.scores(val_hist), val_hist, val_y, cfg), k),
            "markov": rank_metrics(_evaluate(markov.scores(val_hist), val_hist, val_y, cfg), k),
        }
    base = {n: rank_metrics(r, k) for n, r in base_rank.items()}

    per_seed: list[dict[str, float]] = []
    walls: list[float] = []
    curves: list[list[float]] = []
    first_rank: Tensor | None = None
    for seed in seeds:
        with timer() as t:
            model, curve = train_model(
                cfg, train, val_hist, val_y, vocab, seed=seed, root=out_dir / "runs"
            )
            rank = _evaluate(model_scores(model, test_hist), test_hist, test_y, cfg)
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
    ds = f"{name} (leave-one-out)"
    common = {
        "app": APP,
        "dataset": ds,
        "seeds": seeds,
        "wall_s": float(np.mean(walls)),
        "per_seed_wall_s": [round(w, 1) for w in walls],
        "users": len(test_y),
        "items": vocab - 1,
        "exclude_seen": cfg["eval"]["exclude_seen"],
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
