"""The long-range memory tasks, generated from a seed (no downloads).

- adding (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015 / Arjovsky et al. 2016):
  ``x_t = (u_t, m_t)`` with ``u_t ~ U(0, 1)`` and two markers ``m_t = 1``, one in each half;
  target ``u_a + u_b``. Always predicting 1 gives MSE ``Var(u_a + u_b) = 1/6 ≈ 0.167``.
- copy (Arjovsky et al. 2016): 10 symbols from 8, ``delay`` blanks, a delimiter, 10 blanks; output
  blanks then the 10 symbols. A memoryless predictor (blank, then uniform over the 8 symbols for
  the last 10 steps) scores cross-entropy ``10 ln 8 / (delay + 20)`` nats per step.
- digits (scikit-learn's 8x8 ``load_digits``): 64 pixels one per step, class at the end; and
  ``pdigits``, the same with one fixed random permutation of the pixels. Baseline: the majority
  class's share of the test split.

Every sampler returns time-major tensors: ``x`` ``(T, B, I)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

ADDING_BASELINE = 1.0 / 6.0
COPY_SYMBOLS = 8  # data symbols 1..8; 0 is the blank, 9 the delimiter
COPY_LENGTH = 10


def adding_batch(T: int, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``x`` ``(T, B, 2)``, ``y`` ``(B, 1)``."""
    u = torch.rand(T, batch, generator=generator)
    half = T // 2
    a = torch.randint(0, half, (batch,), generator=generator)
    b = torch.randint(half, T, (batch,), generator=generator)
    m = torch.zeros(T, batch)
    cols = torch.arange(batch)
    m[a, cols] = 1.0
    m[b, cols] = 1.0
    y = (u[a, cols] + u[b, cols])[:, None]
    return torch.stack([u, m], dim=-1), y


def copy_batch(delay: int, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``x`` ``(delay + 20, B, 10)`` one-hot, ``y`` ``(delay + 20, B)`` class ids in ``[0, 8]``."""
    n = COPY_LENGTH
    T = delay + 2 * n
    data = torch.randint(1, COPY_SYMBOLS + 1, (n, batch), generator=generator)
    ids = torch.zeros(T, batch, dtype=torch.long)
    ids[:n] = data
    ids[n + delay - 1] = COPY_SYMBOLS + 1  # the delimiter: "now write"
    y = torch.zeros(T, batch, dtype=torch.long)
    y[-n:] = data
    return torch.nn.functional.one_hot(ids, COPY_SYMBOLS + 2).float(), y


def copy_baseline(delay: int) -> float:
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (delay + 2 * COPY_LENGTH)


@dataclass
class Digits:
    """The 8x8 digits as pixel sequences: ``x`` ``(64, N, 1)`` in [0, 1], ``y`` ``(N,)``."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    baseline: float  # majority-class accuracy on the test split


def load_digits_sequences(*, permuted: bool, seed: int = 0) -> Digits:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data.astype(np.float32) / 16.0  # (N, 64)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    if permuted:
        x = x[:, np.random.default_rng(1234).permutation(64)]
    cut = int(0.8 * len(y))
    xt = torch.from_numpy(x).T[..., None]  # (64, N, 1)
    yt = torch.from_numpy(y)
    baseline = float(np.bincount(y[cut:]).max() / (len(y) - cut))
    return Digits(xt[:, :cut], yt[:cut], xt[:, cut:], yt[cut:], baseline)
