"""Time-series forecasting on three real series, walk-forward, against naive and statistical
forecasts.

For every series named in the recipe's ``use`` (``sunspots``, ``co2``, ``airline`` from the
`rnnkit.data` registry) the recipe sets expanding-window origins with
`rnnkit.evaluate.walk_forward`: the last origin forecasts the final ``horizon`` points, earlier ones
step back by ``step``. At each origin everything is fitted on the data before the origin only:

- the RNN, `rnnkit.models.Forecaster` (direct multi-horizon, Gaussian head), trained by the
  library's trainer (`rnnkit.train.fit` on the recipe's ``experiment:``, a typed
  `ForecastingExperiment`): an optional log transform, a `StandardScaler` fitted on the training
  part, windows of ``input_len`` past values (`rnnkit.evaluate.backtest.windows`, each shifted by
  its own last value, so a trend is not mistaken for a level) plus sin/cos of the season phase as
  known past-and-future covariates; the checkpoint is selected by ``val_mae`` on the windows whose
  targets are the last ``val_steps`` points of the training part, and the one window at the origin
  is the run's test split. With a ``base`` (a hybrid, ES-RNN style) the head corrects a
  statistical forecast and starts at zero, i.e. exactly at the base; ``ets_history`` /
  ``arima_history`` are the series' own ETS / ARIMA baselines fitted before the origin and run
  forward to every window's end (`_history_paths`), handed to the model as its base. After
  training, the bare base and the equal-weight combination of base and hybrid compete with the
  best checkpoint on the validation windows (``model.base_select: validation``,
  `rnnkit.train.base_select`), so the RNN departs from the base only where validation says it
  helps. Each (series, origin, seed) leaves a run directory under ``out_dir/runs``; the forecast
  is made by the chosen one (``base_choice``: the weights of its artifact). The point
  forecast is the Gaussian's median, the 80 % / 95 % intervals its quantiles;
- the baselines: naive, seasonal naive, statsmodels' ETS (``ExponentialSmoothing``) and
  (S)ARIMA with the orders fixed in the recipe (or an AR order chosen by AIC on the training
  part).

MAE, RMSE and MASE (scaled by the in-sample seasonal-naive MAE of the origin's training part, with
the recipe's ``mase_season``) are averaged over origins; the RNN's are per seed, then mean ± std
over seeds. Records per series: the RNN's MASE against every baseline (the seasonal naive and the
strongest baseline are headline records), and RMSE / MAE against the strongest baseline. Plots: the
last origin's forecast with its 80 % and 95 % intervals against the actuals, one panel per series.

co2 is weekly with 59 missing weeks: the gaps are filled by `rnnkit.data.Imputer` (``impute``
method, fitted on the weeks before each origin only) and the series is then resampled to monthly
means, so all three series are forecast at their natural seasonal period.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import pandas as pd
import torch

from rnnkit.apps._common import merge, record, settings_from_dict, timer
from rnnkit.data import Imputer, StandardScaler, load
from rnnkit.evaluate import (
    mae,
    mase,
    naive_forecast,
    rmse,
    seasonal_naive_forecast,
    walk_forward,
)
from rnnkit.evaluate.backtest import windows
from rnnkit.models.forecaster import Forecaster
from rnnkit.train import DataParts, build, fit
from rnnkit.train.experiment_io import experiment_from_dict

APP = "forecasting"
LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)  # 95 % and 80 % central intervals and the median
BASELINE_NAMES = {
    "naive": "naive",
    "snaive": "seasonal naive",
    "ets": "ETS",
    "arima": "ARIMA",
}


# ---------------------------------------------------------------- the recipe


@dataclass
class ETSSpec:
    """statsmodels ``ExponentialSmoothing`` settings, fixed before any test score is seen."""

    trend: Literal["add", "mul"] | None = None
    damped_trend: bool = False
    seasonal: Literal["add", "mul"] | None = None
    seasonal_periods: int | None = None


@dataclass
class ARIMASpec:
    """statsmodels ``ARIMA`` orders; ``order: aic`` = AR(p), p by AIC on each training part."""

    order: list[int] | Literal["aic"] = "aic"
    seasonal_order: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    log: bool = False  # fit on logs, exponentiate the forecast and its intervals
    max_lag: int = 12  # order aic: the largest p tried
    trend: str | None = None  # None: a constant iff the model has no differencing


@dataclass
class SeriesSpec:
    """One series' walk-forward, the RNN's window and the baselines (``datasets.<name>``)."""

    start: str  # time stamp of the first value
    freq: str  # pandas frequency of the registry values
    horizon: int  # H, steps forecast from each origin (the experiment's data.horizon)
    folds: int  # walk-forward origins
    min_train: int  # values before the first origin, at least
    season: int  # seasonal naive period and the phase covariates' period
    mase_season: int  # MASE scale: in-sample seasonal-naive MAE with this lag
    input_len: int  # T, past values per window (the experiment's data.seq_len)
    step: int | None = None  # origins step back by this (None: horizon)
    transform: Literal["none", "log"] = "none"  # the RNN models log values (multiplicative)
    season_covariates: bool = True  # sin/cos of the season phase as known covariates
    # The hybrid's statistical base for this series (experiment.model.base; None: the
    # experiment's), with period ``season``; chosen on origins before the test ones.
    # ets_history / arima_history: the ETS / ARIMA baseline of this series (its 'ets' / 'arima'
    # spec, fitted on the training part before the origin) forecasting from every point of the
    # history, so each window's base is the baseline's forecast from that window's end;
    # combined: the mean of the two (a forecast combination, M-competition style).
    base: (
        Literal[
            "none", "naive", "seasonal_naive", "ets", "ets_history", "arima_history", "combined"
        ]
        | None
    ) = None
    impute: str | None = None  # rnnkit.data.Imputer method for gaps (co2)
    resample: str | None = None  # resample to this pandas frequency after imputing (co2: MS)
    plot_history: int | None = None  # history points in the plot (None: 4 horizons)
    ets: ETSSpec | None = None
    arima: ARIMASpec | None = None

    def __post_init__(self) -> None:
        for name in ("horizon", "folds", "min_train", "season", "mase_season", "input_len"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"field {name!r} must be an integer >= 1, got {getattr(self, name)}"
                )
        if self.step is not None and self.step < 1:
            raise ValueError(f"field 'step' must be an integer >= 1 or null, got {self.step}")


@dataclass
class ForecastingSettings:
    """The app's own keys; training keys live in ``experiment:`` (a `ForecastingExperiment`)."""

    use: list[Literal["sunspots", "co2", "airline"]]  # series to forecast, in this order
    val_steps: int = 24  # validation windows: targets in the last val_steps points before an origin

    def __post_init__(self) -> None:
        if not self.use:
            raise ValueError("field 'use' must name at least one series")
        if self.val_steps < 1:
            raise ValueError(f"field 'val_steps' must be an integer >= 1, got {self.val_steps}")


