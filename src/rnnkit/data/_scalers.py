"""Column scalers (standard, min-max, robust), fitted on the training split only, saved as JSON.

Re-exported by `rnnkit.data.series`. Each works on arrays whose last axis is the C fitted columns:
``(N, C)``, ``(B, T, C)``, numpy or torch. Columns with zero spread scale by 1, never divide by 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import torch
from torch import Tensor

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)
ScalerKind = Literal["standard", "minmax", "robust"]


class Scaler:
    """Base: ``transform(x) = (x - shift) / scale`` per column; subclasses choose shift and
    scale."""

    kind: ClassVar[str] = ""

    def __init__(self) -> None:
        self.shift: np.ndarray | None = None  # (C,)
        self.scale: np.ndarray | None = None  # (C,)

    def _stats(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def fit(self, x: np.ndarray | Tensor) -> Scaler:
        """Fit on training data ``(N, C)`` (or ``(..., C)``); NaNs are ignored."""
        arr = np.asarray(x, dtype=np.float64)
        arr = arr.reshape(-1, arr.shape[-1]) if arr.ndim > 1 else arr.reshape(-1, 1)
        if arr.shape[0] == 0:
            raise ValueError("cannot fit a scaler on 0 rows")
        empty = np.where(np.isnan(arr).all(axis=0))[0]
        if len(empty):
            raise ValueError(f"cannot fit a scaler: column {int(empty[0])} has only missing values")
        shift, scale = self._stats(arr)
        self.shift, self.scale = shift, np.where(scale > 0, scale, 1.0)
        return self

    def _params(self, like: ArrayT, columns: Sequence[int] | None) -> tuple[Any, Any]:
        if self.shift is None or self.scale is None:
            raise ValueError(f"{type(self).__name__} is not fitted; call fit on the training split")
        idx = list(range(len(self.shift))) if columns is None else list(columns)
        if like.shape[-1] != len(idx):
            raise ValueError(
                f"{type(self).__name__} expects {len(idx)} columns on the last axis, "
                f"got shape {tuple(like.shape)}"
            )
        shift, scale = self.shift[idx], self.scale[idx]
        if isinstance(like, Tensor):
            return (
                torch.as_tensor(shift, dtype=like.dtype, device=like.device),
                torch.as_tensor(scale, dtype=like.dtype, device=like.device),
            )
        return shift.astype(like.dtype, copy=False), scale.astype(like.dtype, copy=False)

    def transform(self, x: ArrayT, *, columns: Sequence[int] | None = None) -> ArrayT:
        """Scale ``x`` (last axis = the fitted columns, or the subset ``columns``)."""
        shift, scale = self._params(x, columns)
        return (x - shift) / scale

    def inverse_transform(self, x: ArrayT, *, columns: Sequence[int] | None = None) -> ArrayT:
        """Undo `transform`; pass ``columns`` (indices into the fitted columns) for predictions of a
        subset such as the targets only."""
        shift, scale = self._params(x, columns)
        return x * scale + shift

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        if self.shift is None or self.scale is None:
            raise ValueError(f"{type(self).__name__} is not fitted; nothing to save")
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    def save(self, path: str | PathLike[str]) -> None:
        """Write `to_dict` as JSON, to ship with a model."""
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @staticmethod
    def from_dict(state: dict[str, Any]) -> Scaler:
        """Rebuild any scaler from `to_dict` output."""
        kinds: dict[str, type[Scaler]] = {
            c.kind: c for c in (StandardScaler, MinMaxScaler, RobustScaler)
        }
        if state.get("kind") not in kinds:
            raise ValueError(
                f"unknown scaler kind {state.get('kind')!r}; expected one of {list(kinds)}"
            )
        scaler = kinds[state["kind"]]()
        scaler.shift = np.asarray(state["shift"], dtype=np.float64)
        scaler.scale = np.asarray(state["scale"], dtype=np.float64)
        if scaler.shift.shape != scaler.scale.shape or scaler.shift.ndim != 1:
            raise ValueError("scaler state needs 'shift' and 'scale' lists of equal length")
        return scaler

    @staticmethod
    def load(path: str | PathLike[str]) -> Scaler:
        """Read a scaler written by `save`."""
        try:
            state = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: cannot read scaler JSON ({err})") from None
        return Scaler.from_dict(state)


class StandardScaler(Scaler):
    """Zero mean, unit standard deviation per column."""

    kind = "standard"

    def _stats(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.nanmean(x, axis=0), np.nanstd(x, axis=0)


class MinMaxScaler(Scaler):
    """Maps each column's training range onto [0, 1]."""

    kind = "minmax"

    def _stats(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = np.nanmin(x, axis=0)
        return lo, np.nanmax(x, axis=0) - lo


class RobustScaler(Scaler):
    """Median and inter-quartile range, so outliers in training barely move the scaling."""

    kind = "robust"

    def _stats(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q25, q50, q75 = np.nanpercentile(x, [25, 50, 75], axis=0)
        return q50, q75 - q25


def make_scaler(kind: ScalerKind) -> Scaler:
    """A fresh scaler by name: "standard", "minmax" or "robust"."""
    table: dict[str, type[Scaler]] = {
        "standard": StandardScaler,
        "minmax": MinMaxScaler,
        "robust": RobustScaler,
    }
    if kind not in table:
        raise ValueError(f"scaler must be one of {list(table)}, got {kind!r}")
    return table[kind]()
