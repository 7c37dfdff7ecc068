"""Metrics the applications report. Inputs are numpy arrays (or anything ``np.asarray`` takes)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _pair(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"targets {a.shape} and predictions {b.shape} differ in shape")
    return a, b


def mae(y: Any, p: Any) -> float:
    """Mean absolute error."""
    a, b = _pair(y, p)
    return float(np.mean(np.abs(a - b)))


def rmse(y: Any, p: Any) -> float:
    """Root mean squared error."""
    a, b = _pair(y, p)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mase(y: Any, p: Any, train: Any, *, season: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006): MAE over the in-sample MAE of the
    (seasonal) naive forecast on ``train``. Below 1 beats that naive forecast on average."""
    tr = np.asarray(train, dtype=np.float64)
    if len(tr) <= season:
        raise ValueError(
            f"mase: training series of {len(tr)} points is too short for season {season}"
        )
    scale = float(np.mean(np.abs(tr[season:] - tr[:-season])))
    if scale == 0:
        raise ValueError("mase: the training series is constant at this season; scale is 0")
    return mae(y, p) / scale


def bits_per_token(nll_nats: float) -> float:
    """Mean negative log-likelihood in nats -> bits per token."""
    return nll_nats / math.log(2)


def accuracy(y: Any, p: Any) -> float:
    """Fraction of exact matches."""
    a, b = np.asarray(y), np.asarray(p)
    if a.shape != b.shape:
        raise ValueError(f"labels {a.shape} and predictions {b.shape} differ in shape")
    return float(np.mean(a == b))


def macro_f1(y: Any, p: Any) -> float:
    """F1 averaged over the classes present in ``y`` or ``p`` (scikit-learn's macro F1)."""
    from sklearn.metrics import f1_score

    return float(f1_score(np.asarray(y), np.asarray(p), average="macro"))


def detection_scores(labels: Any, scores: Any, flags: Any) -> dict[str, float]:
    """Precision, recall and F1 of binary ``flags`` and ROC-AUC of real-valued ``scores``."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    y = np.asarray(labels).astype(bool)
    f = np.asarray(flags).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if not (y.shape == f.shape == s.shape):
        raise ValueError(f"labels {y.shape}, flags {f.shape} and scores {s.shape} differ")
    prec, rec, f1, _ = precision_recall_fscore_support(y, f, average="binary", zero_division=0)
    auc = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")
    return {"precision": float(prec), "recall": float(rec), "f1": float(f1), "roc_auc": auc}


def bleu(hypotheses: Any, references: Any) -> float:
    """Corpus BLEU (sacrebleu, 0-100) of hypothesis strings against one reference each."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def chrf(hypotheses: Any, references: Any) -> float:
    """Corpus chrF (sacrebleu, 0-100): character n-gram F-score, kind to short outputs."""
    import sacrebleu

    return float(sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score)
