"""Tables and time series: CSV loading, missing values, categorical encoding, scaling, windows.

The flow is ``load_csv`` -> ``prepare_forecasting`` (split in time order, then fit the imputer,
category
encoders and scaler on the training rows only, then cut windows per split). Every check on a file
happens
in `load_csv` and raises a `ValueError` naming the file, row (the line in the file) and column.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from rnnkit.data._scalers import (
    MinMaxScaler,
    RobustScaler,
    Scaler,
    ScalerKind,
    StandardScaler,
    make_scaler,
)
from rnnkit.data.formats._common import BOM, is_missing, parse_number, read_delimited
from rnnkit.data.text import read_text

__all__ = [
    "CategoryEncoder",
    "ForecastData",
    "ForecastSplit",
    "Imputer",
    "MinMaxScaler",
    "RobustScaler",
    "Scaler",
    "StandardScaler",
    "load_csv",
    "make_scaler",
    "make_windows",
    "missing_report",
    "prepare_forecasting",
    "time_split",
]

MissingMethod = Literal["error", "ffill", "interpolate", "mean", "mask"]


def load_csv(
    path: str | PathLike[str],
    *,
    target: str | Sequence[str],
    time: str | None = None,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    missing: Literal["keep", "error"] = "keep",
) -> pd.DataFrame:
    """Read a CSV with a header row into a frame of ``[*target, *numeric, *categorical]`` columns.

    ``time`` (numbers or dates) becomes the index and must increase row by row. Numeric cells must
    parse
    as finite numbers; empty, ``NA``, ``nan``, ``null`` cells are missing (NaN), or an error when
    ``missing="error"``. Categorical cells stay strings. ``attrs["source"]`` keeps the path and
    ``attrs["rows"]`` the file line of each row, for later messages.
    """
    targets = [target] if isinstance(target, str) else list(target)
    if not targets:
        raise ValueError(f"{path}: name at least one target column")
    table = read_delimited(str(path), read_text(path).removeprefix(BOM))
    header, rows, lines = table.columns, table.rows, table.lines
    wanted = [*targets, *numeric, *categorical] + ([time] if time else [])
    for col in wanted:
        if col not in header:
            raise ValueError(
                f"{path} row 1, column {col!r}: no such column; the header has {header}"
            )
    raw = pd.DataFrame(rows, columns=header, dtype=object)
    out: dict[str, Any] = {}
    for col in [*targets, *numeric]:
        values = np.full(len(rows), np.nan)
        for i, cell in enumerate(raw[col]):
            where = f"{path} row {lines[i]}, column {col!r}"
            values[i] = parse_number(cell, where, allow_missing=missing == "keep")
        if np.isnan(values).all():
            raise ValueError(
                f"{path} rows {lines[0]}-{lines[-1]}, column {col!r}: every value is missing"
            )
        out[col] = values
    for col in categorical:
        out[col] = [None if is_missing(c) else c.strip() for c in raw[col]]
    frame = pd.DataFrame(out, columns=[*targets, *numeric, *categorical])
    if time:
        frame.index = _parse_time(path, raw[time].tolist(), lines, time)
    frame.attrs["source"] = str(path)
    frame.attrs["rows"] = lines
    return frame


def _parse_time(path: object, cells: list[str], lines: list[int], col: str) -> pd.Index:
    for i, cell in enumerate(cells):
        if is_missing(cell):
            raise ValueError(f"{path} row {lines[i]}, column {col!r}: time is missing")
    try:  # step numbers, else time stamps
        index: pd.Index = pd.Index([parse_number(c, col) for c in cells], name=col)
    except ValueError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(pd.Series(cells), errors="coerce", format="mixed")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if len(bad):
            i = int(bad[0])
            where = f"{path} row {lines[i]}, column {col!r}"
            raise ValueError(f"{where}: {cells[i]!r} is not a time") from None
        index = pd.DatetimeIndex(parsed, name=col)
    later = index[1:] > index[:-1]
    if not later.all():
        i = int(np.argmin(later)) + 1
        raise ValueError(
            f"{path} row {lines[i]}, column {col!r}: {cells[i]!r} does not come after "
            f"{cells[i - 1]!r}; rows must be in time order"
        )
    return index


def missing_report(frame: pd.DataFrame) -> dict[str, int]:
    """How many values each column is missing, e.g. ``{"co2": 59, "temp": 0}``."""
    return {str(col): int(frame[col].isna().sum()) for col in frame.columns}


class Imputer:
    """Fills missing numeric values by an explicit ``method``, with statistics from training rows
    only.

    - ``"error"``: any missing value raises, naming the column and its position.
    - ``"ffill"``: carry the last observed value forward (gaps at the start take the training mean).
    - ``"interpolate"``: linear in row order between observed neighbours; this reads the next
    observed
      value, so use ffill or mask where strict causality matters. Leading gaps take the training
      mean.
    - ``"mean"``: the training mean.
    - ``"mask"``: the training mean plus an indicator column ``<col>_missing`` (1.0 where missing).
    """

    def __init__(self, method: MissingMethod, *, columns: Sequence[str]) -> None:
        if method not in ("error", "ffill", "interpolate", "mean", "mask"):
            raise ValueError(f"unknown missing-value method {method!r}")
        self.method = method
        self.columns = list(columns)
        self.means: dict[str, float] = {}

    def fit(self, train: pd.DataFrame) -> Imputer:
        """Record training means (NaNs ignored); an all-missing training column raises."""
        for col in self.columns:
            if train[col].isna().all():
                raise ValueError(
                    f"{train.attrs.get('source', 'data')} column {col!r}: "
                    "every value in the training split is missing"
                )
            self.means[col] = float(train[col].mean())
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return a filled copy (with indicator columns appended for ``"mask"``)."""
        out = frame.copy()
        for col in self.columns:
            gaps = out[col].isna()
            if not gaps.any():
                if self.method == "mask":
                    out[f"{col}_missing"] = 0.0
                continue
            if self.method == "error":
                where = int(np.argmax(gaps.to_numpy()))
                raise ValueError(
                    f"{frame.attrs.get('source', 'data')} column {col!r}: value at "
                    f"position {where} is missing and missing='error'"
                )
            if self.method == "ffill":
                out[col] = out[col].ffill()
            elif self.method == "interpolate":
                out[col] = out[col].interpolate(method="linear", limit_direction="forward")
            elif self.method == "mask":
                out[f"{col}_missing"] = gaps.astype(np.float64)
            out[col] = out[col].fillna(self.means[col])
        return out


