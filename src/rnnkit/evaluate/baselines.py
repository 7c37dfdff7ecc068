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


def naive_forecast(history: Sequence[float] | np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the last observation ``horizon`` times."""
    h = np.asarray(history, dtype=np.float64)
    return np.full(horizon, h[-1])


def seasonal_naive_forecast(
    history: Sequence[float] | np.ndarray, horizon: int, season: int
) -> np.ndarray:
    """Repeat the last full season: y[t] = y[t - season]."""
    h = np.asarray(history, dtype=np.float64)
    if len(h) < season:
        raise ValueError(f"seasonal naive needs {season} points of history, got {len(h)}")
    last = h[-season:]
    return np.array([last[i % season] for i in range(horizon)])


def ets_forecast(
    history: Sequence[float] | np.ndarray, horizon: int, season: int = 1
) -> np.ndarray:
    """Holt-Winters exponential smoothing (statsmodels): additive damped trend, plus an additive
    season of ``season`` steps when the history holds two full seasons; parameters by maximum
    likelihood on ``history`` only. Falls back to the naive forecast when the fit fails (a
    constant or very short history), so a baseline never stops a run."""
    import warnings

    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    h = np.asarray(history, dtype=np.float64)
    if len(h) < 4 or float(np.ptp(h)) == 0.0:
        return naive_forecast(h, horizon)
    seasonal = "add" if season > 1 and len(h) >= 2 * season + 2 else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ExponentialSmoothing(
                h,
                trend="add",
                damped_trend=True,
                seasonal=seasonal,
                seasonal_periods=season if seasonal else None,
                initialization_method="estimated",
            ).fit()
            out = np.asarray(fit.forecast(horizon), dtype=np.float64)
    except (ValueError, np.linalg.LinAlgError):
        return naive_forecast(h, horizon)
    return out if np.isfinite(out).all() else naive_forecast(h, horizon)


def _stack(seqs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.zeros((len(seqs), int(lengths.max()), seqs[0].shape[1]), dtype=np.float64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lengths


def dtw_distances(
    queries: Sequence[np.ndarray], refs: Sequence[np.ndarray], *, max_cells: float = 1e7
) -> np.ndarray:
    """Dynamic time warping distances ``(Q, R)`` between ``(T, C)`` arrays, full window.

    The local cost is the squared Euclidean distance over the C channels (DTW_D, "dependent"
    warping: one path for all channels); the distance is the smallest sum of local costs over
    monotone paths from ``(0, 0)`` to ``(T_q - 1, T_r - 1)``. Series may differ in length: they
    are padded, and each pair's value is read at its own end cell (cells only depend on cells up
    and to the left, so padding never changes them). All pairs run at once, one anti-diagonal of
    the cost grid per step, ``max_cells`` grid cells per chunk of queries.
    """
    if not queries or not refs:
        raise ValueError("dtw_distances needs at least one query and one reference series")
    a_all, la = _stack(queries)
    b, lb = _stack(refs)
    if a_all.shape[2] != b.shape[2]:
        raise ValueError(f"channels differ: {a_all.shape[2]} vs {b.shape[2]}")
    n_q, t_a, channels = a_all.shape
    n_r, t_b, _ = b.shape
    chunk = max(1, int(max_cells // (n_r * t_a * t_b * max(1, channels // 4))))
    diagonals = []
    for k in range(t_a + t_b - 1):
        i = np.arange(max(0, k - t_b + 1), min(k, t_a - 1) + 1)
        diagonals.append((i, k - i))
    out = np.empty((n_q, n_r))
    for start in range(0, n_q, chunk):
        a = a_all[start : start + chunk]
        q = len(a)
        cost = np.zeros((q, n_r, t_a, t_b))
        for c in range(channels):
            cost += (a[:, None, :, None, c] - b[None, :, None, :, c]) ** 2
        acc = np.full((q, n_r, t_a + 1, t_b + 1), np.inf)
        acc[:, :, 0, 0] = 0.0
        for i, j in diagonals:
            prev = np.minimum(np.minimum(acc[:, :, i, j], acc[:, :, i, j + 1]), acc[:, :, i + 1, j])
            acc[:, :, i + 1, j + 1] = cost[:, :, i, j] + prev
        rows = np.arange(q)[:, None]
        cols = np.arange(n_r)[None, :]
        out[start : start + q] = acc[rows, cols, la[start : start + q, None], lb[None, :]]
    return out


def euclidean_distances(queries: Sequence[np.ndarray], refs: Sequence[np.ndarray]) -> np.ndarray:
    """Euclidean distances ``(Q, R)`` between ``(T, C)`` arrays; shorter series are zero-padded
    to the longest (so equal-length series get the plain distance)."""
    a, _ = _stack(queries)
    b, _ = _stack(refs)
    t = max(a.shape[1], b.shape[1])
    a = np.pad(a, ((0, 0), (0, t - a.shape[1]), (0, 0))).reshape(len(a), -1)
    b = np.pad(b, ((0, 0), (0, t - b.shape[1]), (0, 0))).reshape(len(b), -1)
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def tfidf_logreg(
    train: tuple[Sequence[str], Sequence[int]],
    val: tuple[Sequence[str], Sequence[int]],
    test_texts: Sequence[str],
    *,
    grid: Sequence[float] = (0.25, 1.0, 4.0),
) -> tuple[np.ndarray, float]:
    """Uni+bigram TF-IDF logistic regression on whitespace tokens; C from ``grid`` picked by
    validation accuracy (never the test split). Returns test predictions and the C used."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(
        ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+", lowercase=False
    )
    xtr = vec.fit_transform(list(train[0]))
    xva, xte = vec.transform(list(val[0])), vec.transform(list(test_texts))
    ytr = np.asarray(train[1])
    if len(np.unique(ytr)) < 2:
        return np.full(len(test_texts), ytr[0]), float("nan")
    scores = []
    for c in grid:
        clf = LogisticRegression(C=c, max_iter=2000, solver="liblinear").fit(xtr, ytr)
        scores.append(float(np.mean(clf.predict(xva) == np.asarray(val[1]))))
    best = float(grid[int(np.argmax(scores))])
    clf = LogisticRegression(C=best, max_iter=2000, solver="liblinear").fit(xtr, ytr)
    return clf.predict(xte), best


def majority_class(train_labels: Sequence[int]) -> int:
    """The most frequent training class (ties: the smallest class id): the trivial classifier."""
    counts = np.bincount(np.asarray(train_labels, dtype=np.int64))
    if counts.size == 0:
        raise ValueError("majority_class needs at least one training label")
    return int(np.argmax(counts))
