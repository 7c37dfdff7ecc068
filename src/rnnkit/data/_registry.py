"""The data-set registry itself: what a set is (`DatasetInfo`), what loading returns (`DataSplits`),
and `register`. The set modules (`rnnkit.data.datasets`, `_text_sets`, `_music`) import it and
register into it; `rnnkit.data.datasets.load` reads it. Kept apart so no set module imports another.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor


@dataclass(frozen=True)
class DatasetInfo:
    """What a registered set is and where it comes from."""

    name: str
    task: str  # "classification", "forecasting", "anomaly", "language-model", "seq2seq", "music"
    description: str
    size: str
    source: str  # the package and file it is read from
    licence: str
    extra: str = "datasets"  # the pip extra that installs its package


@dataclass
class DataSplits:
    """Ready splits of one set. ``val`` is None where a set has no validation split by default."""

    info: DatasetInfo
    train: Any
    val: Any | None
    test: Any
    meta: dict[str, Any] = field(default_factory=dict)  # classes, vocab, scaler, fitted state


@dataclass
class LabelledSeries:
    """One long series with a label per step (anomaly detection)."""

    x: Tensor  # (N, C) float32, scaled with training statistics
    y: Tensor  # (N,) int64 labels

    def __len__(self) -> int:
        return int(self.x.shape[0])


Loader = Callable[..., DataSplits]
_REGISTRY: dict[str, tuple[DatasetInfo, Loader]] = {}


def register(info: DatasetInfo) -> Callable[[Loader], Loader]:
    """Decorator adding a loader under ``info.name``."""

    def wrap(fn: Loader) -> Loader:
        _REGISTRY[info.name] = (info, fn)
        return fn

    return wrap


def package_dir(package: str) -> Path:
    """A package's folder found without importing it; a `ValueError` says which extra installs
    it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"package {package!r} is not installed; it ships this data set")
    return Path(next(iter(spec.submodule_search_locations)))


def _seeded_split(
    n: int, *, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]
