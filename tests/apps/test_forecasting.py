"""The forecasting application, CI-sized: airline, one walk-forward origin, one seed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.apps import app_config, run_app
from rnnkit.apps import forecasting as fc
from rnnkit.models import Forecaster
from rnnkit.train import load_run


def test_quick_run_beats_the_seasonal_naive_forecast(tmp_path) -> None:
    records = run_app("forecasting", quick=True, seeds=[0], out_dir=tmp_path)
    mase = {r["baseline"].split(" [")[0]: r for r in records if r["metric"].startswith("MASE")}
    snaive = mase["seasonal naive (m=12)"]
    # an untrained net (or one that missed the seasonality) cannot beat repeating last year
    assert snaive["beats_baseline"], (snaive["value"], snaive["baseline_value"])
    assert snaive["value"] < 0.9 * snaive["baseline_value"]
    assert mase["naive"]["value"] < 0.5 * mase["naive"]["baseline_value"]
    assert 0.0 <= snaive["rnn_interval_coverage"]["95"] <= 1.0
    assert all(r["dataset"].startswith("airline") for r in records)
    assert (tmp_path / "forecasts.png").stat().st_size > 10_000
    assert (tmp_path / "records.json").is_file()
    # The fit left a normal run directory: config, checkpoints, artifact, the origin as test split.
    (run,) = snaive["runs"]
    assert run == str(tmp_path / "runs" / "airline-origin0-seed0")
    loaded = load_run(run)
    assert isinstance(loaded.model, Forecaster)
    # sin/cos of the month, and the ETS baseline's forecast from the window's end as the base
    assert loaded.model.config.covariate_size == 3 and loaded.model.config.base == "given"
    assert loaded.experiment.data.seq_len == 24 and loaded.experiment.data.horizon == 12
    summary = json.loads((tmp_path / "runs" / "airline-origin0-seed0" / "summary.json").read_text())
    assert summary["monitor"] == "val_mae" and summary["monitor_mode"] == "min"
    assert summary["metrics"]["test_mae"] > 0.0  # the origin's window, in scaled log units
    step = snaive["selected_steps"][0]  # 0: validation kept the bare base over every checkpoint
    assert step % 20 == 0 and 0 <= step <= 200 and (step > 0) == snaive["head_kept"][0]


def test_training_part_never_reaches_past_the_origin() -> None:
    ds = fc.check_config(app_config("forecasting")).series["co2"]
    series = fc.load_series("co2", ds)
    assert series.raw is not None
    assert np.isnan(series.raw.to_numpy()).sum() == 59  # the registry's gaps survive the round trip
    part = fc.train_part(series, ds, 100)
    assert len(part) == 100 and not np.isnan(part).any()
    # months with no missing week keep their observed mean
    gaps = series.raw.isna().resample("MS").sum().to_numpy()[:100]
    assert np.allclose(part[gaps == 0], series.values[:100][gaps == 0])
    # whatever comes after the origin (here: garbage) changes nothing before it
    later = series.raw.index >= series.index[100]
    series.raw[later] = 1e6
    assert np.array_equal(fc.train_part(series, ds, 100), part)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("use",), ["weather"], r"use: Expected"),
        (("datasets", "airline", "horizon"), 0, r"'datasets\.airline'.*'horizon' must be"),
        (("datasets", "airline", "transform"), "sqrt", r"'datasets\.airline'.*transform: Expected"),
        (
            ("experiment", "optim", "lr"),
            -1.0,
            r"'experiment': optim\.lr must be a finite number > 0",
        ),
        (("experiment", "trainer", "max_step"), 5, r"unknown key 'trainer\.max_step'"),
        (("train",), {"lr": 0.1}, r"unknown key 'train'"),  # the old per-app training keys
        (
            ("datasets", "airline", "min_train"),
            50,
            r"'datasets\.airline': min_train 50 is too short for input_len 24 \+ horizon 12 \+ "
            r"validation 24 = 60; min_train >= 60 or input_len <= 14 would fit",
        ),
        (
            ("datasets", "airline", "base"),
            "arima_history",
            r"base 'arima_history' of 'airline' "
            r"needs its 'arima' spec",
        ),
    ],
)
def test_bad_recipe_names_the_field(tmp_path, path, value, message) -> None:
    cfg = app_config("forecasting", quick=True)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=message):
        run_app("forecasting", config=cfg, seeds=[0], out_dir=tmp_path)


def test_baselines_reproduce_the_reference_airline_figures() -> None:
    """DESIGN's reference for airline, one forecast of the last 24 months from 1958-12:
    seasonal-naive RMSE 77.0, SARIMA(0,1,1)(0,1,1)12 on logs RMSE 43.2."""
    from rnnkit.evaluate import rmse, seasonal_naive_forecast

    values, _ = fc._registry_values("airline")
    history, actual = values[:120], values[120:]
    assert rmse(actual, seasonal_naive_forecast(history.tolist(), 24, 12)) == pytest.approx(
        77.0, abs=0.05
    )
    spec = fc.ARIMASpec(order=[0, 1, 1], seasonal_order=[0, 1, 1, 12], log=True)
    mean, bounds, name = fc._arima(history, 24, spec)
    assert name == "ARIMA(0, 1, 1)(0, 1, 1)12 on logs"
    assert rmse(actual, mean) == pytest.approx(43.2, abs=0.05)
    assert (bounds[:, 0] < mean).all() and (mean < bounds[:, 1]).all()


@pytest.mark.parametrize(("trend", "seasonal"), [(None, "add"), ("add", "mul")])
def test_ets_history_base_is_statsmodels_filtered_forward(trend: str | None, seasonal: str) -> None:
    """Row e of the base is the H-step forecast from the state after y[:e]: its first column is
    statsmodels' one-step fitted value (which reads only earlier values) and the last row its
    forecast; the windows carry it, shifted like their values, after their past steps."""
    import warnings

    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    rng = np.random.default_rng(0)
    t = np.arange(90)
    y = 10 + 0.05 * t + np.sin(2 * np.pi * t / 12) + 0.2 * rng.standard_normal(90)
    spec = fc.ETSSpec(trend, trend is not None, seasonal, 12)  # type: ignore[arg-type]
    paths = fc._ets_paths(y, spec, horizon=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ExponentialSmoothing(
            y,
            trend=trend,
            damped_trend=trend is not None,
            seasonal=seasonal,
            seasonal_periods=12,
            initialization_method="estimated",
        ).fit()
    np.testing.assert_allclose(paths[-1], fit.forecast(6), rtol=1e-9)
    np.testing.assert_allclose(paths[:-1, 0], fit.fittedvalues, rtol=1e-9)
    windows = fc.windows(y[:, None], None, end=90, seq_len=24, horizon=6)
    carried = fc._with_base(windows, paths, input_len=24)
    x, _, cov = carried[10]  # inputs y[10:34], first target step 34
    assert cov.shape == (30, 1) and not cov[:24].any()
    np.testing.assert_allclose(cov[24:, 0], paths[34] - x[-1, 0])


@pytest.mark.parametrize(
    "spec",
    [
        fc.ARIMASpec(order="aic", max_lag=4),
        fc.ARIMASpec(order=[0, 1, 1], seasonal_order=[0, 1, 1, 12], log=True),
    ],
)
def test_arima_history_base_is_the_kalman_forecast_from_every_point(spec: fc.ARIMASpec) -> None:
    """Row e is the forecast from z[:e] with the coefficients fitted on z: its first column is
    statsmodels' one-step prediction (which reads only earlier values), its last row the
    forecast."""
    import warnings

    from statsmodels.tsa.arima.model import ARIMA

    rng = np.random.default_rng(1)
    t = np.arange(80)
    z = 5 + 0.02 * t + np.sin(2 * np.pi * t / 12) + 0.3 * rng.standard_normal(80)
    paths = fc._arima_paths(z, spec, horizon=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.order == "aic":
            from statsmodels.tsa.ar_model import ar_select_order

            lags = ar_select_order(z, maxlag=4, ic="aic", trend="c").ar_lags or []
            res = ARIMA(z, order=(max(lags), 0, 0), trend="c").fit()
        else:
            res = ARIMA(np.log(z), order=(0, 1, 1), seasonal_order=(0, 1, 1, 12), trend="n").fit()
    back = np.exp if spec.log else np.asarray
    np.testing.assert_allclose(paths[-1], back(res.forecast(5)), rtol=1e-8)
    np.testing.assert_allclose(paths[1:-1, 0], back(res.fittedvalues[1:]), rtol=1e-8)
