"""Seeded synthetic sets a model must learn far beyond chance, split 80/10/10.

- ``synthetic_parity``: classify the parity of a bit string (``(T, 1)`` float -> 0/1).
- ``synthetic_tags``: tag each token by whether it rises above the previous one.
- ``synthetic_sine``: forecast a sine of random frequency and phase ``horizon`` steps ahead.
- ``synthetic_sine_covariates``: the same sine plus a known level that steps from 0 to +-1 at a
  random step inside the future window; samples are ``(x, y, covariates)`` with the level over
  past and future steps ``(T + horizon, 1)``, so only a model that reads the known future
  covariate can forecast the step.
- ``synthetic_reverse``: reverse a token string (ids 4..13), then ``<eos>``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.data.text import Vocab

SYNTHETIC = (
    "synthetic_parity",
    "synthetic_tags",
    "synthetic_sine",
    "synthetic_sine_covariates",
    "synthetic_reverse",
)
Splits = tuple[list[Any], list[Any], list[Any]]


def split_80_10_10(samples: list[Any]) -> Splits:
    """Contiguous 80/10/10 train/val/test parts."""
    n = len(samples)
    a, b = int(n * 0.8), int(n * 0.9)
    return samples[:a], samples[a:b], samples[b:]


def synthetic(
    source: str, *, num_samples: int, seq_len: int, seed: int = 0, horizon: int = 1
) -> Splits:
    """Seeded samples of the synthetic set ``source``, split 80/10/10."""
    if source not in SYNTHETIC:
        raise ValueError(f"unknown synthetic set {source!r}; choose one of {', '.join(SYNTHETIC)}")
    rng = np.random.default_rng(seed)
    T = seq_len
    out: list[Any] = []
    for _ in range(num_samples):
        length = int(rng.integers(max(1, T // 2), T + 1))
        if source == "synthetic_parity":
            bits = rng.integers(0, 2, length)
            out.append((bits[:, None].astype(np.float32), int(bits.sum() % 2)))
        elif source == "synthetic_tags":
            ids = rng.integers(4, 14, length)
            tags = np.concatenate([[0], (ids[1:] > ids[:-1]).astype(np.int64)])
            out.append((ids.astype(np.int64), tags))
        elif source in ("synthetic_sine", "synthetic_sine_covariates"):
            freq, phase = rng.uniform(0.1, 0.5), rng.uniform(0, 2 * np.pi)
            t = np.arange(T + horizon)
            wave = np.sin(freq * t + phase).astype(np.float32)[:, None]  # (T + H, 1)
            if source == "synthetic_sine":
                out.append((wave[:T], wave[T:]))
                continue
            switch = int(rng.integers(T, T + horizon))  # inside the future window
            level = np.where(t < switch, 0.0, rng.choice([-1.0, 1.0])).astype(np.float32)[:, None]
            series = wave + level
            out.append((series[:T], series[T:], level))
        else:
            ids = rng.integers(4, 14, length).astype(np.int64)
            out.append((ids, np.concatenate([ids[::-1], [Vocab.eos_id]])))
    return split_80_10_10(out)
