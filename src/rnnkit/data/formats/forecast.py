"""Forecasting windows from long-format series, split in time, scaled per series on training steps.

Each series is cut by position: its last ``test`` steps are the test part and the ``val`` steps
before them the validation part (or the user's own validation/test files, which must continue
each series on its frequency grid). Windows of a split take their targets from that split only and
their inputs from any earlier steps, as `rnnkit.data.series.prepare_forecasting` does for one
series. Every column of a series is standard-scaled with statistics of its training steps; the
scalers are kept per series id for prediction (a new id is scaled on its own history).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rnnkit.data._scalers import Scaler, StandardScaler
from rnnkit.data.formats.series import LongSeries, OneSeries

Sample = tuple[Any, ...]

# Season length of the common frequencies, for seasonal-naive baselines.
SEASONS = {"h": 24, "D": 7, "B": 5, "W": 52, "M": 12, "Q": 4, "min": 60, "s": 60}


def season_of(freq: str) -> int:
    """The usual season length of a pandas frequency alias (1 when none applies)."""
    base = "".join(c for c in freq if c.isalpha()).split("-")[0]
    for prefix in ("min", "h", "D", "B", "W", "M", "Q", "s"):
        if base.startswith(prefix) or base.upper().startswith(prefix.upper() + "S"):
            return SEASONS[prefix]
    for prefix, season in (("ME", 12), ("MS", 12), ("QE", 4), ("QS", 4), ("H", 24)):
        if base.startswith(prefix):
            return season
    return 1


def _count(size: float | int, n: int) -> int:
    """Steps of a held-out part: ``size`` steps, or a fraction of ``n`` when below 1."""
    if size < 0:
        raise ValueError(f"data.val_size and data.test_size must be >= 0, got {size}")
    return round(n * size) if size < 1 else int(size)


@dataclass
class ForecastEncoder:
    """Columns, window sizes and per-series scalers of a forecasting run, saved as JSON."""

    columns: list[str]  # [target, *past covariates, *future covariates]
    n_past: int
    input_len: int
    horizon: int
    freq: str
    scalers: dict[str, Scaler] = field(default_factory=dict)

    @property
    def n_covariates(self) -> int:
        return len(self.columns) - 1

    def scaler_for(self, s: OneSeries, train_end: int | None = None) -> Scaler:
        """The stored scaler of ``s.id``, else one fitted on ``s``'s first ``train_end`` steps."""
        if s.id in self.scalers:
            return self.scalers[s.id]
        return StandardScaler().fit(s.values[: train_end or len(s)])

    def sample(self, scaled: np.ndarray, start: int) -> Sample:
        """The window whose first target step is ``start``: ``(x (T, 1), y (H, 1))``, plus
        ``covariates (T + H, C)`` when the run has covariates (past ones zero after ``start``)."""
        lo, hi = start - self.input_len, start + self.horizon
        x = scaled[lo:start, :1].astype(np.float32)
        y = scaled[start:hi, :1].astype(np.float32)
        if self.n_covariates == 0:
            return x, y
        cov = scaled[lo:hi, 1:].astype(np.float32).copy()
        cov[self.input_len :, : self.n_past] = 0.0  # past covariates are unknown ahead
        return x, y, cov

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "series",
            "columns": self.columns,
            "n_past": self.n_past,
            "input_len": self.input_len,
            "horizon": self.horizon,
            "freq": self.freq,
            "scalers": {k: v.to_dict() for k, v in self.scalers.items()},
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> ForecastEncoder:
        return cls(
            state["columns"],
            state["n_past"],
            state["input_len"],
            state["horizon"],
            state["freq"],
            {k: Scaler.from_dict(v) for k, v in state["scalers"].items()},
        )


@dataclass
class SeriesParts:
    """One series with its split points (``train_end <= val_end <= len``)."""

    series: OneSeries
    train_end: int
    val_end: int


