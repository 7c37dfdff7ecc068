"""The hybrid forecaster (``base``): an untrained hybrid forecasts exactly its statistical base, the
base reads nothing after a window's last real step, and the ETS filter equals a hand loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnkit.models import Forecaster, ForecasterConfig
from rnnkit.models._base import base_forecast, fit_ets

ETS = [0.4, 0.1, 0.3, 0.9]


def _hybrid(base: str, **kw: object) -> Forecaster:
    torch.manual_seed(0)
    config = ForecasterConfig(
        horizon=5,
        base=base,  # type: ignore[arg-type]
        season=4,
        ets=ETS,
        base_scale=0.5,
        hidden_size=8,
        distribution="gaussian",
        **kw,  # type: ignore[arg-type]
    )
    return Forecaster(config)


def _series(batch: int = 3, steps: int = 14) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    t = torch.arange(steps, dtype=torch.float32)
    wave = torch.sin(2 * torch.pi * t / 4) + 0.1 * t
    return (wave + 0.2 * torch.randn(batch, steps, generator=g))[..., None]  # (B, T, 1)


@pytest.mark.parametrize("base", ["naive", "seasonal_naive", "ets"])
def test_untrained_hybrid_is_exactly_its_base(base: str) -> None:
    model = _hybrid(base)
    x = _series()
    lengths = torch.tensor([14, 9, 6])
    forecast = model(x, lengths=lengths)
    want = model.base_forecast(x, lengths)
    assert torch.equal(forecast.mean, want)  # bit for bit: the head starts at zero
    assert forecast.log_var is not None  # and its spread is the base's training error
    torch.testing.assert_close(forecast.log_var, torch.full_like(want, 2 * math.log(0.5)))
    assert not torch.equal(want, torch.zeros_like(want))
    if base == "naive":
        torch.testing.assert_close(want[1, :, 0], x[1, 8, 0].expand(5))
    if base == "seasonal_naive":  # y[T + h] = x[T - 4 + h mod 4]
        rows = [x[2, 2 + h % 4, 0] for h in range(5)]
        torch.testing.assert_close(want[2, :, 0], torch.stack(rows))


def test_with_covariates_the_hybrid_also_starts_at_its_base() -> None:
    model = _hybrid("seasonal_naive", covariate_size=2)
    x = _series()
    cov = torch.randn(3, 14 + 5, 2)
    assert torch.equal(model(x, covariates=cov).mean, model.base_forecast(x))


@pytest.mark.parametrize("base", ["naive", "seasonal_naive", "ets"])
def test_the_base_never_reads_past_the_origin(base: str) -> None:
    """Changing values after a row's last real step (padding, or the future) leaves its base."""
    model = _hybrid(base)
    x = _series()
    lengths = torch.tensor([14, 9, 6])
    changed = x.clone()
    changed[1, 9:] += 100.0
    changed[2, 6:] -= 50.0
    torch.testing.assert_close(
        model.base_forecast(changed, lengths), model.base_forecast(x, lengths), rtol=0, atol=0
    )
    # and the window up to the origin is what it reads: a change there moves the forecast
    changed[1, 8] += 1.0
    assert not torch.equal(
        model.base_forecast(changed, lengths)[1], model.base_forecast(x, lengths)[1]
    )


def test_ets_filter_equals_a_hand_loop() -> None:
    x = _series(batch=1, steps=11)[0, :, 0].double().numpy()
    alpha, beta, gamma, phi = ETS
    m, h = 4, 5
    level = x[:m].mean()
    season = list(x[:m] - level)
    trend = (x[m : 2 * m].mean() - x[:m].mean()) / m
    level += trend * (m - 1) / 2
    for t in range(m, len(x)):
        s_old = season[t % m]
        new_level = alpha * (x[t] - s_old) + (1 - alpha) * (level + phi * trend)
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        season[t % m] = gamma * (x[t] - new_level) + (1 - gamma) * s_old
        level = new_level
    damp = np.cumsum(phi ** np.arange(1, h + 1))
    want = [level + damp[k] * trend + season[(len(x) + k) % m] for k in range(h)]
    got = base_forecast(
        torch.from_numpy(x)[None, :, None],
        torch.tensor([len(x)]),
        base="ets",
        horizon=h,
        season=m,
        ets=torch.tensor(ETS, dtype=torch.float64),
    )
    np.testing.assert_allclose(got[0, :, 0].numpy(), want, rtol=1e-12)


def test_fit_ets_improves_on_its_start_and_stays_in_range() -> None:
    x = _series(batch=1, steps=120)[0]  # (T, 1)
    xs = torch.stack([x[i : i + 16] for i in range(100)]).double()
    ys = torch.stack([x[i + 16 : i + 21] for i in range(100)]).double()
    coef = fit_ets(xs, ys, season=4)
    lengths = torch.full((100,), 16)

    def err(c: list[float] | tuple[float, ...]) -> float:
        pred = base_forecast(xs, lengths, base="ets", horizon=5, season=4, ets=torch.tensor(c))
        return float(((pred - ys) ** 2).mean())

    assert err(coef) < err([0.3, 0.05, 0.1, 0.95])
    assert all(0 <= c <= 1 for c in coef[:3]) and 0.8 <= coef[3] <= 1


def test_bad_base_settings_are_named() -> None:
    with pytest.raises(ValueError, match="base 'naive' needs strategy='direct'"):
        ForecasterConfig(base="naive", strategy="autoregressive")
    with pytest.raises(ValueError, match=r"base 'ets' needs ets = \[alpha, beta, gamma, phi\]"):
        ForecasterConfig(base="ets")
    model = _hybrid("seasonal_naive")
    with pytest.raises(ValueError, match="base 'seasonal_naive' with season 4 needs windows of at "
                       "least 4 steps, got 3"):  # fmt: skip
        model(_series(steps=3))