class CategoryEncoder:
    """Categories -> integer ids (1..K, with 0 the unknown id) or one-hot rows ``(N, K + 1)``.

    Categories unseen in training, and missing cells, map to id 0, never to an exception.
    """

    UNKNOWN = 0

    def __init__(self, *, mode: Literal["ids", "onehot"] = "ids") -> None:
        if mode not in ("ids", "onehot"):
            raise ValueError(f"mode must be 'ids' or 'onehot', got {mode!r}")
        self.mode = mode
        self.categories: list[str] = []

    def fit(self, values: Iterable[object]) -> CategoryEncoder:
        """Learn the sorted set of categories seen in training."""
        self.categories = sorted({str(v) for v in values if not _null(v)})
        return self

    @property
    def n_ids(self) -> int:
        """Ids in use, the unknown id included (K + 1): the embedding table size."""
        return len(self.categories) + 1

    def ids(self, values: Iterable[object]) -> np.ndarray:
        """``(N,)`` int64 ids."""
        table = {c: i + 1 for i, c in enumerate(self.categories)}
        return np.array([0 if _null(v) else table.get(str(v), 0) for v in values], dtype=np.int64)

    def transform(self, values: Iterable[object]) -> np.ndarray:
        """``(N,)`` int64 ids, or ``(N, K + 1)`` float32 one-hot rows (column 0 = unknown)."""
        ids = self.ids(values)
        if self.mode == "ids":
            return ids
        return np.eye(self.n_ids, dtype=np.float32)[ids]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"mode": self.mode, "categories": self.categories}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> CategoryEncoder:
        """Rebuild from `to_dict` output."""
        enc = cls(mode=state["mode"])
        enc.categories = [str(c) for c in state["categories"]]
        return enc


