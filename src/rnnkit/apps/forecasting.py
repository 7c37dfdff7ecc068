"""Time-series forecasting on three real series, walk-forward, against naive and statistical
forecasts.

For every series named in ``config["use"]`` (``sunspots``, ``co2``, ``airline`` from the
`rnnkit.data` registry) the recipe sets expanding-window origins with
`rnnkit.evaluate.walk_forward`: the last origin forecasts the final ``horizon`` points, earlier ones
step back by ``step``. At each origin everything is fitted on the data before the origin only:

- the RNN, `rnnkit.models.Forecaster` (direct multi-horizon, Gaussian head): an optional log
  transform, a `StandardScaler` fitted on the training part, windows of ``input_len`` past values
  (each window shifted by its own last value, so a trend is not mistaken for a level) plus sin/cos
  of the season phase as known covariates; AdamW, gradient clipping, model selection by the
  validation MAE of the windows whose targets are the last ``val_steps`` points of the training
  part; the point forecast is the Gaussian's median, the 80 % / 95 % intervals its quantiles;
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

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnkit.apps._common import record, seed_all, timer
from rnnkit.data import Imputer, StandardScaler, load
from rnnkit.data.series import make_windows
from rnnkit.evaluate import (
    mae,
    mase,
    naive_forecast,
    rmse,
    seasonal_naive_forecast,
    walk_forward,
)
from rnnkit.models.forecaster import Forecaster, ForecasterConfig

APP = "forecasting"
KNOWN = ("sunspots", "co2", "airline")
LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)  # 95 % and 80 % central intervals and the median
BASELINE_NAMES = {
    "naive": "naive",
    "snaive": "seasonal naive",
    "ets": "ETS",
    "arima": "ARIMA",
}


# ---------------------------------------------------------------- recipe checks


def _need(cond: bool, name: str, what: str, value: Any) -> None:
    if not cond:
        raise ValueError(f"forecasting recipe: field {name!r} {what}, got {value!r}")


def check_config(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first bad field of the recipe."""
    use: Any = config.get("use")
    _need(isinstance(use, list) and len(use) > 0, "use", "must be a non-empty list", use)
    sets: Any = config.get("datasets")
    _need(isinstance(sets, dict), "datasets", "must be a mapping", sets)
    for name in use:
        _need(name in KNOWN, "use", f"lists series from {list(KNOWN)} only", name)
        _need(name in sets, f"datasets.{name}", "is missing (named in 'use')", None)
        ds = sets[name]
        for key in ("horizon", "folds", "season", "mase_season", "input_len", "min_train"):
            v = ds.get(key)
            _need(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                f"datasets.{name}.{key}",
                "must be an integer >= 1",
                v,
            )
        step = ds.get("step")
        _need(
            step is None or (isinstance(step, int) and step >= 1),
            f"datasets.{name}.step",
            "must be an integer >= 1 or absent",
            step,
        )
        tr = ds.get("transform", "none")
        _need(tr in ("none", "log"), f"datasets.{name}.transform", "must be none or log", tr)
        _need(
            isinstance(ds.get("freq"), str), f"datasets.{name}.freq", "must be a string", ds["freq"]
        )
    model = config.get("model", {})
    _need(isinstance(model, dict), "model", "must be a mapping", model)
    train: Any = config.get("train")
    _need(isinstance(train, dict), "train", "must be a mapping", train)
    for key in ("max_steps", "batch_size", "eval_every", "patience", "val_steps"):
        v = train.get(key)
        _need(isinstance(v, int) and v >= 1, f"train.{key}", "must be an integer >= 1", v)
    for key in ("lr", "clip"):
        v = train.get(key)
        _need(isinstance(v, (int, float)) and v > 0, f"train.{key}", "must be a number > 0", v)


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