@dataclass
class Recipe:
    settings: ForecastingSettings
    series: dict[str, SeriesSpec]
    experiment: dict[str, Any]  # the recipe's experiment section, checked; per-run fields added
    # Each series' parsed experiment; a fit replaces seed and run name (parsing is ~0.25 s).
    experiments: dict[str, Any] = field(default_factory=dict)


def check_config(config: dict[str, Any]) -> Recipe:
    """The recipe as typed settings; a bad field raises ``ValueError`` naming it."""
    where = f"{APP} recipe"
    known = ("app", "threads", "use", "val_steps", "datasets", "experiment", "quick")
    unknown = [k for k in config if k not in known]
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r}; valid keys at the top level: {', '.join(known)}"
            " (training keys go under 'experiment:', as `rnnkit fit` reads them)"
        )
    own: dict[str, Any] = {k: config[k] for k in ("use", "val_steps") if k in config}
    settings = settings_from_dict(ForecastingSettings, own, where=where)
    sets = config.get("datasets")
    if not isinstance(sets, dict):
        raise ValueError(f"{where}: field 'datasets' must be a mapping, got {sets!r}")
    series = {}
    for name in settings.use:
        if name not in sets:
            raise ValueError(f"{where}: field 'datasets.{name}' is missing (named in 'use')")
        series[name] = settings_from_dict(
            SeriesSpec, sets[name], where=f"{where}, field 'datasets.{name}'"
        )
    exp = config.get("experiment", {})
    if not isinstance(exp, dict):
        raise ValueError(f"{where}: field 'experiment' must be a mapping, got {exp!r}")
    recipe = Recipe(settings, series, exp)
    for name, spec in series.items():  # checked like `rnnkit fit` checks a recipe
        val = max(settings.val_steps, spec.horizon)
        need = spec.input_len + spec.horizon + val  # one training window before the validation
        if spec.min_train < need:
            fits = spec.min_train - spec.horizon - val
            hint = f"input_len <= {fits}" if fits >= 1 else "a shorter horizon or val_steps"
            raise ValueError(
                f"{where}, field 'datasets.{name}': min_train {spec.min_train} is too short for "
                f"input_len {spec.input_len} + horizon {spec.horizon} + validation {val} = "
                f"{need}; min_train >= {need} or {hint} would fit"
            )
        recipe.experiments[name] = experiment(recipe, spec, seed=0, root=Path("runs"), name=name)
    return recipe