def _null(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def time_split(
    n: int, *, val_size: float | int = 0.15, test_size: float | int = 0.15
) -> tuple[slice, slice, slice]:
    """Row ranges of train, validation, test in time order; sizes are fractions or step counts."""

    def count(size: float | int) -> int:
        return int(size) if isinstance(size, int) else round(n * size)

    n_val, n_test = count(val_size), count(test_size)
    n_train = n - n_val - n_test
    if n_val < 0 or n_test < 0 or n_train < 1:
        raise ValueError(
            f"val_size {val_size} and test_size {test_size} leave no training rows of {n}"
        )
    return slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, n)


def make_windows(
    values: np.ndarray,
    *,
    input_len: int,
    horizon: int,
    stride: int = 1,
    targets: Sequence[int] = (0,),
    target_range: tuple[int, int] | None = None,
    source: str = "series",
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``(N, C)`` values into forecasting windows.

    Returns inputs ``(W, input_len, C)`` and targets ``(W, horizon, K)`` (K = ``len(targets)``).
    With ``target_range=(lo, hi)`` only windows whose target steps all lie in ``[lo, hi)`` are kept;
    their inputs may reach back before ``lo`` (the past), never after it.
    """
    if input_len < 1 or horizon < 1 or stride < 1:
        raise ValueError(
            f"input_len, horizon, stride must be >= 1, got {input_len}, {horizon}, {stride}"
        )
    n = values.shape[0]
    lo, hi = target_range if target_range is not None else (input_len, n)
    first = max(lo, input_len)  # first target step of the first window
    starts = np.arange(first, hi - horizon + 1, stride)
    if len(starts) == 0:
        if target_range is None:
            raise ValueError(
                f"{source}: {n} steps are shorter than one window (input_len {input_len} + "
                f"horizon {horizon} = {input_len + horizon} steps)"
            )
        raise ValueError(
            f"{source}: steps {lo}-{hi - 1} hold no window of horizon {horizon} after "
            f"input_len {input_len} earlier steps"
        )
    span = np.lib.stride_tricks.sliding_window_view(
        values, input_len + horizon, axis=0
    )  # (W', C, L)
    span = span[starts - input_len].transpose(0, 2, 1)  # (W, L, C)
    x = np.ascontiguousarray(span[:, :input_len], dtype=np.float32)
    y = np.ascontiguousarray(span[:, input_len:][:, :, list(targets)], dtype=np.float32)
    return x, y


@dataclass
class ForecastSplit:
    """One split's windows and its prepared series."""

    x: Tensor  # (W, T_in, C) inputs
    y: Tensor  # (W, horizon, K) targets, scaled
    series: np.ndarray  # (N_split, C) prepared values of this split's own steps
    start: int  # index of this split's first step in the whole series


@dataclass
class ForecastData:
    """Forecasting splits plus everything fitted on training rows, to save with the model."""

    train: ForecastSplit
    val: ForecastSplit | None
    test: ForecastSplit
    columns: list[str]  # the C input channels
    targets: list[str]  # the K target channels, columns[:K]
    scaler: Scaler  # fitted on the training rows of the scaled columns (targets first)
    imputer: Imputer
    encoders: dict[str, CategoryEncoder] = field(default_factory=dict)
    missing: dict[str, int] = field(
        default_factory=dict
    )  # missing values per column, before filling

    def inverse_targets(self, y: Tensor) -> Tensor:
        """Predictions ``(..., K)`` back in original units."""
        return self.scaler.inverse_transform(y, columns=range(len(self.targets)))

    def state_json(self) -> str:
        """Scaler, encoders and column names as JSON, for a model artifact."""
        return json.dumps(
            {
                "columns": self.columns,
                "targets": self.targets,
                "scaler": self.scaler.to_dict(),
                "encoders": {k: v.to_dict() for k, v in self.encoders.items()},
                "missing_method": self.imputer.method,
                "means": self.imputer.means,
            }
        )


def check_columns(frame: pd.DataFrame, columns: Sequence[str], *, source: str) -> None:
    """``ValueError`` naming a column ``frame`` lacks (with its header), or the row and column of
    the first infinite value of a numeric column: an ``inf`` would scale every window to NaN."""
    header = [str(c) for c in frame.columns]
    for col in columns:
        if col not in frame.columns:
            raise ValueError(f"{source}: no such column {col!r}; the frame has {header}")
    for col in columns:
        values = frame[col]
        if not pd.api.types.is_numeric_dtype(values):
            continue
        bad = np.flatnonzero(np.isinf(values.to_numpy(dtype=np.float64)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{source} row {i} (index {frame.index[i]}), column {col!r}: value "
                f"{values.iloc[i]} is infinite ({bad.size} such rows)"
            )


def prepare_forecasting(
    frame: pd.DataFrame,
    *,
    targets: Sequence[str],
    input_len: int,
    horizon: int,
    stride: int = 1,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    missing: MissingMethod = "error",
    scaler: ScalerKind = "standard",
    encoding: Literal["ids", "onehot"] = "onehot",
    val_size: float | int = 0.15,
    test_size: float | int = 0.15,
) -> ForecastData:
    """Split ``frame`` in time order and turn each split into windows, fitting only on training
    rows.

    Channels are ``[*targets, *numeric, *<col>_missing, *categorical encodings]``; targets and
    numeric
    columns are scaled. Validation and test windows take their inputs from earlier steps (which may
    lie
    in an earlier split) and their targets only from their own split, so nothing from the future of
    a split reaches its inputs or the fitted statistics.
    """
    source = str(frame.attrs.get("source", "series"))
    scaled = [*targets, *numeric]
    check_columns(frame, [*scaled, *categorical], source=source)
    missing_counts = missing_report(frame[scaled + list(categorical)])
    tr, va, te = time_split(len(frame), val_size=val_size, test_size=test_size)
    imputer = Imputer(missing, columns=scaled).fit(frame.iloc[tr])
    filled = imputer.transform(frame)
    indicators = [c for c in filled.columns if str(c).endswith("_missing") and c not in frame]
    blocks = [filled[scaled + indicators].to_numpy(dtype=np.float64)]
    columns = scaled + indicators
    encoders: dict[str, CategoryEncoder] = {}
    for col in categorical:
        enc = CategoryEncoder(mode=encoding).fit(frame[col].iloc[tr])
        encoders[col] = enc
        block = enc.transform(frame[col]).astype(np.float64)
        blocks.append(block.reshape(len(frame), -1))
        columns += (
            [col] if encoding == "ids" else [f"{col}={c}" for c in ["<unk>", *enc.categories]]
        )
    values = np.concatenate(blocks, axis=1)  # (N, C)
    fitted = make_scaler(scaler).fit(values[tr, : len(scaled)])
    values[:, : len(scaled)] = fitted.transform(values[:, : len(scaled)])

    def split(part: slice, name: str) -> ForecastSplit:
        x, y = make_windows(
            values,
            input_len=input_len,
            horizon=horizon,
            stride=stride,
            targets=range(len(targets)),
            target_range=(part.start, part.stop),
            source=f"{source} {name} split, columns {list(targets)}",
        )
        return ForecastSplit(torch.from_numpy(x), torch.from_numpy(y), values[part], part.start)

    return ForecastData(
        train=split(tr, "train"),
        val=split(va, "val") if va.stop > va.start else None,
        test=split(te, "test"),
        columns=[str(c) for c in columns],
        targets=list(targets),
        scaler=fitted,
        imputer=imputer,
        encoders=encoders,
        missing=missing_counts,
    )