def load_series(name: str, ds: dict[str, Any]) -> Series:
    values, info = _registry_values(name)
    index = pd.date_range(str(ds["start"]), periods=len(values), freq=ds["freq"])
    if not ds.get("resample"):
        return Series(name, values, index, info=info)
    raw = pd.Series(values, index=index, name=name)
    monthly = raw.resample(ds["resample"]).mean()  # months without any week stay NaN
    note = (
        f"{int(raw.isna().sum())} missing weeks filled by Imputer({ds['impute']!r}) fitted before "
        f"each origin; weekly values resampled to {ds['resample']} means"
    )
    return Series(name, monthly.to_numpy(), monthly.index, note=note, raw=raw, info=info)


def train_part(series: Series, ds: dict[str, Any], end: int) -> np.ndarray:
    """The series before position ``end``, missing values filled from that part alone."""
    if series.raw is None:
        part = series.values[:end]
        if np.isnan(part).any():
            raise ValueError(f"{series.name}: missing values but no 'impute' method in the recipe")
        return part
    cutoff = series.index[end]  # first month of the forecast
    weekly = series.raw[series.raw.index < cutoff].to_frame()
    filled = Imputer(ds["impute"], columns=[series.name]).fit(weekly).transform(weekly)
    monthly = filled[series.name].resample(ds["resample"]).mean().to_numpy()
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

    @property
    def point(self) -> np.ndarray:
        return self.quantiles[:, LEVELS.index(0.5)]