def experiment(recipe: Recipe, spec: SeriesSpec, *, seed: int, root: Path, name: str) -> Any:
    """One fit's `ForecastingExperiment`: the recipe's ``experiment:`` plus this series' window."""
    fixed: dict[str, Any] = {
        "task": "forecasting",
        "seed": seed,
        # the windows are built in memory per origin: the source names them, not a registry set
        "data": {"source": f"{APP}:{name}", "seq_len": spec.input_len, "horizon": spec.horizon},
        "run": {"root": str(root), "name": name},
    }
    if spec.base is not None:
        given = spec.base in HISTORY_BASES
        fixed["model"] = {"base": "given" if given else spec.base}
        for need in HISTORY_BASES.get(spec.base, ()):
            if getattr(spec, need) is None:
                raise ValueError(
                    f"{APP} recipe: base {spec.base!r} of {name!r} needs its {need!r} spec"
                )
    try:
        exp = experiment_from_dict(merge(recipe.experiment, fixed))
    except ValueError as err:
        raise ValueError(f"{APP} recipe, field 'experiment': {err}") from None
    if exp.model.distribution != "gaussian":
        raise ValueError(
            f"{APP} recipe: field 'experiment.model.distribution' must be gaussian (the "
            f"intervals are its quantiles), got {exp.model.distribution!r}"
        )
    return exp


# ---------------------------------------------------------------- data


@dataclass
class Series:
    """One series ready for walk-forward: values, their time stamps, and how they were made."""

    name: str
    values: np.ndarray  # (N,) float64, NaN where missing
    index: pd.Index  # time stamps of values
    note: str = ""
    raw: pd.Series | None = None  # co2: the weekly series before resampling, NaN at the gaps
    info: dict[str, str] = field(default_factory=dict)


def _registry_values(name: str) -> tuple[np.ndarray, dict[str, str]]:
    """A registry set's whole series in its original units, NaN where a value is missing.

    The registry prepares windows on one fixed split; walk-forward refits per origin, so only its
    values are used here: all rows go into the training split and the registry's scaler is undone.
    """
    opts: dict[str, Any] = {"val_size": 0, "test_size": 1, "input_len": 1, "horizon": 1}
    if name == "co2":
        opts["missing"] = "mask"  # adds a co2_missing indicator column
    splits = load(name, **opts)
    data = splits.meta["data"]
    scaled = np.concatenate([data.train.series, data.test.series], axis=0)
    values = data.scaler.inverse_transform(scaled[:, :1], columns=[0])[:, 0].astype(np.float64)
    values = np.round(values, 6)  # undo the float round trip of the scaler
    if "co2_missing" in data.columns:
        values[scaled[:, data.columns.index("co2_missing")] > 0.5] = np.nan
    info = {"source": splits.info.source, "licence": splits.info.licence}
    return values, info


def load_series(name: str, ds: SeriesSpec) -> Series:
    values, info = _registry_values(name)
    index = pd.date_range(str(ds.start), periods=len(values), freq=ds.freq)
    if not ds.resample:
        return Series(name, values, index, info=info)
    raw = pd.Series(values, index=index, name=name)
    monthly = raw.resample(ds.resample).mean()  # months without any week stay NaN
    note = (
        f"{int(raw.isna().sum())} missing weeks filled by Imputer({ds.impute!r}) fitted before "
        f"each origin; weekly values resampled to {ds.resample} means"
    )
    return Series(name, monthly.to_numpy(), monthly.index, note=note, raw=raw, info=info)


def train_part(series: Series, ds: SeriesSpec, end: int) -> np.ndarray:
    """The series before position ``end``, missing values filled from that part alone."""
    if series.raw is None or ds.resample is None:
        part = series.values[:end]
        if np.isnan(part).any():
            raise ValueError(f"{series.name}: missing values but no 'impute' method in the recipe")
        return part
    if ds.impute is None:
        raise ValueError(f"{series.name}: missing values but no 'impute' method in the recipe")
    cutoff = series.index[end]  # first month of the forecast
    weekly = series.raw[series.raw.index < cutoff].to_frame()
    filled = Imputer(ds.impute, columns=[series.name]).fit(weekly).transform(weekly)  # type: ignore[arg-type]
    monthly = filled[series.name].resample(ds.resample).mean().to_numpy()
    if len(monthly) != end or np.isnan(monthly).any():
        raise ValueError(f"{series.name}: resampling the filled weeks gave {len(monthly)} months")
    return monthly


def test_part(series: Series, start: int, stop: int) -> np.ndarray:
    actual = series.values[start:stop]
    if np.isnan(actual).any():
        raise ValueError(f"{series.name}: the forecast window {start}-{stop} has missing actuals")
    return actual


# ---------------------------------------------------------------- the RNN


def _phase(n: int, season: int) -> np.ndarray:
    """``(n, 2)`` sin/cos of the position in the season (known for the future too)."""
    t = 2 * math.pi * np.arange(n) / season
    return np.stack([np.sin(t), np.cos(t)], axis=1)


