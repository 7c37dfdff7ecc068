"""Walk-forward backtest of a forecasting experiment (darts' ``historical_forecasts`` idea).

For each of ``origins`` forecast origins at the end of a series (`rnnkit.evaluate.walk_forward`:
the test windows tile the tail without overlap), the model forecasts the ``horizon`` steps after
the origin from the ``seq_len`` steps before it. It is trained through `rnnkit.train.fit` on
windows that end at or before the first origin (``refit=False``: one model for every origin) or
at or before each origin (``refit=True``: one model per origin). The last tenth of those windows
(at least one) is the validation split that picks the checkpoint; nothing after an origin is ever
seen by the model that forecasts from it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rnnkit.data.datasets import load
from rnnkit.evaluate.splits import Origin, walk_forward
from rnnkit.train import DataParts, fit, load_run


@dataclass
class Backtest:
    """Per-origin metrics (``mae``, ``rmse`` in the series' units), their mean, the forecasts."""

    origins: list[Origin]
    metrics: list[dict[str, float]]
    mean: dict[str, float]
    forecasts: list[np.ndarray]  # (H, Y) per origin
    run_dirs: list[str]


def windows(
    series: np.ndarray, covariates: np.ndarray | None, *, end: int, seq_len: int, horizon: int
) -> list[tuple[Any, ...]]:
    """Every ``(x, y[, covariates])`` window whose future ends at or before ``end``."""
    out: list[tuple[Any, ...]] = []
    for s in range(0, end - seq_len - horizon + 1):
        x, y = series[s : s + seq_len], series[s + seq_len : s + seq_len + horizon]
        if covariates is None:
            out.append((x, y))
        else:
            out.append((x, y, covariates[s : s + seq_len + horizon]))
    return out


def _registry_series(source: str, horizon: int) -> np.ndarray:
    data = load(source, horizon=horizon).meta["data"]
    whole = np.concatenate([s.series for s in (data.train, data.val, data.test) if s is not None])
    return whole[:, : len(data.targets)].astype(np.float32)


def _fit_until(
    experiment: Any,
    series: np.ndarray,
    covariates: np.ndarray | None,
    *,
    end: int,
    tag: str,
) -> tuple[Any, str]:
    d = experiment.data
    train = windows(series, covariates, end=end, seq_len=d.seq_len, horizon=d.horizon)
    if len(train) < 2:
        raise ValueError(
            f"backtest: only {len(train)} training windows end before step {end}; use fewer "
            "origins, a shorter seq_len or a longer series"
        )
    n_val = max(1, len(train) // 10)
    name = f"{experiment.run.name or 'backtest'}-{tag}"
    run = dataclasses.replace(experiment.run, name=name, test=False)
    no_suite = dataclasses.replace(experiment.evaluate, baselines=False)  # scored per origin here
    result = fit(
        dataclasses.replace(experiment, run=run, evaluate=no_suite),
        data=DataParts(train[:-n_val], train[-n_val:], None),
    )
    return load_run(result.run_dir).model, str(result.run_dir)


def backtest(
    experiment: Any,
    *,
    origins: int,
    refit: bool = False,
    series: np.ndarray | None = None,
    covariates: np.ndarray | None = None,
) -> Backtest:
    """Walk-forward forecasts of ``experiment`` (a `ForecastingExperiment`) at ``origins`` origins.

    **Arguments:**
    - ``series``: ``(N, Y)`` values (None: the registry set ``experiment.data.source``, scaled,
      targets only).
    - ``covariates``: ``(N, C)`` known covariates aligned with ``series`` (or None).
    - ``refit``: train one model per origin (slower, uses all data up to each origin).
    """
    d = experiment.data
    if series is None:
        if d.source.startswith("synthetic_"):
            raise ValueError("backtest needs one series: pass series=... for a synthetic source")
        series = _registry_series(d.source, d.horizon)
    series = np.asarray(series, dtype=np.float32)
    if series.ndim == 1:
        series = series[:, None]
    if covariates is not None and len(covariates) != len(series):
        raise ValueError(
            f"covariates have {len(covariates)} steps but the series has {len(series)}"
        )
    folds = walk_forward(
        len(series), horizon=d.horizon, folds=origins, min_train=d.seq_len + d.horizon + 1
    )
    model, run_dir = None, ""
    metrics, forecasts, run_dirs = [], [], []
    for k, origin in enumerate(folds):
        if model is None or refit:
            model, run_dir = _fit_until(
                experiment, series, covariates, end=origin.train_end, tag=f"origin{k}"
            )
        o = origin.train_end
        x = torch.as_tensor(series[o - d.seq_len : o])[None]  # (1, T, Y)
        cov = None
        if covariates is not None:
            cov = torch.as_tensor(covariates[o - d.seq_len : o + d.horizon], dtype=torch.float32)
            cov = cov[None]  # (1, T + H, C)
        with torch.no_grad():
            pred = model(x, covariates=cov).mean[0].numpy()  # (H, Y)
        err = pred - series[o : origin.test_end]
        metrics.append(
            {"mae": float(np.abs(err).mean()), "rmse": math.sqrt(float((err**2).mean()))}
        )
        forecasts.append(pred)
        run_dirs.append(run_dir)
    mean = {k: float(np.mean([m[k] for m in metrics])) for k in metrics[0]}
    return Backtest(folds, metrics, mean, forecasts, run_dirs)
