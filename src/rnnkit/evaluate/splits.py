"""Splits: walk-forward origins for time series, k folds and stratified hold-outs for independent
sequences."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Origin:
    """One walk-forward step: fit on ``[0, train_end)``, forecast ``[train_end, test_end)``."""

    train_end: int
    test_end: int


def walk_forward(
    n: int, *, horizon: int, folds: int, min_train: int, step: int | None = None
) -> list[Origin]:
    """Expanding-window forecast origins that end exactly at the series' last observation.

    The last origin forecasts the final ``horizon`` points; earlier ones step back by ``step``
    (default ``horizon``, so the test windows tile the tail without overlap). Every origin trains
    on at least ``min_train`` points. Nothing after ``train_end`` is visible to the fit.
    """
    step = horizon if step is None else step
    if horizon < 1 or folds < 1 or step < 1:
        raise ValueError(f"horizon, folds and step must be >= 1; got {horizon}, {folds}, {step}")
    origins = []
    for k in range(folds):
        train_end = n - horizon - (folds - 1 - k) * step
        if train_end < min_train:
            raise ValueError(
                f"walk_forward: fold {k} would train on {train_end} points < min_train "
                f"{min_train} (series length {n}, horizon {horizon}, folds {folds}, step {step})"
            )
        origins.append(Origin(train_end=train_end, test_end=train_end + horizon))
    return origins


def kfold(
    n: int, k: int, *, seed: int = 0, labels: np.ndarray | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``k`` shuffled folds of ``range(n)`` as (train_idx, test_idx); stratified given labels."""
    if not 2 <= k <= n:
        raise ValueError(f"kfold needs 2 <= k <= n; got k={k}, n={n}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(n, dtype=np.int64)
    if labels is None:
        order = rng.permutation(n)
        fold_of[order] = np.arange(n) % k
    else:
        labels = np.asarray(labels)
        if len(labels) != n:
            raise ValueError(f"kfold: {len(labels)} labels for {n} items")
        start = 0
        for cls in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            fold_of[idx] = (np.arange(len(idx)) + start) % k  # deal classes round-robin
            start += len(idx)
    for f in range(k):
        yield np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)


def stratified_holdout(
    labels: Sequence[int] | np.ndarray, fraction: float, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held) sorted indices; ``held`` takes ``round(fraction * n_c)`` of each class ``c``
    (at least one where the class has two or more members, never all of it), chosen with ``seed``.

    A validation split carved from a small training split (the UCR/UEA sets have 8 to 13 series
    per class): every class is seen in both parts.
    """
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
