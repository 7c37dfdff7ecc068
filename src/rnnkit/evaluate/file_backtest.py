"""Walk-forward backtesting of a forecasting recipe on the user's long-format file, with baselines.

`rnnkit.evaluate.backtest` walks one in-memory series; this walks every series of the recipe's
``data.path`` with one global model (as training on that file does), and scores the baselines on
the same windows.

``K`` origins end exactly at the end of every series, ``step`` steps apart (default: the
horizon, so the forecast windows tile the tail without overlap). At each origin the model
forecasts the next ``horizon`` steps of every series from the steps before it only; the naive,
seasonal-naive and ETS baselines forecast the same windows from the same history. Without
``refit`` one model is trained on the history before the first origin and reused; with it, a
model is retrained before every origin on everything before that origin. Errors are in each
series' scaled units (the scaler of the model in use), as the model's own metrics are.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.data.formats import LongSeries, OneSeries
from rnnkit.data.formats.forecast import ForecastEncoder, season_of
from rnnkit.evaluate import reference as ref
from rnnkit.integrity import atomic_write_text


def _truncate(data: LongSeries, back: int, need: int) -> LongSeries:
    series = []
    for s in data.series:
        keep = len(s) - back
        if keep < need:
            raise ValueError(
                f"{data.path} rows {s.lines[0]}-{s.lines[-1]}: series {s.id!r} has {len(s)} "
                f"steps; an origin {back} steps before its end leaves {keep}, fewer than the "
                f"{need} one training window, validation and forecast need; use fewer origins "
                "or a smaller step"
            )
        series.append(OneSeries(s.id, s.times[:keep], s.values[:keep], s.lines[:keep]))
    return replace(data, series=series)


def _scores(
    model: Any, enc: ForecastEncoder, data: LongSeries
) -> tuple[float, list[np.ndarray], list[list[int]]]:
    """Model MAE over the last window of every series of ``data`` (scaled units), plus the
    scaled targets and origins the baselines need."""
    from rnnkit.train.tasks.forecast import collate_windows

    errors, targets, origins = [], [], []
    samples = []
    for s in data.series:
        scaled = enc.scaler_for(s).transform(s.values)
        origin = len(s) - enc.horizon
        samples.append(enc.sample(scaled, origin))
        targets.append(scaled[:, 0])
        origins.append([origin])
    batch = collate_windows(samples)
    with torch.no_grad():
        mean = model(batch.x, lengths=batch.lengths, covariates=batch.covariates).mean
    assert batch.y is not None
    errors = (mean - batch.y).abs().flatten().tolist()
    return float(np.mean(errors)), targets, origins


def backtest(
    experiment: Any, *, origins: int, refit: bool, step: int | None = None
) -> dict[str, Any]:
    """Run the walk-forward backtest of ``experiment`` (a forecasting recipe with ``data.path``);
    writes ``backtest.json`` in the run folder and returns it."""
    from rnnkit.train.trainer import _setup as setup
    from rnnkit.train.trainer import fit
    from rnnkit.train.user_data import build_user, read_series

    d = experiment.data
    if experiment.task != "forecasting" or d.path is None:
        raise ValueError("rnnkit backtest needs a forecasting recipe with data.path (your series)")
    if origins < 1:
        raise ValueError(f"--origins must be >= 1, got {origins}")
    step = step or d.horizon
    if step < 1:
        raise ValueError(f"--step must be >= 1, got {step}")
    data = read_series(d, d.path)
    season = d.season or season_of(data.freq)
    name = experiment.run.name or f"backtest-{time.strftime('%Y%m%d-%H%M%S')}"
    root = Path(experiment.run.root) / name
    val_steps = d.val_size if d.val_size >= 1 else 0
    need = d.seq_len + 2 * d.horizon + int(val_steps)
    folds: list[dict[str, Any]] = []
    model: Any = None
    enc: ForecastEncoder | None = None
    for k in range(origins):
        back = (origins - 1 - k) * step
        history = _truncate(data, back, need)
        if model is None or refit:
            # The fold's recipe: its own run folder, the forecast window as the test part, and
            # no baseline suite inside the fit (the backtest scores baselines itself).
            fold = replace(
                experiment,
                data=replace(d, test_size=d.horizon, val_path=None, test_path=None),
                run=replace(experiment.run, root=str(root), name=f"fold{k}"),
                evaluate=replace(experiment.evaluate, baselines=False),
            )
            setup(fold)  # seeds, threads and quiet logs, as `build` does
            built = build_user(fold, series=_truncate(history, d.horizon, need - d.horizon))
            fit(fold, built=built)
            model = built.module.model.eval()
            enc = ForecastEncoder.from_dict(json.loads(built.files["encoder.json"]))
        assert enc is not None
        mae, targets, starts = _scores(model, enc, history)
        scale = float(
            np.mean(
                [np.abs(np.diff(t[: o[0]])).mean() for t, o in zip(targets, starts, strict=True)]
            )
        )
        baselines = ref.forecast_baselines(
            targets, starts, horizon=d.horizon, season=season, naive_scale=scale
        )
        last = history.series[0]
        folds.append(
            {
                "fold": k,
                "origin": str(last.times[len(last) - d.horizon]),
                "trained_at_fold": k if refit else 0,
                "model": {"mae": mae, "mase": mae / scale if scale > 0 else float("nan")},
                "baselines": baselines,
            }
        )
    mean_model = {"mae": float(np.mean([f["model"]["mae"] for f in folds]))}
    mean_base = {
        b: {"mae": float(np.mean([f["baselines"][b]["mae"] for f in folds]))}
        for b in folds[0]["baselines"]
        if all(b in f["baselines"] for f in folds)
    }
    report = {
        "origins": origins,
        "step": step,
        "horizon": d.horizon,
        "refit": refit,
        "series": len(data.series),
        "units": "scaled (per series, training statistics of the model in use)",
        "folds": folds,
        "mean": {"model": mean_model, "baselines": mean_base},
        "verdict": ref.verdict("forecasting", mean_model, mean_base),
    }
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "backtest.json", json.dumps(report, indent=2))
    report["file"] = str(root / "backtest.json")
    return report
