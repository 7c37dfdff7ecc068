"""Statistical base forecasts computed from the input window alone (the hybrid forecaster's base).

A hybrid `rnnkit.models.Forecaster` (``base`` other than ``"none"``) adds its head's output to one
of these forecasts, as the ES-RNN (Smyl 2018) and Zhang's ARIMA + ANN hybrid put a network on top
of a statistical model. Each base reads only the ``lengths[b]`` real steps of row ``b``'s window,
so it is causal by construction and `rnnkit predict` recomputes it from the same window with
nothing stored but the model config. Every base is linear and shift-equivariant in ``x``
(``base(x + c) = base(x) + c``), so it commutes with per-series scaling and with windows shifted
by their last value.

- ``naive``: the last value, ``H`` times.
- ``seasonal_naive``: ``y[T + h] = x[T - m + (h mod m)]``, the last full season repeated.
- ``ets``: additive Holt-Winters with a damped trend, filtered over the window
  (level ``l``, trend ``b``, season ``s`` of period ``m``; smoothing ``alpha, beta, gamma`` and
  damping ``phi``)::

      l_t = alpha (x_t - s_{t-m}) + (1 - alpha)(l_{t-1} + phi b_{t-1})
      b_t = beta (l_t - l_{t-1}) + (1 - beta) phi b_{t-1}
      s_t = gamma (x_t - l_t) + (1 - gamma) s_{t-m}
      y_{T+h} = l_T + (phi + ... + phi^h) b_T + s_{T+h-m}        (h = 1..H)

  started from the window's first season (level: its mean; season: its deviations; trend: the
  change of the mean over the second season, 0 without one). The four coefficients are fitted
  once on the training windows (`fit_ets`) and stored in the model config: one fit per run, no
  refit per origin, and a window never sees a value after its own last step.
- ``given``: the base forecast arrives as the last known covariate's future steps, computed by the
  caller (the forecasting app filters statsmodels' ETS over each series' whole history with
  coefficients fitted before the origin, which no window of ``T`` steps can do by itself).
"""

from __future__ import annotations

import torch
from torch import Tensor

BASES = ("none", "naive", "seasonal_naive", "ets", "given")
ETS_START = (0.3, 0.05, 0.1, 0.95)  # alpha, beta, gamma, phi before `fit_ets`


def min_steps(base: str, season: int) -> int:
    """Real steps a window needs for ``base`` with period ``season``."""
    if base == "seasonal_naive":
        return season
    if base == "ets":
        return season + 1
    return 1


def base_forecast(
    x: Tensor,
    lengths: Tensor,
    *,
    base: str,
    horizon: int,
    season: int,
    ets: Tensor | None = None,
) -> Tensor:
    """``(B, H, Y)`` base forecast of the steps after each row's ``lengths[b]`` real steps.

    **Arguments:**
    - ``x``: ``(B, T, Y)`` past values (padding after each length is never read).
    - ``lengths``: ``(B,)`` int64 real steps per row, each at least `min_steps`.
    - ``ets``: ``(4,)`` alpha, beta, gamma, phi (``base="ets"`` only).
    """
    h = torch.arange(horizon, device=x.device)
    if base == "naive":
        index = (lengths - 1)[:, None].expand(-1, horizon)  # (B, H)
    elif base == "seasonal_naive":
        index = lengths[:, None] - season + (h % season)[None]  # (B, H)
    elif base == "ets":
        if ets is None:
            raise ValueError("base 'ets' needs its four coefficients")
        return _ets(x, lengths, ets, horizon=horizon, season=season)
    else:
        raise ValueError(f"base must be one of {BASES[1:]}, got {base!r}")
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))


def _ets(x: Tensor, lengths: Tensor, coef: Tensor, *, horizon: int, season: int) -> Tensor:
    alpha, beta, gamma, phi = coef.to(x.dtype).unbind()
    steps, size = x.shape[1], x.shape[2]  # (B, T, Y)
    m = season
    first = x[:, :m]  # (B, m, Y)
    level = first.mean(1)  # (B, Y)
    seasons = first - level[:, None] if m > 1 else torch.zeros_like(first)  # (B, m, Y)
    if steps >= 2 * m:
        second = x[:, m : 2 * m].mean(1)
        trend = torch.where((lengths >= 2 * m)[:, None], (second - level) / m, 0.0)
    else:
        trend = torch.zeros_like(level)
    # The state after step m - 1 of the first season; level sits at its middle, so move it on.
    level = level + trend * (m - 1) / 2
    slots = [seasons[:, i] for i in range(m)]  # s of the steps t with t % m == i
    for t in range(m, steps):
        live = (t < lengths)[:, None]  # (B, 1): rows whose window still runs
        s_old = slots[t % m]
        new_level = alpha * (x[:, t] - s_old) + (1 - alpha) * (level + phi * trend)
        new_trend = beta * (new_level - level) + (1 - beta) * phi * trend
        new_s = gamma * (x[:, t] - new_level) + (1 - gamma) * s_old if m > 1 else s_old
        level = torch.where(live, new_level, level)
        trend = torch.where(live, new_trend, trend)
        slots[t % m] = torch.where(live, new_s, s_old)
    damp = torch.cumsum(phi ** torch.arange(1, horizon + 1, device=x.device, dtype=x.dtype), 0)
    table = torch.stack(slots, dim=1)  # (B, m, Y)
    index = (lengths[:, None] + torch.arange(horizon, device=x.device)[None]) % m  # (B, H)
    s_ahead = table.gather(1, index[..., None].expand(-1, -1, size))  # (B, H, Y)
    return level[:, None] + damp[None, :, None] * trend[:, None] + s_ahead


def fit_ets(x: Tensor, y: Tensor, *, season: int, iterations: int = 30) -> tuple[float, ...]:
    """alpha, beta, gamma, phi minimising the squared error of the ETS base on training windows.

    ``x`` ``(N, T, Y)`` and ``y`` ``(N, H, Y)`` are the training windows (full length). L-BFGS on
    the logits of the coefficients (alpha, beta, gamma in (0, 1), phi in (0.8, 1)), from
    `ETS_START`; deterministic, about a second on CPU for a few hundred windows.
    """
    lo = torch.tensor([0.0, 0.0, 0.0, 0.8], dtype=torch.float64)
    span = torch.tensor([1.0, 1.0, 1.0, 0.2], dtype=torch.float64)
    start = (torch.tensor(ETS_START, dtype=torch.float64) - lo) / span
    raw = torch.logit(start).clone().requires_grad_(True)
    xs, ys = x.detach().double(), y.detach().double()
    lengths = torch.full((xs.shape[0],), xs.shape[1], dtype=torch.long)
    optimiser = torch.optim.LBFGS([raw], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimiser.zero_grad()
        pred = _ets(xs, lengths, lo + span * torch.sigmoid(raw), horizon=ys.shape[1], season=season)
        loss = ((pred - ys) ** 2).mean()
        loss.backward()
        return loss

    optimiser.step(closure)
    coef = (lo + span * torch.sigmoid(raw)).detach()
    if not torch.isfinite(coef).all():
        coef = torch.tensor(ETS_START, dtype=torch.float64)
    return tuple(round(float(v), 6) for v in coef)