def _join(base: LongSeries, more: LongSeries | None, name: str) -> dict[str, OneSeries]:
    """Series of ``base`` continued by the same ids in ``more`` (on the frequency grid)."""
    out = {s.id: s for s in base.series}
    if more is None:
        return out
    if more.columns != base.columns:
        raise ValueError(
            f"{more.path}: columns {more.columns} differ from {base.path}'s {base.columns}"
        )
    for s in more.series:
        if s.id not in out:
            raise ValueError(
                f"{more.path} row {s.lines[0]}: series {s.id!r} of the {name} file is not in "
                f"{base.path}"
            )
        head = out[s.id]
        want = base.next_times(head, 1)[0]
        dated = isinstance(head.times, pd.DatetimeIndex)
        expected = pd.Timestamp(want) if dated else float(want)
        if dated != isinstance(s.times, pd.DatetimeIndex) or s.times[0] != expected:
            raise ValueError(
                f"{more.path} row {s.lines[0]}, column {base.time_col!r}: series {s.id!r} must "
                f"continue at {want} (the step after its last earlier time), not {s.times[0]}"
            )
        out[s.id] = OneSeries(
            s.id,
            head.times.append(s.times),
            np.concatenate([head.values, s.values]),
            head.lines + s.lines,
        )
    return out


def split_series(
    train: LongSeries,
    *,
    val: LongSeries | None,
    test: LongSeries | None,
    val_size: float | int,
    test_size: float | int,
    input_len: int,
    horizon: int,
) -> list[SeriesParts]:
    """Each series with its split points; a series too short for one training window, or a
    validation/test part shorter than the horizon, is an error that says what would fit."""
    joined = _join(train, val, "validation")
    test_ids = {s.id: len(s) for s in test.series} if test is not None else {}
    val_ids = {s.id: len(s) for s in val.series} if val is not None else {}
    full = _join(
        LongSeries(
            train.path,
            list(joined.values()),
            train.id_col,
            train.time_col,
            train.target,
            train.past,
            train.future,
            train.freq,
        ),
        test,
        "test",
    )
    parts = []
    for s in full.values():
        n = len(s)
        n_test = test_ids.get(s.id, 0) if test is not None else _count(test_size, n)
        n_val = val_ids.get(s.id, 0) if val is not None else _count(val_size, n - n_test)
        train_end, val_end = n - n_test - n_val, n - n_test
        where = f"{train.path} rows {s.lines[0]}-{s.lines[-1]}: series {s.id!r}"
        if train_end < input_len + horizon:
            room = train_end - horizon
            hint = (
                f"data.seq_len <= {room} would fit"
                if room >= 1
                else "no data.seq_len fits: shorten data.val_size / data.test_size (each at "
                f"least the horizon {horizon}) or the horizon"
            )
            raise ValueError(
                f"{where} has {n} steps: after {n_val} validation and {n_test} test steps it "
                f"keeps {train_end} training steps, shorter than input {input_len} + horizon "
                f"{horizon} = {input_len + horizon}; these settings need "
                f"{input_len + horizon + n_val + n_test} steps; {hint}"
            )
        for name, size in (("validation", n_val), ("test", n_test)):
            if size < horizon:
                raise ValueError(
                    f"{where} has {size} {name} steps, fewer than the horizon {horizon}; "
                    f"set data.{'val' if name == 'validation' else 'test'}_size >= {horizon}"
                )
        parts.append(SeriesParts(s, train_end, val_end))
    return parts


def fit_windows(
    parts: Sequence[SeriesParts],
    *,
    columns: list[str],
    n_past: int,
    input_len: int,
    horizon: int,
    freq: str,
) -> tuple[ForecastEncoder, tuple[list[Sample], list[Sample], list[Sample]], float]:
    """The fitted encoder, train/val/test windows, and the mean in-sample one-step naive MAE of
    the scaled training parts (the MASE scale)."""
    enc = ForecastEncoder(columns, n_past, input_len, horizon, freq)
    splits: tuple[list[Sample], list[Sample], list[Sample]] = ([], [], [])
    naive = []
    for p in parts:
        scaler = StandardScaler().fit(p.series.values[: p.train_end])
        enc.scalers[p.series.id] = scaler
        scaled = scaler.transform(p.series.values)
        naive.append(float(np.abs(np.diff(scaled[: p.train_end, 0])).mean()))
        bounds = ((input_len, p.train_end), (p.train_end, p.val_end), (p.val_end, len(p.series)))
        for out, (lo, hi) in zip(splits, bounds, strict=True):
            for start in range(max(lo, input_len), hi - horizon + 1):
                out.append(enc.sample(scaled, start))
    return enc, splits, float(np.mean(naive))
