"""Forecasting (many-to-many, real-valued): `ForecastTask`, windows with known covariates, builder.

A sample is ``(x, y)`` -- past values ``(T, Y)`` and the future ``(H, Y)`` -- or ``(x, y, c)`` with
known covariates ``c`` ``(T + H, C)`` for every past and future step (calendar features, a planned
price, ...). Metrics are in the scaled units of the series; MASE divides the MAE by the in-sample
MAE of the one-step naive forecast (``naive_scale``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.data.datasets import load
from rnnkit.models import Forecaster, ForecasterConfig
from rnnkit.models._base import base_forecast, fit_ets, min_steps
from rnnkit.train.specs import ForecastingExperiment, spec_dict
from rnnkit.train.tasks.base import (
    Built,
    DataParts,
    SequenceData,
    TaskModule,
    as_parts,
    data_options,
    steps_per_epoch,
    task_kwargs,
)
from rnnkit.train.tasks.classify import synthetic_parts
from rnnkit.types import Batch


@dataclass
class ForecastBatch(Batch):
    """Windows with their known covariates ``(B, T + H, C)`` (None without covariates)."""

    covariates: Tensor | None = None

    def to(self, device: str | object) -> ForecastBatch:
        moved = super().to(device)
        cov = None if self.covariates is None else self.covariates.to(device)  # type: ignore[arg-type]
        return ForecastBatch(moved.x, moved.lengths, moved.y, moved.mask, covariates=cov)


def collate_windows(samples: Sequence[Any]) -> ForecastBatch:
    """Equal-length windows ``(x, y)`` or ``(x, y, covariates)`` -> a `ForecastBatch`."""
    x = torch.stack([torch.as_tensor(np.asarray(s[0]), dtype=torch.float32) for s in samples])
    y = torch.stack([torch.as_tensor(np.asarray(s[1]), dtype=torch.float32) for s in samples])
    with_cov = [len(s) == 3 for s in samples]
    if any(with_cov) and not all(with_cov):
        raise ValueError("forecasting samples mix (x, y) and (x, y, covariates); give all or none")
    cov = None
    if all(with_cov):
        cov = torch.stack([torch.as_tensor(np.asarray(s[2]), dtype=torch.float32) for s in samples])
    lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
    return ForecastBatch(x=x, lengths=lengths, y=y, covariates=cov)


class ForecastTask(TaskModule):
    """MSE (or Gaussian NLL) on the future window; MAE, RMSE and MASE of the mean forecast.

    A direct model runs once per step: the loss and the metrics read the same forecast. An
    autoregressive one trains by teacher forcing, and its metrics need the roll-out, so the
    roll-out runs at validation and test only.
    """

    def __init__(self, model: nn.Module, *, naive_scale: float, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.naive_scale = naive_scale  # in-sample MAE of the one-step naive forecast

    def _loss_and_sums(self, batch: Batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        assert batch.y is not None
        cov = getattr(batch, "covariates", None)
        rows = torch.tensor(float(len(batch)), device=batch.y.device)
        if self.model.config.strategy == "direct":
            forecast = self.model(batch.x, lengths=batch.lengths, covariates=cov)
            loss = self.model.criterion(forecast, batch.y)
            mean: Tensor | None = forecast.mean.detach()
        else:
            loss = self.model.loss(batch.x, batch.y, lengths=batch.lengths, covariates=cov)
            mean = None
            if stage != "train":
                with torch.no_grad():
                    mean = self.model(batch.x, lengths=batch.lengths, covariates=cov).mean
        sums = {"loss_sum": loss.detach() * rows, "rows": rows}
        if mean is not None:
            err = mean - batch.y
            n = torch.tensor(float(err.numel()), device=err.device)
            sums.update({"sq": (err**2).sum(), "abs": err.abs().sum(), "n": n})
        return loss, sums

    def _metrics(self, s: dict[str, Tensor]) -> dict[str, float]:
        out = {"loss": float(s["loss_sum"] / s["rows"])}
        if "n" in s:
            mae = float(s["abs"] / s["n"])
            out["mae"] = mae
            out["rmse"] = math.sqrt(float(s["sq"] / s["n"]))
            out["mase"] = mae / self.naive_scale if self.naive_scale > 0 else float("nan")
        return out


def naive_scale(train: Sequence[Any]) -> float:
    """Mean absolute one-step change of the first target over the training windows."""
    diffs = [np.abs(np.diff(np.asarray(s[0])[:, 0])).mean() for s in train if len(s[0]) > 1]
    return float(np.mean(diffs)) if diffs else 0.0


def _registry(source: str, horizon: int) -> tuple[DataParts, dict[str, str]]:
    splits = load(source, horizon=horizon)
    data = splits.meta["data"]
    if len(data.columns) != len(data.targets):
        raise ValueError(
            f"data set {source!r} has input channels {data.columns[len(data.targets) :]} besides "
            f"the targets {data.targets}; they are known only in the past, and the forecaster "
            "reads known covariates over past and future: pass (x, y, covariates) windows with "
            "build(experiment, data=DataParts(...))"
        )
    parts = [list(zip(s.x, s.y, strict=True)) for s in (data.train, data.val, data.test)]
    meta = {
        "targets": len(data.targets),
        "naive_scale": float(np.abs(np.diff(data.train.series[:, 0])).mean()),
        "reference": _whole_history(data, splits.meta.get("season", 1)),
    }
    return DataParts(parts[0], parts[1], parts[2], meta), {"scalers.json": data.state_json()}


def _whole_history(data: Any, season: int) -> dict[str, Any]:
    """The scaled target series and the first target step of each val/test window, so the
    baselines forecast each window from the whole history before it (as on a user's file)."""
    splits = {"val": data.val, "test": data.test}
    series = np.concatenate([s.series for s in (data.train, *splits.values()) if s is not None])
    input_len, horizon = data.train.x.shape[1], data.train.y.shape[1]
    origins = {}
    for name, part in splits.items():
        if part is None:
            continue
        first = max(part.start, input_len)
        origins[name] = list(range(first, part.start + len(part.series) - horizon + 1))
        if len(origins[name]) != len(part.x):  # windows with a stride: fall back to the windows
            return {}
    targets = [series[:, j] for j in range(len(data.targets))]
    return {"series": targets, "origins": origins, "season": season}


def _fit_base(
    base: str, parts: Sequence[Sequence[Any]], *, season: int, horizon: int
) -> dict[str, Any]:
    """The hybrid's fitted fields: ETS coefficients (base ``ets``) and ``base_scale``, the base's
    RMS error on the training windows; every window is checked to be long enough first."""
    if base == "none":
        return {}
    need = min_steps(base, season)
    for name, part in zip(("training", "validation", "test"), parts, strict=False):
        short = [len(s[0]) for s in part or [] if len(s[0]) < need]
        if short:
            raise ValueError(
                f"model.base {base!r} with season {season} needs input windows of at least "
                f"{need} steps; {len(short)} {name} windows have {min(short)}: set data.seq_len "
                f">= {need}, or model.season / model.base to fit"
            )
    x = torch.stack([torch.as_tensor(np.asarray(s[0]), dtype=torch.float64) for s in parts[0]])
    y = torch.stack([torch.as_tensor(np.asarray(s[1]), dtype=torch.float64) for s in parts[0]])
    if base == "given":
        if any(len(s) < 3 for s in parts[0]):
            raise ValueError(
                "model.base 'given' reads the base forecast from the last known covariate; "
                "these windows have no covariates"
            )
        given = np.stack([np.asarray(s[2])[-y.shape[1] :, -1:] for s in parts[0]])  # (N, H, 1)
        rms = float(np.sqrt(((given - y.numpy()) ** 2).mean()))
        return {"base_scale": round(rms, 8) if rms > 1e-8 else 1.0}
    ets = list(fit_ets(x, y, season=season)) if base == "ets" else None
    lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
    coef = None if ets is None else torch.tensor(ets, dtype=torch.float64)
    pred = base_forecast(x, lengths, base=base, horizon=horizon, season=season, ets=coef)
    rms = float(((pred - y) ** 2).mean().sqrt())
    return {"ets": ets, "base_scale": round(rms, 8) if rms > 1e-8 else 1.0}


def build_forecaster(experiment: ForecastingExperiment, data: Any = None) -> Built:
    """Windows -> `Forecaster` (with ``covariate_size`` from the samples) -> `ForecastTask`."""
    d = experiment.data
    files: dict[str, str] = {}
    if data is None and d.source.startswith("synthetic_"):
        data = synthetic_parts(d)
    elif data is None:
        data, files = _registry(d.source, d.horizon)
    parts = as_parts(data)
    first = next(p[0] for p in parts if p)  # a run's stored test split has no training part
    targets = int(np.asarray(first[1]).shape[-1])
    horizon = int(np.asarray(first[1]).shape[0])
    covariates = int(np.asarray(first[2]).shape[-1]) if len(first) == 3 else 0
    scale = float(data.meta.get("naive_scale", naive_scale(parts[0])))
    spec = experiment.model
    season = spec.season or int(data.meta.get("season", 1))
    config = ForecasterConfig(
        target_size=targets,
        covariate_size=covariates,
        horizon=horizon,
        **spec_dict(spec, drop=("season", "base_select")),
        season=season,
        **_fit_base(spec.base, parts, season=season, horizon=horizon),
    )
    module = ForecastTask(Forecaster(config), naive_scale=scale, **task_kwargs(experiment))
    opts = data_options(d, parts, seed=experiment.seed, lengths=lambda s: len(s[0]))
    datamodule = SequenceData(parts, batch_size=d.batch_size, collate_fn=collate_windows, **opts)
    return Built(
        module,
        datamodule,
        config,
        steps_per_epoch(d.epoch_samples or len(parts[0]), d.batch_size),
        files=files,
        artifact_json={"scalers": "scalers.json"} if files else {},
        baselines={"naive_scale": scale},
        reference=dict(data.meta.get("reference", {})),
    )
