"""Long-format series files (CSV or Parquet), the NeuralForecast/StatsForecast convention.

One row per series and time step: an id column (``unique_id``), a time column (``ds``: dates or
numbers) and a target column (``y``), plus optional covariate columns: *past* covariates are known
only up to the forecast origin, *future* covariates are known ahead (calendar, prices, holidays).
Each series must be in time order with no repeated or missing step of its frequency, which is
given (a pandas alias such as ``"D"``, ``"h"``, ``"MS"``, or a number for numeric times) or
inferred. A missing id column is an error unless ``id_col`` is None (one series).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnnkit.data.formats._common import StrPath, Table, parse_number, read_table


@dataclass
class OneSeries:
    """One series of a long file: its id, time stamps, values and the file row of each step."""

    id: str
    times: pd.Index  # (T,) DatetimeIndex or float Index
    values: np.ndarray  # (T, 1 + P + F) float64: target, past covariates, future covariates
    lines: list[int]  # the file row of each step

    def __len__(self) -> int:
        return len(self.times)


@dataclass
class LongSeries:
    """Every series of a long-format file, checked, with the columns and frequency they share."""

    path: str
    series: list[OneSeries]
    id_col: str | None
    time_col: str
    target: str
    past: list[str]
    future: list[str]
    freq: str  # pandas alias for dates, the step as text for numeric times

    @property
    def columns(self) -> list[str]:
        """Value columns in the order of ``OneSeries.values``."""
        return [self.target, *self.past, *self.future]

    def next_times(self, s: OneSeries, steps: int) -> list[str]:
        """The ``steps`` time stamps after the end of ``s``, as text for an output file."""
        if isinstance(s.times, pd.DatetimeIndex):
            grid = pd.date_range(s.times[-1], periods=steps + 1, freq=self.freq)[1:]
            return [str(t.isoformat()) for t in grid]
        step = float(self.freq)
        return [_number_text(float(s.times[-1]) + step * (k + 1)) for k in range(steps)]


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def read_long_series(
    path: StrPath,
    *,
    id_col: str | None = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    past_covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
    freq: str | None = None,
    fmt: str | None = None,
    need_future_only: bool = False,
) -> LongSeries:
    """Read and check a long-format file; ``fmt`` is csv, tsv, jsonl or parquet (else from the
    extension). ``need_future_only`` reads a file of future covariates for prediction: the
    target and past covariate columns may be absent."""
    table = _read_parquet(path) if _is_parquet(path, fmt) else read_table(path, fmt=fmt)
    values_cols = list(future_covariates)
    if not need_future_only:
        values_cols = [target_col, *past_covariates, *future_covariates]
    dupes = sorted({c for c in values_cols if values_cols.count(c) > 1})
    if dupes:
        raise ValueError(f"{path}: columns {dupes} are named more than once in data settings")
    table.require(time_col, *values_cols, *([id_col] if id_col else []))
    ids = table.column(id_col) if id_col else ["series"] * len(table.rows)
    order: dict[str, list[int]] = {}
    for i, raw in enumerate(ids):
        key = raw.strip()
        if not key:
            raise ValueError(f"{table.where(i, id_col)}: series id is missing")
        order.setdefault(key, []).append(i)
    times = _parse_times(table, time_col)
    cols = [table.columns.index(c) for c in values_cols]
    values = np.empty((len(table.rows), len(cols)), dtype=np.float64)
    for i, row in enumerate(table.rows):
        for k, (j, name) in enumerate(zip(cols, values_cols, strict=True)):
            values[i, k] = parse_number(row[j], table.where(i, name))
    series = []
    for key, rows in order.items():
        idx = np.asarray(rows)
        s_times = times[idx]
        _check_order(table, time_col, key, rows, s_times)
        series.append(OneSeries(key, s_times, values[idx], [table.lines[i] for i in rows]))
    step = _check_frequency(table, time_col, series, freq)
    return LongSeries(
        str(path),
        series,
        id_col,
        time_col,
        target_col,
        [] if need_future_only else list(past_covariates),
        list(future_covariates),
        step,
    )


def _is_parquet(path: StrPath, fmt: str | None) -> bool:
    return fmt == "parquet" or (fmt is None and Path(path).suffix.lower() in (".parquet", ".pq"))


def _read_parquet(path: StrPath) -> Table:
    """A Parquet file as string cells; its rows count from 1 (there is no header line)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise ValueError(f"{p}: file is empty")
    try:
        frame = pd.read_parquet(p)
    except ImportError:
        raise ValueError(f"{p}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    except Exception as err:  # pyarrow raises many types for a damaged file
        raise ValueError(f"{p}: not a readable Parquet file ({type(err).__name__})") from None
    if frame.empty:
        raise ValueError(f"{p}: holds no rows")
    cells = frame.astype(str).replace({"NaT": "", "None": "", "<NA>": ""})
    rows = cells.to_numpy().tolist()
    return Table(str(p), [str(c) for c in frame.columns], rows, list(range(1, len(rows) + 1)))


def _parse_times(table: Table, col: str) -> pd.Index:
    cells = [c.strip() for c in table.column(col)]
    for i, c in enumerate(cells):
        if not c:
            raise ValueError(f"{table.where(i, col)}: time is missing")
    numbers: list[float] = []
    for c in cells:
        try:
            numbers.append(float(c))
        except ValueError:
            break
    if len(numbers) == len(cells):
        if not np.isfinite(numbers).all():
            i = int(np.flatnonzero(~np.isfinite(numbers))[0])
            raise ValueError(f"{table.where(i, col)}: {cells[i]!r} is not a finite time")
        return pd.Index(np.asarray(numbers, dtype=np.float64), name=col)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(pd.Series(cells), errors="coerce", format="mixed")
    except (ValueError, TypeError, OverflowError) as err:  # e.g. mixed time zones
        raise ValueError(
            f"{table.path} column {col!r}: times do not parse together ({err})"
        ) from None
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{table.where(i, col)}: {cells[i][:40]!r} is not a date or a number")
    return pd.DatetimeIndex(parsed, name=col)


def _check_order(table: Table, col: str, key: str, rows: list[int], times: pd.Index) -> None:
    for k in range(1, len(times)):
        if times[k] == times[k - 1]:
            raise ValueError(
                f"{table.where(rows[k], col)}: duplicate time {_show(times[k])} in series "
                f"{key!r} (also row {table.lines[rows[k - 1]]})"
            )
        if times[k] < times[k - 1]:
            raise ValueError(
                f"{table.where(rows[k], col)}: {_show(times[k])} comes before "
                f"{_show(times[k - 1])} of row {table.lines[rows[k - 1]]} in series {key!r}; "
                "sort each series by time"
            )


def _show(t: object) -> str:
    if isinstance(t, pd.Timestamp):
        return str(t.isoformat())
    return _number_text(float(t))  # type: ignore[arg-type]


def _check_frequency(table: Table, col: str, series: list[OneSeries], freq: str | None) -> str:
    """The shared frequency (given or inferred); a gap or an off-grid step raises."""
    if isinstance(series[0].times, pd.DatetimeIndex):
        alias = _date_freq(table, series, freq)
        for s in series:
            grid = pd.date_range(s.times[0], periods=len(s), freq=alias)
            off = np.flatnonzero(grid != s.times)
            if len(off):
                _gap(table, col, s, int(off[0]), grid[off[0]], alias)
        return alias
    step = _number_step(table, series, freq)
    for s in series:
        t = np.asarray(s.times, dtype=np.float64)
        grid = t[0] + step * np.arange(len(t))
        off = np.flatnonzero(~np.isclose(grid, t, rtol=0, atol=1e-9 * max(1.0, abs(step))))
        if len(off):
            _gap(table, col, s, int(off[0]), float(grid[off[0]]), _number_text(step))
    return _number_text(step)


def _gap(table: Table, col: str, s: OneSeries, k: int, want: object, freq: str) -> None:
    where = f"{table.path} row {s.lines[k]}, column {col!r}"
    got, expected = _show(s.times[k]), _show(want)
    if s.times[k] > want:
        raise ValueError(
            f"{where}: gap in series {s.id!r}: expected {expected} after "
            f"{_show(s.times[k - 1])} at frequency {freq}, got {got}; fill the missing steps"
        )
    raise ValueError(
        f"{where}: {got} in series {s.id!r} is off the frequency {freq} grid (expected {expected})"
    )


def _date_freq(table: Table, series: list[OneSeries], freq: str | None) -> str:
    if freq:
        try:
            offset = pd.tseries.frequencies.to_offset(freq)
        except (ValueError, TypeError):
            raise ValueError(
                f"data.freq {freq!r} is not a pandas frequency (e.g. 'D', 'h', 'W-SUN', 'MS')"
            ) from None
        return str(offset.freqstr)
    guesses = []
    for s in series:
        if len(s) >= 3:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                guess = pd.infer_freq(s.times) or pd.infer_freq(s.times[:3])
            if guess:
                guesses.append(guess)
    if not guesses:
        raise ValueError(
            f"{table.path}: cannot infer the frequency (no series has 3 evenly spaced times at "
            "its start); set data.freq, e.g. 'D' or 'MS'"
        )
    return max(set(guesses), key=guesses.count)


def _number_step(table: Table, series: list[OneSeries], freq: str | None) -> float:
    if freq:
        try:
            step = float(freq)
        except ValueError:
            step = float("nan")
        if not np.isfinite(step) or step <= 0:
            raise ValueError(f"data.freq {freq!r}: numeric times need a positive number step")
        return step
    diffs = np.concatenate([np.diff(np.asarray(s.times, dtype=np.float64)) for s in series])
    if diffs.size == 0:
        raise ValueError(
            f"{table.path}: cannot infer the step from one time per series; set data.freq"
        )
    values, counts = np.unique(diffs, return_counts=True)
    return float(values[np.argmax(counts)])


def check_window(data: LongSeries, *, input_len: int, horizon: int, split: str = "") -> None:
    """Every series holds at least one window of ``input_len + horizon`` steps, or an error that
    says what would fit."""
    need = input_len + horizon
    for s in data.series:
        if len(s) < need:
            fits = len(s) - horizon
            hint = (
                f"data.seq_len <= {fits} would fit"
                if fits >= 1
                else f"it is too short for horizon {horizon}"
            )
            where = f" ({split})" if split else ""
            raise ValueError(
                f"{data.path} rows {s.lines[0]}-{s.lines[-1]}: series {s.id!r}{where} has "
                f"{len(s)} steps, shorter than input {input_len} + horizon {horizon} = {need}; "
                f"{hint}"
            )
