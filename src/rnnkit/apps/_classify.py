"""The training loop the classification applications share (sequence sets and digits).

A compact, seeded loop around :class:`rnnkit.models.SequenceClassifier`: AdamW (weight decay on
matrices only), gradient-norm clipping, mini-batches of padded sequences with their ``lengths``,
and model selection on a VALIDATION split carved from the training data: the weights of the epoch
with the best validation accuracy (ties: lower validation loss) are kept, and training stops after
``patience`` epochs without improvement. The test split is never looked at here.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.data import SequenceDataset, collate
from rnnkit.models import SequenceClassifier
from rnnkit.models.classifier import SequenceClassifierConfig


@dataclass
class TrainSettings:
    """How one classifier is trained (the ``train:`` block of a recipe)."""

    epochs: int = 60  # most passes over the training split
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-2
    clip: float = 1.0  # gradient-norm clipping
    patience: int = 15  # stop after this many epochs without a better validation score
    min_epochs: int = 1  # never stop before this many epochs

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "min_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"train.{name} must be an integer >= 1, got {value!r}")
        for name in ("lr", "clip"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"train.{name} must be a number > 0, got {value!r}")
        wd = self.weight_decay
        if isinstance(wd, bool) or not isinstance(wd, (int, float)) or wd < 0:
            raise ValueError(f"train.weight_decay must be a number >= 0, got {wd!r}")


def _from_dict(cls: Any, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r}; known: {sorted(known)}")
    return cls(**data)


def train_settings(data: Any) -> TrainSettings:
    """``TrainSettings`` from a recipe's ``train:`` mapping; errors name the field."""
    result: TrainSettings = _from_dict(TrainSettings, data, "train")
    return result


_MODEL_FIELDS = ("cell", "hidden_size", "num_layers", "bidirectional", "dropout", "pooling")


def model_config(data: Any, *, input_size: int, num_classes: int) -> SequenceClassifierConfig:
    """A classifier config from a recipe's ``model:`` mapping (cell, sizes, pooling, dropout)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"model must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_MODEL_FIELDS))
    if unknown:
        raise ValueError(f"model: unknown field {unknown[0]!r}; known: {list(_MODEL_FIELDS)}")
    try:
        return SequenceClassifierConfig(
            num_outputs=num_classes, input_size=input_size, task="classification", **data
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"model: {err}") from None


@dataclass
class Padded:
    """A whole split as padded tensors: ``x (N, T, I)``, ``lengths (N,)``, ``y (N,)``."""

    x: Tensor
    lengths: Tensor
    y: Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def rows(self, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Rows ``idx``, trimmed to their own longest sequence."""
        lengths = self.lengths[idx]
        steps = int(lengths.max())
        return self.x[idx, :steps], lengths, self.y[idx]


def padded(data: SequenceDataset) -> Padded:
    """Pad a labelled ``SequenceDataset`` once (these sets fit in memory many times over)."""
    if data.labels is None:
        raise ValueError(f"{data.source}: classification needs labels")
    batch = collate([data[i] for i in range(len(data))], source=data.source)
    x = batch.x if batch.x.dim() == 3 else batch.x[..., None].float()
    assert batch.y is not None
    return Padded(x.float(), batch.lengths, batch.y.long())


def subset(data: SequenceDataset, idx: Sequence[int] | np.ndarray, source: str) -> SequenceDataset:
    """Rows ``idx`` of ``data`` as a new ``SequenceDataset``."""
    labels = None if data.labels is None else [data.labels[int(i)] for i in idx]
    return SequenceDataset([data.sequences[int(i)] for i in idx], labels, source=source)


def stratified_split(
    labels: Sequence[int] | np.ndarray, fraction: float, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held) indices; ``held`` takes ``round(fraction * n_c)`` of each class ``c``
    (at least one where a class has two or more members), chosen with ``seed``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {fraction!r}")
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n = min(len(idx) - 1, max(1, round(fraction * len(idx))))
        held.extend(idx[:n].tolist())
    held_arr = np.sort(np.asarray(held, dtype=np.int64))
    keep = np.setdiff1d(np.arange(len(y)), held_arr)
    return keep, held_arr


@dataclass
class FitResult:
    """What training chose: the epoch kept, its validation score, and the curves."""

    best_epoch: int
    val_accuracy: float
    val_loss: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)


@torch.no_grad()
def evaluate(
    model: SequenceClassifier, data: Padded, *, batch_size: int = 512
) -> tuple[np.ndarray, float]:
    """Predicted class ids ``(N,)`` and the mean cross-entropy over ``data``."""
    model.eval()
    preds, total = [], 0.0
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)))
        x, lengths, y = data.rows(idx)
        logits = model(x, lengths=lengths)
        total += float(F.cross_entropy(logits, y, reduction="sum"))
        preds.append(logits.argmax(dim=1))
    return torch.cat(preds).numpy(), total / max(1, len(data))


def fit(
    model: SequenceClassifier,
    train: Padded,
    val: Padded,
    settings: TrainSettings,
    *,
    seed: int,
) -> FitResult:
    """Train ``model`` in place; it ends holding the weights of the best validation epoch."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups: list[dict[str, Any]] = [
        {"params": decay, "weight_decay": settings.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    optim = torch.optim.AdamW(
        groups,
        lr=settings.lr,
        weight_decay=0.0,
    )
    gen = torch.Generator().manual_seed(seed)
    best: tuple[float, float] = (-1.0, float("inf"))
    best_state = copy.deepcopy(model.state_dict())
    best_epoch, stale, history = 0, 0, []
    epoch = 0
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=gen)
        running = 0.0
        for start in range(0, len(train), settings.batch_size):
            x, lengths, y = train.rows(order[start : start + settings.batch_size])
            loss = model.loss(x, y, lengths=lengths)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
            optim.step()
            running += float(loss.detach()) * len(y)
        pred, val_loss = evaluate(model, val)
        val_acc = float(np.mean(pred == val.y.numpy()))
        history.append(
            {
                "epoch": epoch,
                "train_loss": running / len(train),
                "val_loss": val_loss,
                "val_accuracy": val_acc,
            }
        )
        if (val_acc, -val_loss) > (best[0], -best[1]):
            best, best_epoch, stale = (val_acc, val_loss), epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= settings.patience and epoch >= settings.min_epochs:
                break
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(best_epoch, best[0], best[1], epoch, history)


def majority_accuracy(train_labels: Sequence[int], test_labels: Sequence[int]) -> float:
    """Accuracy on ``test_labels`` of always predicting the most frequent training class
    (ties: the smallest class id)."""
    counts = np.bincount(np.asarray(train_labels, dtype=np.int64))
    return float(np.mean(np.asarray(test_labels) == int(np.argmax(counts))))