@dataclass
class RNNForecast:
    quantiles: np.ndarray  # (H, len(LEVELS)) in original units
    best_step: int
    val_mae: float
    run_dir: str
    choice: str = "hybrid"  # what validation chose: "base", "combined" (base + half) or "hybrid"

    @property
    def head(self) -> bool:
        """Whether the trained correction adds to the base (in full or halved)."""
        return self.choice != "base"

    @property
    def point(self) -> np.ndarray:
        return self.quantiles[:, LEVELS.index(0.5)]


def _shifted(samples: list[tuple[Any, ...]]) -> list[tuple[np.ndarray, ...]]:
    """Each window minus its last input value (inputs and targets; covariates as they are)."""
    out = []
    for s in samples:
        last = s[0][-1:]  # (1, 1)
        rest = tuple(np.asarray(c, dtype=np.float32) for c in s[2:])
        past = np.asarray(s[0] - last, dtype=np.float32)
        future = np.asarray(s[1] - last, dtype=np.float32)
        out.append((past, future, *rest))
    return out


class _Checks(L.Callback):
    """``(global step, val_mae)`` at every validation during fitting (the selected step)."""

    def __init__(self) -> None:
        self.values: list[tuple[int, float]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.values.append((trainer.global_step, float(trainer.callback_metrics["val_mae"])))


def fit_rnn(
    history: np.ndarray,
    actual: np.ndarray,
    ds: SeriesSpec,
    recipe: Recipe,
    *,
    series: str,
    seed: int,
    root: Path,
    name: str,
) -> RNNForecast:
    """Fit a Forecaster through `rnnkit.train.fit` on ``history`` only; forecast the next
    ``horizon`` values. ``actual`` (the future) is the run's test split, scored after the fit."""
    horizon, input_len = ds.horizon, ds.input_len
    log = ds.transform == "log"
    y = np.log(history) if log else history.astype(np.float64)
    scaler = StandardScaler().fit(y[:, None])
    z = scaler.transform(y[:, None])  # (n, 1)
    n = len(z)
    cov = _phase(n + horizon, ds.season) if ds.season_covariates else None
    val_steps = max(recipe.settings.val_steps, horizon)
    cut = n - val_steps  # validation windows: targets in [cut, n)
    train = windows(z, cov, end=cut, seq_len=input_len, horizon=horizon)
    every = windows(z, cov, end=n, seq_len=input_len, horizon=horizon)
    val = [w for start, w in enumerate(every) if start + input_len >= cut]
    future = np.log(actual) if log else actual.astype(np.float64)
    z_future = scaler.transform(future[:, None])
    origin: tuple[Any, ...] = (z[n - input_len :], z_future)
    if cov is not None:
        origin = (*origin, cov[n - input_len :])
    if ds.base in HISTORY_BASES:
        raw = _history_paths(history.astype(np.float64), ds, horizon=horizon)  # (n + 1, H)
        if log:  # a multiplicative base can dip below 0 only on data that has no log transform
            raw = np.log(np.maximum(raw, 1e-9 * float(np.max(history))))
        paths = scaler.transform(raw.reshape(-1, 1)).reshape(raw.shape)  # model units
        train = _with_base(train, paths, input_len=input_len)
        val = _with_base(every, paths, input_len=input_len)[len(every) - len(val) :]
        origin = _with_base([origin], paths, input_len=input_len, first=n - input_len)[0]
    base = recipe.experiments[series]
    exp = dataclasses.replace(
        base,
        seed=seed,
        data=dataclasses.replace(base.data, source=f"{APP}:{name}"),
        run=dataclasses.replace(base.run, root=str(root), name=name),
    )
    run_dir = root / name
    if run_dir.exists():
        shutil.rmtree(run_dir)  # this app's own folder from an earlier run
    checks = _Checks()
    parts = DataParts(
        _shifted(train), _shifted(val), _shifted([origin]), meta={"season": ds.season}
    )
    built = build(exp, data=parts)
    result = fit(exp, built=built, callbacks=[checks], test=True)
    # The best checkpoint, its bare base or their combination, as the validation windows chose
    # (the library's model.base_select; the artifact holds the same weights).
    model = built.module.model.eval()
    best_step, best_mae = min(checks.values, key=lambda v: v[1]) if checks.values else (0, math.nan)
    choice = result.summary.get("base_select") or {}
    chosen = str(choice.get("chosen", "hybrid"))
    if chosen != "hybrid":  # validated after training: the bare base has no step of its own
        best_step = 0 if chosen == "base" else best_step
        best_mae = math.nan if choice[chosen] is None else float(choice[chosen])
    x_test, _, *c_test = _shifted([origin])[0]
    x = torch.from_numpy(x_test)[None]  # (1, T, 1)
    c = torch.from_numpy(c_test[0])[None] if c_test else None  # (1, T + H, 2)
    with torch.no_grad():
        q = Forecaster.quantiles(model(x, covariates=c), LEVELS)[0, :, 0].numpy()  # (H, Q)
    last = float(z[-1, 0])
    q = scaler.inverse_transform((q + last).astype(np.float64).reshape(-1, 1), columns=[0])
    q = q.reshape(horizon, len(LEVELS))
    return RNNForecast(np.exp(q) if log else q, best_step, best_mae, str(result.run_dir), chosen)


# base -> the baseline specs it runs forward ("combined": the mean of the two)
HISTORY_BASES = {"ets_history": ("ets",), "arima_history": ("arima",), "combined": ("ets", "arima")}
_PATHS: dict[tuple[Any, ...], np.ndarray] = {}  # one fit per origin, shared by the seeds


def _history_paths(history: np.ndarray, ds: SeriesSpec, *, horizon: int) -> np.ndarray:
    """The baseline's forecasts from every point of ``history`` (original units), cached: the
    seeds of one origin share one fit."""
    key = (ds.base, repr(ds.ets), repr(ds.arima), horizon, history.tobytes())
    if key not in _PATHS:
        paths = []
        if ds.base in ("ets_history", "combined"):
            assert ds.ets is not None  # checked with the recipe
            paths.append(_ets_paths(history, ds.ets, horizon=horizon))
        if ds.base in ("arima_history", "combined"):
            assert ds.arima is not None  # checked with the recipe
            paths.append(_arima_paths(history, ds.arima, horizon=horizon))
        _PATHS[key] = np.mean(paths, axis=0)
    return _PATHS[key]


def _arima_paths(y: np.ndarray, spec: ARIMASpec, *, horizon: int) -> np.ndarray:
    """``(n + 1, H)``: row ``e`` is the ``H``-step ARIMA forecast from ``y[:e]``, with the
    coefficients fitted on all of ``y`` (the training part before the origin) as the ARIMA
    baseline fits them. From the Kalman filter's predicted states, ``Z T^k a_{e|e-1}`` plus the
    intercepts; row ``n`` equals the baseline's forecast (exponentiated when ``log``)."""
    from statsmodels.tsa.ar_model import ar_select_order
    from statsmodels.tsa.arima.model import ARIMA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter
        z = np.log(y) if spec.log else y
        if spec.order == "aic":
            lags = ar_select_order(z, maxlag=spec.max_lag, ic="aic", trend="c").ar_lags or []
            order = (max(lags) if lags else 0, 0, 0)
        else:
            order = (spec.order[0], spec.order[1], spec.order[2])
        seasonal = tuple(spec.seasonal_order)
        trend = spec.trend or ("c" if order[1] == 0 and seasonal[1] == 0 else "n")
        res = ARIMA(z, order=order, seasonal_order=seasonal, trend=trend).fit()
    f = res.filter_results
    state = np.asarray(f.predicted_state)  # (k, n + 1): a_{e|e-1}
    step = np.asarray(f.transition)[:, :, -1]  # T
    lift = np.asarray(f.state_intercept)[:, -1]  # c: a_{t+1} = T a_t + c
    design = np.asarray(f.design)[0, :, -1]  # Z
    intercept = float(np.asarray(f.obs_intercept)[0, -1])  # d: y_t = Z a_t + d
    out = np.empty((state.shape[1], horizon))
    for k in range(horizon):
        out[:, k] = design @ state + intercept
        state = step @ state + lift[:, None]
    return np.exp(out) if spec.log else out


def _ets_paths(y: np.ndarray, spec: ETSSpec, *, horizon: int) -> np.ndarray:
    """``(n + 1, H)``: row ``e`` is the ``H``-step Holt-Winters forecast from the state after
    ``y[:e]``, with the coefficients and initial states of statsmodels' fit on all of ``y`` (the
    training part before the origin, as the ETS baseline fits it). The recursion is statsmodels'
    own, so row ``n`` is the ETS baseline's forecast and column 0 its fitted values."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter
        p = (
            ExponentialSmoothing(
                y,
                trend=spec.trend,
                damped_trend=spec.damped_trend,
                seasonal=spec.seasonal,
                seasonal_periods=spec.seasonal_periods,
                initialization_method="estimated",
            )
            .fit()
            .params
        )
    mul = spec.seasonal == "mul"
    alpha = float(p["smoothing_level"])
    beta = float(p["smoothing_trend"]) if spec.trend else 0.0
    gamma = float(p["smoothing_seasonal"]) if spec.seasonal else 0.0
    phi = float(p["damping_trend"]) if spec.trend and spec.damped_trend else 1.0
    level = float(p["initial_level"])
    trend = float(p["initial_trend"]) if spec.trend else 0.0
    season = list(np.asarray(p["initial_seasons"], dtype=np.float64)) if spec.seasonal else []
    m = len(season) or 1
    season = season or [1.0 if mul else 0.0]
    damp = np.cumsum(phi ** np.arange(1, horizon + 1))
    ahead = np.arange(horizon)
    out = np.empty((len(y) + 1, horizon))
    for t in range(len(y) + 1):
        s_ahead = np.asarray(season)[(t + ahead) % m]
        trended = level + damp * trend
        out[t] = trended * s_ahead if mul else trended + s_ahead
        if t == len(y):
            break
        s_old, before = season[t % m], level + phi * trend
        new_level = alpha * (y[t] / s_old if mul else y[t] - s_old) + (1 - alpha) * before
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        if spec.seasonal:
            seen = y[t] / before if mul else y[t] - before
            season[t % m] = gamma * seen + (1 - gamma) * s_old
        level = new_level
    return out


def _with_base(
    samples: list[tuple[Any, ...]], paths: np.ndarray, *, input_len: int, first: int = 0
) -> list[tuple[Any, ...]]:
    """Windows with the base forecast from each window's end as one more covariate channel
    (zero over the past steps), the channel a ``base: given`` model reads; minus the window's
    last value, as `_shifted` will shift its inputs and targets."""
    out = []
    for k, s in enumerate(samples):
        end = first + k + input_len  # the window's first target step
        channel = np.zeros((input_len + len(paths[end]), 1))
        channel[input_len:, 0] = paths[end] - s[0][-1, 0]  # shifted like the window
        cov = channel if len(s) < 3 else np.concatenate([s[2], channel], axis=1)
        out.append((s[0], s[1], cov))
    return out


# ---------------------------------------------------------------- baselines


def _ets(history: np.ndarray, horizon: int, spec: ETSSpec) -> np.ndarray:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    model = ExponentialSmoothing(
        history,
        trend=spec.trend,
        damped_trend=spec.damped_trend,
        seasonal=spec.seasonal,
        seasonal_periods=spec.seasonal_periods,
        initialization_method="estimated",
    ).fit()
    return np.asarray(model.forecast(horizon), dtype=np.float64)


def _arima(
    history: np.ndarray, horizon: int, spec: ARIMASpec
) -> tuple[np.ndarray, np.ndarray, str]:
    """Point forecast, ``(H, 4)`` 95 % and 80 % interval bounds, and the order used."""
    from statsmodels.tsa.ar_model import ar_select_order
    from statsmodels.tsa.arima.model import ARIMA

    log = spec.log
    y = np.log(history) if log else history
    if spec.order == "aic":  # AR order chosen by AIC on this training part only
        sel = ar_select_order(y, maxlag=spec.max_lag, ic="aic", trend="c")
        lags = sel.ar_lags or []
        order = [max(lags) if lags else 0, 0, 0]
    else:
        order = list(spec.order)
    seasonal = tuple(spec.seasonal_order)
    trend = spec.trend or ("c" if order[1] == 0 and seasonal[1] == 0 else "n")
    res = (
        ARIMA(y, order=tuple(order), seasonal_order=seasonal, trend=trend)
        .fit()
        .get_forecast(horizon)
    )
    mean = np.asarray(res.predicted_mean, dtype=np.float64)
    bounds = np.concatenate(
        [np.asarray(res.conf_int(alpha=a), dtype=np.float64) for a in (0.05, 0.2)], axis=1
    )  # lo95, hi95, lo80, hi80
    name = f"ARIMA{tuple(order)}" + (f"{seasonal[:3]}{seasonal[3]}" if seasonal[3] else "")
    if log:
        mean, bounds, name = np.exp(mean), np.exp(bounds), name + " on logs"
    return mean, bounds, name


def _covered(actual: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    return float(np.mean((actual >= lo) & (actual <= hi)))


# ---------------------------------------------------------------- one series


def _scores(actual: np.ndarray, pred: np.ndarray, history: np.ndarray, m: int) -> dict[str, float]:
    return {
        "MAE": mae(actual, pred),
        "RMSE": rmse(actual, pred),
        "MASE": mase(actual, pred, history, season=m),
    }


def _mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def evaluate_series(
    series: Series, ds: SeriesSpec, recipe: Recipe, seeds: list[int], *, root: Path
) -> dict[str, Any]:
    """Walk forward over one series: baselines once, the RNN once per seed, at every origin."""
    n = len(series.values)
    origins = walk_forward(
        n, horizon=ds.horizon, folds=ds.folds, min_train=ds.min_train, step=ds.step
    )
    h, m = ds.horizon, ds.mase_season
    base_rows: dict[str, list[dict[str, float]]] = {}
    base_names: dict[str, str] = {}
    arima_cover: dict[str, list[float]] = {"80": [], "95": []}
    rnn_rows: dict[int, list[dict[str, float]]] = {s: [] for s in seeds}
    rnn_cover: dict[int, dict[str, list[float]]] = {s: {"80": [], "95": []} for s in seeds}
    rnn_wall = {s: 0.0 for s in seeds}
    rnn_cpu = {s: 0.0 for s in seeds}
    best_steps: list[int] = []
    heads: list[bool] = []
    choices: list[str] = []
    run_dirs: list[str] = []
    last_plot: dict[str, Any] = {}
    base_wall, base_cpu = 0.0, 0.0
    for k, o in enumerate(origins):
        history = train_part(series, ds, o.train_end)
        actual = test_part(series, o.train_end, o.test_end)
        cpu = time.process_time()
        with timer() as t:
            preds: dict[str, np.ndarray] = {
                "naive": naive_forecast(history.tolist(), h),
                "snaive": seasonal_naive_forecast(history.tolist(), h, ds.season),
            }
            base_names["naive"] = "naive"
            base_names["snaive"] = f"seasonal naive (m={ds.season})"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # statsmodels' convergence chatter
                if ds.ets is not None:
                    preds["ets"] = _ets(history, h, ds.ets)
                    e = ds.ets
                    base_names["ets"] = (
                        f"ETS (trend {e.trend or 'none'}"
                        f"{', damped' if e.damped_trend else ''}, seasonal "
                        f"{e.seasonal or 'none'}"
                        f"{' m=' + str(e.seasonal_periods) if e.seasonal else ''})"
                    )
                if ds.arima is not None:
                    preds["arima"], bounds, name = _arima(history, h, ds.arima)
                    base_names["arima"] = (
                        name if ds.arima.order != "aic" else "ARIMA(p,0,0), p by AIC"
                    )
                    arima_cover["95"].append(_covered(actual, bounds[:, 0], bounds[:, 1]))
                    arima_cover["80"].append(_covered(actual, bounds[:, 2], bounds[:, 3]))
        base_wall += t["s"]
        base_cpu += time.process_time() - cpu
        for key, pred in preds.items():
            base_rows.setdefault(key, []).append(_scores(actual, pred, history, m))
        for s in seeds:
            cpu = time.process_time()
            with timer() as t:
                fc = fit_rnn(
                    history,
                    actual,
                    ds,
                    recipe,
                    series=series.name,
                    seed=s,
                    root=root,
                    name=f"{series.name}-origin{k}-seed{s}",
                )
            rnn_wall[s] += t["s"]
            rnn_cpu[s] += time.process_time() - cpu
            rnn_rows[s].append(_scores(actual, fc.point, history, m))
            q = fc.quantiles
            rnn_cover[s]["95"].append(_covered(actual, q[:, 0], q[:, 4]))
            rnn_cover[s]["80"].append(_covered(actual, q[:, 1], q[:, 3]))
            best_steps.append(fc.best_step)
            heads.append(fc.head)
            choices.append(fc.choice)
            run_dirs.append(fc.run_dir)
            if k == len(origins) - 1 and s == seeds[0]:
                last_plot = {
                    "history": history,
                    "actual": actual,
                    "quantiles": q,
                    "origin": o.train_end,
                    "baselines": {
                        key: preds[key] for key in ("snaive", "ets", "arima") if key in preds
                    },
                }
    return {
        "origins": [o.train_end for o in origins],
        "origin_dates": [str(series.index[o.train_end].date()) for o in origins],
        "baselines": {k: _mean_scores(v) for k, v in base_rows.items()},
        "baseline_names": base_names,
        "baseline_wall_s": base_wall,
        "baseline_cpu_s": base_cpu,
        "arima_coverage": {k: float(np.mean(v)) for k, v in arima_cover.items() if v},
        "rnn": {s: _mean_scores(v) for s, v in rnn_rows.items()},
        "rnn_coverage": {
            lvl: float(np.mean([np.mean(rnn_cover[s][lvl]) for s in seeds])) for lvl in ("80", "95")
        },
        "rnn_wall_s": [rnn_wall[s] for s in seeds],
        "rnn_cpu_s": [rnn_cpu[s] for s in seeds],
        "best_steps": best_steps,
        "heads": heads,
        "choices": choices,
        "run_dirs": run_dirs,
        "plot": last_plot,
    }


# ---------------------------------------------------------------- records and plot


def _records(
    name: str,
    series: Series,
    ds: SeriesSpec,
    res: dict[str, Any],
    recipe: Recipe,
    seeds: list[int],
) -> list[dict[str, Any]]:
    spec = recipe.experiments[name].model
    model = f"{spec.cell.upper()}-{spec.hidden_size} Forecaster"
    if ds.transform == "log":
        model += " (log)"
    base = ds.base or spec.base
    if base != "none":
        model += f" + {base.replace('_', ' ')} base"
    dataset = f"{name} (h={ds.horizon}, {len(res['origins'])} origins)"
    per_seed = res["rnn_wall_s"]
    wall = float(np.mean(per_seed))
    bases = res["baselines"]
    strongest = min(bases, key=lambda k: bases[k]["MASE"])
    common = {
        "app": APP,
        "dataset": dataset,
        "model": model,
        "seeds": seeds,
        "wall_s": wall,
        "per_seed_wall_s": [round(w, 1) for w in per_seed],
        "per_seed_cpu_s": [round(c, 1) for c in res["rnn_cpu_s"]],
        "baseline_wall_s": round(res["baseline_wall_s"], 1),
        "baseline_cpu_s": round(res["baseline_cpu_s"], 1),
        "split": f"walk-forward, origins {', '.join(res['origin_dates'])}",
        "horizon": ds.horizon,
        "mase_season": ds.mase_season,
        "rnn_interval_coverage": res["rnn_coverage"],
        "arima_interval_coverage": res["arima_coverage"],
        "selected_steps": res["best_steps"],
        "head_kept": res["heads"],  # per run: False = validation kept the bare base
        "base_choice": res["choices"],  # per run: base, combined or hybrid (on validation)
        "runs": res["run_dirs"],  # one run directory per origin and seed (rnnkit.train.load_run)
        "notes": series.note or None,
        "data_source": series.info.get("source"),
    }
    out = []
    for key in bases:
        label = res["baseline_names"][key]
        if key == strongest:
            label += " [strongest]"
        out.append(
            record(
                metric=f"MASE (m={ds.mase_season})",
                higher_is_better=False,
                values=[res["rnn"][s]["MASE"] for s in seeds],
                baseline=label,
                baseline_values=bases[key]["MASE"],
                headline=key in ("snaive", strongest),
                **common,
            )
        )
    for metric in ("RMSE", "MAE"):
        out.append(
            record(
                metric=metric,
                higher_is_better=False,
                values=[res["rnn"][s][metric] for s in seeds],
                baseline=res["baseline_names"][strongest] + " [strongest]",
                baseline_values=bases[strongest][metric],
                headline=False,
                **common,
            )
        )
    return out


def plot_forecasts(
    panels: Sequence[tuple[str, Series, SeriesSpec, dict[str, Any]]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), squeeze=False)
    for ax, (name, series, ds, res) in zip(axes[:, 0], panels, strict=True):
        p = res["plot"]
        o, h = p["origin"], ds.horizon
        back = min(o, ds.plot_history or 4 * h)
        t_hist = series.index[o - back : o]
        t_fut = series.index[o : o + h]
        q = p["quantiles"]
        ax.plot(t_hist, p["history"][-back:], color="0.3", lw=1.2, label="history")
        ax.plot(t_fut, p["actual"], color="k", lw=1.6, marker=".", label="actual")
        ax.fill_between(t_fut, q[:, 0], q[:, 4], color="C0", alpha=0.18, label="RNN 95 %")
        ax.fill_between(t_fut, q[:, 1], q[:, 3], color="C0", alpha=0.35, label="RNN 80 %")
        ax.plot(t_fut, q[:, 2], color="C0", lw=1.8, label="RNN median")
        styles = {"snaive": ("C2", ":"), "ets": ("C3", "--"), "arima": ("C1", "-.")}
        for key, pred in p["baselines"].items():
            col, ls = styles[key]
            ax.plot(t_fut, pred, color=col, ls=ls, lw=1.2, label=res["names"][key])
        ax.axvline(series.index[o], color="0.6", lw=0.8)
        ax.set_title(f"{name}: last walk-forward origin ({series.index[o].date()}), seed 0")
        ax.legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(
    config: dict[str, Any], *, seeds: list[int], out_dir: Path, quick: bool
) -> list[dict[str, Any]]:
    """Walk-forward forecasting of every series in the recipe's ``use`` (module docstring)."""
    recipe = check_config(config)
    if not seeds:
        raise ValueError("forecasting: give at least one seed")
    records: list[dict[str, Any]] = []
    panels = []
    for name in recipe.settings.use:
        ds = recipe.series[name]
        series = load_series(name, ds)
        res = evaluate_series(series, ds, recipe, seeds, root=Path(out_dir) / "runs")
        res["names"] = res["baseline_names"]
        records.extend(_records(name, series, ds, res, recipe, seeds))
        panels.append((name, series, ds, res))
    plot_forecasts(panels, Path(out_dir) / "forecasts.png")
    return records
