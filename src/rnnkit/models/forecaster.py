"""Many-to-many, aligned in time: forecast the next ``horizon`` values of a series from its past.

Shapes: ``x`` ``(B, T, Y)`` past values (``Y`` targets per step), ``covariates``
``(B, T + horizon, C)`` known features for every past *and* future step, indexed like the series
(row ``b``'s future starts at its own ``lengths[b]``). Forecasts are ``(B, horizon, Y)``.

Two strategies:

- ``direct``: encode the past (inputs ``[x_t, c_t]``), then one linear head maps the final state and
  the future covariates ``c_{T..T+H-1}`` to all ``H`` steps at once. No error accumulation.
- ``autoregressive``: a one-step model; the step that predicts ``y_t`` reads ``[y_{t-1}, c_t]``.
  Trained with teacher forcing on the whole series; forecasting rolls out with
  :meth:`Forecaster.step`, feeding each predicted mean back in, O(1) per future step. The same
  ``step`` streams observations (an online monitor): it takes ``y_t`` and returns the forecast of
  ``y_{t+1}``; :meth:`Forecaster.predict_next` is its full-sequence equal.

A hybrid (``base`` other than ``"none"``, direct strategy) adds the head's output to a
statistical base forecast computed from the input window alone (`rnnkit.models._base`: naive,
seasonal naive, ETS): ``mean = base(x) + base_scale * head(...)``, with ``base_scale`` the base's
RMS error on the training windows, so the head learns in units of the base's own error. The head
starts at zero: an untrained hybrid forecasts exactly the base, and training learns the
correction (ES-RNN, Smyl 2018; Zhang's ARIMA + ANN hybrid).

``distribution="gaussian"`` predicts a mean and a log-variance per value, trained by Gaussian
negative log-likelihood ``0.5 * (log s^2 + (y - mu)^2 / s^2 + log 2 pi)``;
:meth:`Forecaster.quantiles` turns that into ``mu + s * Phi^-1(q)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.cells import CellName
from rnnkit.models._base import BASES, base_forecast, min_steps
from rnnkit.models._common import (
    CELLS,
    check_choice,
    check_dropout,
    check_lengths,
    check_positive,
    final_hidden,
    gather_steps,
    lengths_mask,
)
from rnnkit.recurrent import Recurrent
from rnnkit.types import State


@dataclass
class ForecasterConfig:
    """Configuration of :class:`Forecaster`."""

    target_size: int = 1  # Y, values per step to forecast
    covariate_size: int = 0  # C, known features per step, past and future (0 = none)
    horizon: int = 1  # H, future steps forecast
    strategy: Literal["direct", "autoregressive"] = "direct"  # one-shot head or one-step roll-out
    distribution: Literal["point", "gaussian"] = (
        "point"  # point (MSE) or Gaussian mean+log-var (NLL)
    )
    cell: CellName = "lstm"  # recurrent cell
    hidden_size: int = 64  # recurrent state size
    num_layers: int = 1  # stacked recurrent layers
    dropout: float = 0.0  # between stacked layers
    # hybrid: the head adds to this base ("given": the last covariate's future steps)
    base: Literal["none", "naive", "seasonal_naive", "ets", "given"] = "none"
    season: int = 1  # m, the base's seasonal period (seasonal_naive, ets)
    ets: list[float] | None = None  # base "ets": alpha, beta, gamma, phi (fitted on training)
    base_scale: float = 1.0  # the head's unit: RMS error of the base on the training windows

    def __post_init__(self) -> None:
        check_positive(
            target_size=self.target_size,
            horizon=self.horizon,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            season=self.season,
        )
        check_choice("base", self.base, BASES)
        if self.base != "none" and self.strategy != "direct":
            raise ValueError(f"base {self.base!r} needs strategy='direct', got {self.strategy!r}")
        if self.base == "ets" and (self.ets is None or len(self.ets) != 4):
            raise ValueError(f"base 'ets' needs ets = [alpha, beta, gamma, phi], got {self.ets}")
        if self.base == "given" and (self.covariate_size < 1 or self.target_size != 1):
            raise ValueError(
                "base 'given' reads the base forecast from the last covariate: it needs "
                f"covariate_size >= 1 and target_size 1, got {self.covariate_size} and "
                f"{self.target_size}"
            )
        if not (math.isfinite(self.base_scale) and self.base_scale > 0):
            raise ValueError(f"base_scale must be a finite number > 0, got {self.base_scale}")
        if self.covariate_size < 0:
            raise ValueError(f"covariate_size must be >= 0, got {self.covariate_size}")
        check_choice("strategy", self.strategy, ("direct", "autoregressive"))
        check_choice("distribution", self.distribution, ("point", "gaussian"))
        check_choice("cell", self.cell, CELLS)
        check_dropout(self.dropout)


class Forecast(NamedTuple):
    """Forecast ``mean`` ``(B, H, Y)`` and, for a Gaussian head, ``log_var`` ``(B, H, Y)``."""

    mean: Tensor
    log_var: Tensor | None


class Forecaster(nn.Module):
    """Multi-horizon forecaster, direct or autoregressive, point or Gaussian."""

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.rnn = Recurrent(
            c.cell,
            c.target_size + c.covariate_size,
            c.hidden_size,
            num_layers=c.num_layers,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            batch_first=True,
        )
        per_value = 2 if c.distribution == "gaussian" else 1
        if c.strategy == "direct":
            in_size = self.rnn.output_size + c.horizon * c.covariate_size
            self.head = nn.Linear(in_size, c.horizon * c.target_size * per_value)
            if c.base != "none":  # the hybrid starts exactly at its base
                nn.init.zeros_(self.head.weight)
                nn.init.zeros_(self.head.bias)
        else:
            self.head = nn.Linear(self.rnn.output_size, c.target_size * per_value)

    def forward(
        self, x: Tensor, *, lengths: Tensor | None = None, covariates: Tensor | None = None
    ) -> Forecast:
        """Forecast the ``horizon`` steps after each row's last real step.

        **Arguments:**
        - ``x``: ``(B, T, Y)`` past values, padded after each length.
        - ``lengths``: ``(B,)`` int64 real past steps per row; None = all T.
        - ``covariates``: ``(B, T + horizon, C)`` known features (iff ``covariate_size > 0``).
        """
        lengths = self._check(x, lengths, covariates, extra=self.config.horizon)
        if self.config.strategy == "direct":
            return self._direct(x, lengths, covariates)
        return self._roll_out(x, lengths, covariates)

    def loss(
        self,
        x: Tensor,
        y: Tensor,
        *,
        lengths: Tensor | None = None,
        covariates: Tensor | None = None,
    ) -> Tensor:
        """Training loss against the true future ``y`` ``(B, horizon, Y)``: MSE or Gaussian NLL.

        Autoregressive models are trained by teacher forcing on past and future together: every
        step predicts the next true value from the true previous one.
        """
        c = self.config
        if y.shape != (x.shape[0], c.horizon, c.target_size):
            raise ValueError(
                f"targets y must be (B, horizon, Y) = {(x.shape[0], c.horizon, c.target_size)}, "
                f"got {tuple(y.shape)}"
            )
        lengths = self._check(x, lengths, covariates, extra=c.horizon)
        if c.strategy == "direct":
            return self.criterion(self._direct(x, lengths, covariates), y)
        series = _place_future(x, y, lengths)  # (B, T + H, Y), each row's future after its length
        forecast = self._one_step(series[:, :-1], lengths + c.horizon - 1, covariates)
        mask = lengths_mask(
            lengths + c.horizon - 1, batch=x.shape[0], steps=series.shape[1] - 1, device=x.device
        )
        return self.criterion(forecast, series[:, 1:], mask=mask)

    def criterion(self, forecast: Forecast, y: Tensor, *, mask: Tensor | None = None) -> Tensor:
        """Mean squared error or Gaussian NLL, over the steps where ``mask`` ``(B, n)`` holds."""
        if forecast.log_var is None:
            per_value = (forecast.mean - y) ** 2
        else:
            log_var = forecast.log_var
            per_value = 0.5 * (
                log_var + (y - forecast.mean) ** 2 / log_var.exp() + math.log(2 * math.pi)
            )
        if mask is not None:
            per_value = per_value[mask]
        return per_value.mean()

    @staticmethod
    def quantiles(forecast: Forecast, levels: Sequence[float]) -> Tensor:
        """Quantiles of a Gaussian forecast: ``(B, H, Y, Q)`` for ``Q = len(levels)`` in (0, 1)."""
        if forecast.log_var is None:
            raise ValueError("quantiles need a Gaussian forecast; set distribution='gaussian'")
        if not levels or any(not 0.0 < q < 1.0 for q in levels):
            raise ValueError(f"quantile levels must be in (0, 1), got {list(levels)}")
        q = torch.tensor(list(levels), dtype=forecast.mean.dtype, device=forecast.mean.device)
        z = torch.special.ndtri(q)  # (Q,) standard normal quantiles
        std = (0.5 * forecast.log_var).exp()
        return forecast.mean[..., None] + std[..., None] * z

    def predict_next(self, series: Tensor, *, covariates: Tensor | None = None) -> Forecast:
        """One-step forecasts along a whole series (autoregressive models): entry ``t`` of the
        ``(B, T, Y)`` mean and log-variance forecasts ``series[:, t + 1]`` from ``series[:, :t+1]``.

        Equals calling :meth:`step` on ``series[:, 0], series[:, 1], ...`` from the zero state.

        **Arguments:**
        - ``series``: ``(B, T, Y)`` observed values.
        - ``covariates``: ``(B, T + 1, C)`` known features; the step that forecasts ``t + 1``
          reads ``covariates[:, t + 1]`` (iff ``covariate_size > 0``).
        """
        self._need_autoregressive("predict_next")
        lengths = self._check(series, None, covariates, extra=1)
        return self._one_step(series, lengths, covariates)

    def step(
        self, value: Tensor, state: State | None = None, *, covariate: Tensor | None = None
    ) -> tuple[Forecast, State]:
        """Stream one observation (autoregressive models): ``y_t`` ``(B, Y)`` -> the forecast of
        ``y_{t+1}`` (mean and log-variance ``(B, Y)``) and the new state; O(1) per step.

        **Arguments:**
        - ``value``: ``(B, Y)`` the observation ``y_t`` (or, rolling out, the forecast mean).
        - ``state``: the state :meth:`step` returned for ``y_{t-1}``; None starts from zero.
        - ``covariate``: ``(B, C)`` the known features of step ``t + 1`` (iff ``covariate_size``).
        """
        self._need_autoregressive("step")
        c = self.config
        if value.dim() != 2 or value.shape[-1] != c.target_size:
            raise ValueError(f"value must be (B, {c.target_size}), got {tuple(value.shape)}")
        if (covariate is None) != (c.covariate_size == 0):
            raise ValueError(
                f"covariate must be (B, {c.covariate_size}) when covariate_size > 0 and None "
                f"otherwise, got {None if covariate is None else tuple(covariate.shape)}"
            )
        inputs = value if covariate is None else torch.cat([value, covariate], dim=-1)
        out, state = self.rnn.step(inputs, state)  # (B, P)
        return self._split(self.head(out)), state

    def _need_autoregressive(self, what: str) -> None:
        if self.config.strategy != "autoregressive":
            raise ValueError(
                f"{what}() streams one-step forecasts: it needs strategy='autoregressive', "
                f"this model is {self.config.strategy!r}"
            )

    def _check(
        self,
        x: Tensor,
        lengths: Tensor | None,
        covariates: Tensor | None,
        *,
        extra: int,
        covariates_needed: bool = True,
    ) -> Tensor:
        c = self.config
        if x.dim() != 3 or x.shape[-1] != c.target_size or not x.dtype.is_floating_point:
            raise ValueError(
                f"x must be (B, T, {c.target_size}) float past values, "
                f"got {tuple(x.shape)} {x.dtype}"
            )
        batch, steps = x.shape[:2]
        check_lengths(lengths, batch=batch, steps=steps)
        if c.covariate_size == 0 and covariates is not None:
            raise ValueError("covariates given but covariate_size is 0 in the config")
        if c.covariate_size > 0 and covariates_needed:
            want = (batch, steps + extra, c.covariate_size)
            if covariates is None or covariates.shape != want:
                got = None if covariates is None else tuple(covariates.shape)
                raise ValueError(f"covariates must be (B, T + horizon, C) = {want}, got {got}")
        if lengths is None:
            return torch.full((batch,), steps, dtype=torch.long, device=x.device)
        return lengths.to(x.device).long()

    def _split(self, raw: Tensor) -> Forecast:
        if self.config.distribution == "gaussian":
            mean, log_var = raw.chunk(2, dim=-1)
            return Forecast(mean, log_var.clamp(-12.0, 12.0))
        return Forecast(raw, None)

    def _direct(self, x: Tensor, lengths: Tensor, covariates: Tensor | None) -> Forecast:
        c = self.config
        steps = x.shape[1]
        inputs = x if covariates is None else torch.cat([x, covariates[:, :steps]], dim=-1)
        _, state = self.rnn(inputs, lengths=lengths)
        features = final_hidden(state, directions=1)  # (B, P)
        if covariates is not None:
            future = _future(covariates, lengths, c.horizon)  # (B, H, C)
            features = torch.cat([features, future.flatten(1)], dim=-1)
        raw = self.head(features).view(x.shape[0], c.horizon, c.target_size, -1)
        forecast = self._split(raw.flatten(2))
        if c.base == "none":
            return forecast
        # The head speaks in units of the base's typical error, so its zero start is also a
        # variance that fits the base (log_var 0 -> the base's training RMS error).
        if c.base == "given":
            assert covariates is not None  # checked by _check: covariate_size >= 1
            base = _future(covariates, lengths, c.horizon)[..., -1:]  # (B, H, 1)
        else:
            base = self.base_forecast(x, lengths)
        mean = base + c.base_scale * forecast.mean
        log_var = None
        if forecast.log_var is not None:
            log_var = forecast.log_var + 2 * math.log(c.base_scale)
        return Forecast(mean, log_var)

    def base_forecast(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, H, Y)`` the statistical base of a hybrid, from each row's window alone."""
        c = self.config
        if c.base == "given":
            raise ValueError("base 'given' is read from the covariates, not computed from x")
        lengths = self._check(x, lengths, None, extra=c.horizon, covariates_needed=False)
        need = min_steps(c.base, c.season)
        if int(lengths.min()) < need:
            raise ValueError(
                f"base {c.base!r} with season {c.season} needs windows of at least {need} steps, "
                f"got {int(lengths.min())}"
            )
        ets = None if c.ets is None else torch.tensor(c.ets, device=x.device)
        return base_forecast(x, lengths, base=c.base, horizon=c.horizon, season=c.season, ets=ets)

    def _one_step(self, series: Tensor, lengths: Tensor, covariates: Tensor | None) -> Forecast:
        """Teacher-forced one-step predictions: output ``t`` predicts ``series[:, t + 1]``."""
        steps = series.shape[1]
        inputs = series
        if covariates is not None:  # the step predicting time t+1 reads c_{t+1}
            inputs = torch.cat([series, covariates[:, 1 : steps + 1]], dim=-1)
        out, _ = self.rnn(inputs, lengths=lengths)  # (B, T', P)
        return self._split(self.head(out))

    def _roll_out(self, x: Tensor, lengths: Tensor, covariates: Tensor | None) -> Forecast:
        c = self.config
        steps = x.shape[1]
        inputs = x
        if covariates is not None:
            inputs = torch.cat([x, covariates[:, 1 : steps + 1]], dim=-1)
        out, state = self.rnn(inputs, lengths=lengths)  # (B, T, P)
        pred = self._split(self.head(gather_steps(out, lengths - 1)))  # (B, Y) each
        means, log_vars = [pred.mean], [pred.log_var]
        future = None if covariates is None else _future(covariates, lengths + 1, c.horizon - 1)
        for k in range(c.horizon - 1):
            cov_k = None if future is None else future[:, k]
            pred, state = self.step(means[-1], state, covariate=cov_k)
            means.append(pred.mean)
            log_vars.append(pred.log_var)
        mean = torch.stack(means, dim=1)  # (B, H, Y)
        if log_vars[0] is None:
            return Forecast(mean, None)
        return Forecast(mean, torch.stack([v for v in log_vars if v is not None], dim=1))


def _future(covariates: Tensor, start: Tensor, count: int) -> Tensor:
    """Rows ``covariates[b, start[b] : start[b] + count]`` -> ``(B, count, C)``."""
    index = start[:, None] + torch.arange(count, device=covariates.device)  # (B, count)
    return covariates.gather(1, index[..., None].expand(-1, -1, covariates.shape[-1]))


def _place_future(x: Tensor, y: Tensor, lengths: Tensor) -> Tensor:
    """``(B, T + H, Y)`` series: ``x``'s real steps, then ``y`` right after each row's length."""
    batch, steps, size = x.shape
    horizon = y.shape[1]
    mask = lengths_mask(lengths, batch=batch, steps=steps, device=x.device)
    series = torch.cat([x.masked_fill(~mask[..., None], 0.0), x.new_zeros(batch, horizon, size)], 1)
    index = lengths[:, None] + torch.arange(horizon, device=x.device)  # (B, H)
    return series.scatter(1, index[..., None].expand(-1, -1, size), y)