def _windows(
    z: np.ndarray, cov: np.ndarray | None, *, input_len: int, horizon: int, lo: int, hi: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Windows with targets in ``[lo, hi)``, each shifted by its last input value."""
    x, y = make_windows(
        z[:, None], input_len=input_len, horizon=horizon, target_range=(lo, hi), source="series"
    )
    last = x[:, -1:, :]  # (W, 1, 1)
    xt, yt = torch.from_numpy(x - last), torch.from_numpy(y - last)
    if cov is None:
        return xt, yt, None
    starts = np.arange(max(lo, input_len), hi - horizon + 1) - input_len
    c = np.stack([cov[s : s + input_len + horizon] for s in starts]).astype(np.float32)
    return xt, yt, torch.from_numpy(c)


def fit_rnn(
    history: np.ndarray, ds: dict[str, Any], config: dict[str, Any], seed: int
) -> RNNForecast:
    """Fit a Forecaster on ``history`` only and forecast the next ``horizon`` values."""
    seed_all(seed)
    mcfg, tcfg = config.get("model", {}), config["train"]
    horizon, input_len = ds["horizon"], ds["input_len"]
    log = ds.get("transform", "none") == "log"
    y = np.log(history) if log else history.astype(np.float64)
    scaler = StandardScaler().fit(y[:, None])
    z = scaler.transform(y[:, None])[:, 0]
    n = len(z)
    use_cov = bool(ds.get("season_covariates", True))
    cov = _phase(n + horizon, ds["season"]) if use_cov else None
    val_steps = max(tcfg["val_steps"], horizon)
    x_tr, y_tr, c_tr = _windows(
        z, cov, input_len=input_len, horizon=horizon, lo=0, hi=n - val_steps
    )
    x_va, y_va, c_va = _windows(
        z, cov, input_len=input_len, horizon=horizon, lo=n - val_steps, hi=n
    )
    model = Forecaster(
        ForecasterConfig(
            target_size=1,
            covariate_size=2 if use_cov else 0,
            horizon=horizon,
            strategy="direct",
            distribution="gaussian",
            cell=mcfg.get("cell", "gru"),
            hidden_size=int(mcfg.get("hidden_size", 32)),
            num_layers=int(mcfg.get("num_layers", 1)),
            dropout=float(mcfg.get("dropout", 0.0)),
        )
    )
    opt = torch.optim.AdamW(
        model.parameters(), lr=float(tcfg["lr"]), weight_decay=float(tcfg.get("weight_decay", 0.0))
    )
    gen = torch.Generator().manual_seed(seed)
    best = (math.inf, 0, copy.deepcopy(model.state_dict()))
    bad, order, pos = 0, torch.randperm(len(x_tr), generator=gen), 0
    batch = min(int(tcfg["batch_size"]), len(x_tr))
    for step in range(1, int(tcfg["max_steps"]) + 1):
        if pos + batch > len(order):
            order, pos = torch.randperm(len(x_tr), generator=gen), 0
        idx = order[pos : pos + batch]
        pos += batch
        model.train()
        loss = model.loss(x_tr[idx], y_tr[idx], covariates=None if c_tr is None else c_tr[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(tcfg["clip"]))
        opt.step()
        if step % int(tcfg["eval_every"]) == 0:
            model.eval()
            with torch.no_grad():
                val = float((model(x_va, covariates=c_va).mean - y_va).abs().mean())
            if val < best[0]:
                best, bad = (val, step, copy.deepcopy(model.state_dict())), 0
            else:
                bad += 1
                if bad >= int(tcfg["patience"]):
                    break
    model.load_state_dict(best[2])
    model.eval()
    last = z[-input_len:]
    x = torch.tensor(last - last[-1], dtype=torch.float32).view(1, input_len, 1)
    c = None if cov is None else torch.tensor(cov[n - input_len :], dtype=torch.float32)[None]
    with torch.no_grad():
        q = Forecaster.quantiles(model(x, covariates=c), LEVELS)[0, :, 0].numpy()  # (H, Q)
    q = scaler.inverse_transform((q + last[-1]).astype(np.float64).reshape(-1, 1), columns=[0])
    q = q.reshape(horizon, len(LEVELS))
    return RNNForecast(np.exp(q) if log else q, best[1], best[0])


# ---------------------------------------------------------------- baselines


def _ets(history: np.ndarray, horizon: int, spec: dict[str, Any]) -> np.ndarray:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    fit = ExponentialSmoothing(
        history,
        trend=spec.get("trend"),
        damped_trend=bool(spec.get("damped_trend", False)),
        seasonal=spec.get("seasonal"),
        seasonal_periods=spec.get("seasonal_periods"),
        initialization_method="estimated",
    ).fit()
    return np.asarray(fit.forecast(horizon), dtype=np.float64)


def _arima(
    history: np.ndarray, horizon: int, spec: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, str]:
    """Point forecast, ``(H, 4)`` 95 % and 80 % interval bounds, and the order used."""
    from statsmodels.tsa.ar_model import ar_select_order
    from statsmodels.tsa.arima.model import ARIMA

    log = bool(spec.get("log", False))
    y = np.log(history) if log else history
    order = spec["order"]
    if order == "aic":  # AR order chosen by AIC on this training part only
        sel = ar_select_order(y, maxlag=int(spec.get("max_lag", 12)), ic="aic", trend="c")
        lags = sel.ar_lags or []
        order = [max(lags) if lags else 0, 0, 0]
    seasonal = tuple(spec.get("seasonal_order", (0, 0, 0, 0)))
    trend = spec.get("trend", "c" if order[1] == 0 and seasonal[1] == 0 else "n")
    fit = ARIMA(y, order=tuple(order), seasonal_order=seasonal, trend=trend).fit()
    res = fit.get_forecast(horizon)
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
    series: Series, ds: dict[str, Any], config: dict[str, Any], seeds: list[int]
) -> dict[str, Any]:
    """Walk forward over one series: baselines once, the RNN once per seed, at every origin."""
    n = len(series.values)
    origins = walk_forward(
        n, horizon=ds["horizon"], folds=ds["folds"], min_train=ds["min_train"], step=ds.get("step")
    )
    h, m = ds["horizon"], ds["mase_season"]
    base_rows: dict[str, list[dict[str, float]]] = {}
    base_names: dict[str, str] = {}
    arima_cover: dict[str, list[float]] = {"80": [], "95": []}
    rnn_rows: dict[int, list[dict[str, float]]] = {s: [] for s in seeds}
    rnn_cover: dict[int, dict[str, list[float]]] = {s: {"80": [], "95": []} for s in seeds}
    rnn_wall = {s: 0.0 for s in seeds}
    rnn_cpu = {s: 0.0 for s in seeds}
    best_steps: list[int] = []
    last_plot: dict[str, Any] = {}
    base_wall, base_cpu = 0.0, 0.0
    for k, o in enumerate(origins):
        history = train_part(series, ds, o.train_end)
        actual = test_part(series, o.train_end, o.test_end)
        cpu = time.process_time()
        with timer() as t:
            preds: dict[str, np.ndarray] = {
                "naive": naive_forecast(history.tolist(), h),
                "snaive": seasonal_naive_forecast(history.tolist(), h, ds["season"]),
            }
            base_names["naive"] = "naive"
            base_names["snaive"] = f"seasonal naive (m={ds['season']})"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # statsmodels' convergence chatter
                if ds.get("ets"):
                    preds["ets"] = _ets(history, h, ds["ets"])
                    e = ds["ets"]
                    base_names["ets"] = (
                        f"ETS (trend {e.get('trend') or 'none'}"
                        f"{', damped' if e.get('damped_trend') else ''}, seasonal "
                        f"{e.get('seasonal') or 'none'}"
                        f"{' m=' + str(e['seasonal_periods']) if e.get('seasonal') else ''})"
                    )
                if ds.get("arima"):
                    preds["arima"], bounds, name = _arima(history, h, ds["arima"])
                    base_names["arima"] = (
                        name if ds["arima"]["order"] != "aic" else "ARIMA(p,0,0), p by AIC"
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
                fc = fit_rnn(history, ds, config, s)
            rnn_wall[s] += t["s"]
            rnn_cpu[s] += time.process_time() - cpu
            rnn_rows[s].append(_scores(actual, fc.point, history, m))
            q = fc.quantiles
            rnn_cover[s]["95"].append(_covered(actual, q[:, 0], q[:, 4]))
            rnn_cover[s]["80"].append(_covered(actual, q[:, 1], q[:, 3]))
            best_steps.append(fc.best_step)
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
        "plot": last_plot,
    }


# ---------------------------------------------------------------- records and plot


def _records(
    name: str,
    series: Series,
    ds: dict[str, Any],
    res: dict[str, Any],
    config: dict[str, Any],
    seeds: list[int],
) -> list[dict[str, Any]]:
    mcfg = config.get("model", {})
    model = f"{mcfg.get('cell', 'gru').upper()}-{mcfg.get('hidden_size', 32)} Forecaster"
    if ds.get("transform") == "log":
        model += " (log)"
    dataset = f"{name} (h={ds['horizon']}, {len(res['origins'])} origins)"
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
        "horizon": ds["horizon"],
        "mase_season": ds["mase_season"],
        "rnn_interval_coverage": res["rnn_coverage"],
        "arima_interval_coverage": res["arima_coverage"],
        "selected_steps": res["best_steps"],
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
                metric=f"MASE (m={ds['mase_season']})",
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
    panels: list[tuple[str, Series, dict[str, Any], dict[str, Any]]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), squeeze=False)
    for ax, (name, series, ds, res) in zip(axes[:, 0], panels, strict=True):
        p = res["plot"]
        o, h = p["origin"], ds["horizon"]
        back = min(o, int(ds.get("plot_history", 4 * h)))
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
    """Walk-forward forecasting on every series in ``config["use"]``; see the module docstring."""
    check_config(config)
    if not seeds:
        raise ValueError("forecasting: give at least one seed")
    records: list[dict[str, Any]] = []
    panels = []
    for name in config["use"]:
        ds = config["datasets"][name]
        series = load_series(name, ds)
        res = evaluate_series(series, ds, config, seeds)
        res["names"] = res["baseline_names"]
        records.extend(_records(name, series, ds, res, config, seeds))
        panels.append((name, series, ds, res))
    plot_forecasts(panels, Path(out_dir) / "forecasts.png")
    return records
