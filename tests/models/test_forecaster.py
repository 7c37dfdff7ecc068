"""Forecasting a sine: direct and autoregressive, with covariates, Gaussian head and quantiles."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rnnkit.models import Forecast, Forecaster, ForecasterConfig

PAST, HORIZON = 24, 6
NOISE = 0.1  # standard deviation of the noise in the calibration test


def sines(n: int, *, bump: bool = False, noise: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """Sines of random phase and frequency: past ``(n, PAST, 1)``, future ``(n, HORIZON, 1)`` and a
    known covariate ``(n, PAST + HORIZON, 1)``; with ``bump`` the series adds that covariate, with
    ``noise`` i.i.d. Gaussian noise of that standard deviation."""
    t = torch.arange(PAST + HORIZON, dtype=torch.float32)
    phase = torch.rand(n, 1) * 6.28
    freq = 0.3 + 0.3 * torch.rand(n, 1)
    covariate = torch.randint(0, 2, (n, PAST + HORIZON)).float()
    series = torch.sin(phase + freq * t) + (covariate if bump else 0.0)
    series = series + noise * torch.randn_like(series)
    series, covariate = series[..., None], covariate[..., None]
    return series[:, :PAST], series[:, PAST:], covariate


def test_direct_forecaster_learns_a_sine_with_known_future_covariates(fit) -> None:
    config = ForecasterConfig(covariate_size=1, horizon=HORIZON, hidden_size=32)
    model = Forecaster(config)

    def loss(step: int) -> Tensor:
        x, y, cov = sines(64, bump=True)
        return model.loss(x, y, covariates=cov)

    fit(model, loss, steps=250)
    x, y, cov = sines(500, bump=True)
    mse = ((model(x, covariates=cov).mean - y) ** 2).mean()
    assert mse < 0.05 * y.var()  # a constant forecast scores 1.0 * var


def test_autoregressive_gaussian_forecaster_learns_a_sine(fit) -> None:
    config = ForecasterConfig(
        horizon=HORIZON,
        strategy="autoregressive",
        distribution="gaussian",
        hidden_size=32,
        cell="gru",
    )
    model = Forecaster(config)

    def loss(step: int) -> Tensor:
        x, y, _ = sines(64, noise=NOISE)
        return model.loss(x, y)

    curve = fit(model, loss, steps=200)
    assert curve[-1] < curve[0] - 1.0  # NLL falls as the variance learns to shrink
    x, y, _ = sines(500, noise=NOISE)
    forecast = model(x)
    assert ((forecast.mean - y) ** 2).mean() < 0.2 * y.var()  # errors compound over the roll-out
    bands = Forecaster.quantiles(forecast, [0.05, 0.25, 0.5, 0.75, 0.95])
    assert bands.shape == (500, HORIZON, 1, 5)
    assert (bands[..., :-1] < bands[..., 1:]).all()
    torch.testing.assert_close(bands[..., 2], forecast.mean)
    # One step ahead the truth's spread is the noise alone: the learned variance must find it,
    # and then a 90% band holds ~90% of the truth and a 50% band ~50% (neither too wide nor
    # too narrow).
    assert forecast.log_var is not None
    sigma = forecast.log_var[:, 0].exp().sqrt().median()
    assert 0.7 * NOISE < sigma < 1.6 * NOISE, sigma
    first, truth = bands[:, 0, 0], y[:, 0, 0]
    in90 = ((first[:, 0] <= truth) & (truth <= first[:, 4])).float().mean()
    in50 = ((first[:, 1] <= truth) & (truth <= first[:, 3])).float().mean()
    assert 0.8 < in90 < 0.97 and 0.35 < in50 < 0.7, (in90, in50)


def test_roll_out_equals_teacher_forcing_on_its_own_predictions() -> None:
    """The O(1)-per-step roll-out must equal one full forward over past + fed-back means."""
    model = Forecaster(
        ForecasterConfig(horizon=4, strategy="autoregressive", hidden_size=8, covariate_size=2)
    )
    x, cov = torch.randn(3, 5, 1), torch.randn(3, 9, 2)
    lengths = torch.tensor([5, 3, 2])
    forecast = model(x, lengths=lengths, covariates=cov)
    for b in range(3):
        n = int(lengths[b])
        series = torch.cat([x[b : b + 1, :n], forecast.mean[b : b + 1, :-1]], dim=1)
        inputs = torch.cat([series, cov[b : b + 1, 1 : n + 4]], dim=-1)
        out, _ = model.rnn(inputs)
        torch.testing.assert_close(
            model.head(out[:, n - 1 :]), forecast.mean[b : b + 1], atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("strategy", ["direct", "autoregressive"])
def test_padding_does_not_change_forecasts(strategy: str) -> None:
    model = Forecaster(
        ForecasterConfig(horizon=3, strategy=strategy, hidden_size=8, covariate_size=1)
    )  # type: ignore[arg-type]
    x, cov = torch.randn(2, 6, 1), torch.randn(2, 9, 1)
    lengths = torch.tensor([6, 4])
    both = model(x, lengths=lengths, covariates=cov).mean
    alone = model(x[1:, :4], covariates=cov[1:, :7]).mean
    torch.testing.assert_close(alone, both[1:], atol=1e-5, rtol=1e-5)


def test_bad_input_fails_with_the_reason() -> None:
    model = Forecaster(ForecasterConfig(horizon=3, hidden_size=8, covariate_size=2))
    with pytest.raises(
        ValueError,
        match=r"covariates must be \(B, T \+ horizon, C\) = \(2, 8, 2\), got \(2, 5, 2\)",
    ):
        model(torch.randn(2, 5, 1), covariates=torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match=r"x must be \(B, T, 1\) float past values"):
        model(torch.randn(2, 5), covariates=torch.randn(2, 8, 2))
    with pytest.raises(ValueError, match=r"targets y must be \(B, horizon, Y\) = \(2, 3, 1\)"):
        model.loss(torch.randn(2, 5, 1), torch.randn(2, 4, 1), covariates=torch.randn(2, 8, 2))
    with pytest.raises(ValueError, match="quantiles need a Gaussian forecast"):
        Forecaster.quantiles(Forecast(torch.zeros(1, 3, 1), None), [0.5])
    with pytest.raises(ValueError, match=r"quantile levels must be in \(0, 1\)"):
        Forecaster.quantiles(Forecast(torch.zeros(1, 3, 1), torch.zeros(1, 3, 1)), [0.5, 1.0])
    with pytest.raises(
        ValueError, match="strategy must be one of direct, autoregressive; got 'mimo'"
    ):
        ForecasterConfig(strategy="mimo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="covariates given but covariate_size is 0"):
        Forecaster(ForecasterConfig())(torch.randn(1, 4, 1), covariates=torch.randn(1, 5, 1))


@pytest.mark.parametrize(("cell", "layers", "covariates"), [("gru", 1, 0), ("lstm", 2, 2)])
def test_step_streams_what_predict_next_computes_on_the_whole_series(
    cell: str, layers: int, covariates: int
) -> None:
    torch.manual_seed(0)
    config = ForecasterConfig(
        covariate_size=covariates,
        strategy="autoregressive",
        distribution="gaussian",
        cell=cell,  # type: ignore[arg-type]
        hidden_size=8,
        num_layers=layers,
    )
    model = Forecaster(config).eval()
    series = torch.randn(3, 40, 1)
    cov = torch.randn(3, 41, covariates) if covariates else None
    batch = model.predict_next(series, covariates=cov)
    assert batch.log_var is not None and batch.mean.shape == (3, 40, 1)
    state = None
    for t in range(40):
        step_cov = None if cov is None else cov[:, t + 1]
        streamed, state = model.step(series[:, t], state, covariate=step_cov)
        assert streamed.log_var is not None
        torch.testing.assert_close(streamed.mean, batch.mean[:, t], atol=1e-5, rtol=0)
        torch.testing.assert_close(streamed.log_var, batch.log_var[:, t], atol=1e-5, rtol=0)
    # the teacher-forced loss scores exactly these one-step forecasts
    x, y = series[:, :-1], series[:, -1:]
    c = None if cov is None else cov[:, :40]  # (B, T + H, C) for the 39 past steps and H = 1
    nll = model.criterion(model.predict_next(x, covariates=c), series[:, 1:])
    torch.testing.assert_close(model.loss(x, y, covariates=c), nll)


def test_step_needs_an_autoregressive_model() -> None:
    model = Forecaster(ForecasterConfig(horizon=2))
    with pytest.raises(ValueError, match="needs strategy='autoregressive'"):
        model.step(torch.zeros(1, 1))
    ar = Forecaster(ForecasterConfig(strategy="autoregressive", covariate_size=1))
    with pytest.raises(ValueError, match=r"covariate must be \(B, 1\)"):
        ar.step(torch.zeros(1, 1))
