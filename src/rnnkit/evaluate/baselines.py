"""Baselines every model must beat: n-gram token models, naive forecasts, the majority class."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


class NGram:
    """Unigram (``order=1``) or bigram (``order=2``) token model with add-``k`` smoothing.

    Fit on training sequences (each a sequence of ids < ``vocab_size``); ``nll`` is the mean
    negative log-likelihood per predicted token in nats. A bigram's first token of each sequence is
    scored by the unigram, so both orders score the same tokens.
    """

    def __init__(self, vocab_size: int, *, order: int = 2, k: float = 0.1) -> None:
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order}")
        self.V, self.order, self.k = vocab_size, order, k
        self.uni = np.zeros(vocab_size, dtype=np.float64)
        self.bi = np.zeros((vocab_size, vocab_size), dtype=np.float64) if order == 2 else None

    def fit(self, sequences: Iterable[Sequence[int]]) -> NGram:
        for seq in sequences:
            a = np.asarray(seq, dtype=np.int64)
            if a.size and (a.min() < 0 or a.max() >= self.V):
                raise ValueError(f"token ids must be in [0, {self.V}); got {a.min()}..{a.max()}")
            np.add.at(self.uni, a, 1)
            if self.bi is not None and a.size > 1:
                np.add.at(self.bi, (a[:-1], a[1:]), 1)
        return self

    def _logp_uni(self) -> np.ndarray:
        c = self.uni + self.k
        return np.log(c / c.sum())

    def nll(self, sequences: Iterable[Sequence[int]], *, skip_first: bool = False) -> float:
        """Mean NLL in nats per token over all tokens of ``sequences``.

        ``skip_first``: score every token but each sequence's first, which then only conditions
        the next (a ``<bos>``, or the last token of the previous chunk) — the tokens a language
        model predicts from the same input.
        """
        lu = self._logp_uni()
        lb = None
        if self.bi is not None:
            c = self.bi + self.k
            lb = np.log(c / c.sum(axis=1, keepdims=True))
        total, count = 0.0, 0
        for seq in sequences:
            a = np.asarray(seq, dtype=np.int64)
            if a.size <= int(skip_first):
                continue
            if lb is None:
                total -= float(lu[a[int(skip_first) :]].sum())
            else:
                first = 0.0 if skip_first else float(lu[a[0]])
                total -= first + float(lb[a[:-1], a[1:]].sum())
            count += a.size - int(skip_first)
        if count == 0:
            raise ValueError("no tokens to score")
        return total / count

    def bits(self, sequences: Iterable[Sequence[int]], *, skip_first: bool = False) -> float:
        """Mean bits per token (``skip_first`` as in `nll`)."""
        return self.nll(sequences, skip_first=skip_first) / math.log(2)


def naive_forecast(history: Sequence[float], horizon: int) -> np.ndarray:
    """Repeat the last observation ``horizon`` times."""
    h = np.asarray(history, dtype=np.float64)
    return np.full(horizon, h[-1])


def seasonal_naive_forecast(history: Sequence[float], horizon: int, season: int) -> np.ndarray:
    """Repeat the last full season: y[t] = y[t - season]."""
    h = np.asarray(history, dtype=np.float64)
    if len(h) < season:
        raise ValueError(f"seasonal naive needs {season} points of history, got {len(h)}")
    last = h[-season:]
    return np.array([last[i % season] for i in range(horizon)])


def majority_class(train_labels: Sequence[int]) -> int:
    """The most frequent training class (ties: the smallest class id): the trivial classifier."""
    counts = np.bincount(np.asarray(train_labels, dtype=np.int64))
    if counts.size == 0:
        raise ValueError("majority_class needs at least one training label")
    return int(np.argmax(counts))
