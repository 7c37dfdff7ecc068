"""A list of samples as one safetensors file: how a run keeps the test split an application made.

A sample is what a task family's collate takes: a bare array (a language model's id sequence) or
a tuple of fields, each an array with steps first (``x``, per-step tags, targets), a scalar (a
class id, a regression target) or None (no label). Field ``j`` of every sample is stored as
``f{j}``, the rows concatenated along the steps axis, and ``f{j}.lengths`` (steps per sample);
scalars are stacked. The header's metadata says how to cut them apart again. Only arrays and
strings are read back: nothing is unpickled.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save

FORMAT = "rnnkit.samples/1"


def _field(values: list[Any], j: int) -> tuple[str, dict[str, np.ndarray]]:
    """The kind of field ``j`` ("none", "scalar" or "steps") and its tensors."""
    if all(v is None for v in values):
        return "none", {}
    if any(v is None for v in values):
        row = next(i for i, v in enumerate(values) if v is None)
        raise ValueError(f"sample {row}: field {j} is None where other samples have a value")
    arrays = [np.asarray(v.detach().cpu() if hasattr(v, "detach") else v) for v in values]
    if all(a.ndim == 0 for a in arrays):
        return "scalar", {f"f{j}": np.ascontiguousarray(np.stack(arrays))}
    tail = arrays[0].shape[1:]
    for i, a in enumerate(arrays):
        if a.ndim == 0 or a.shape[1:] != tail:
            raise ValueError(
                f"sample {i}: field {j} has shape {a.shape}; sample 0's is {arrays[0].shape} "
                "(every sample's field must have the same shape after its first axis)"
            )
    lengths = np.asarray([len(a) for a in arrays], dtype=np.int64)
    flat = np.concatenate(arrays) if arrays else np.zeros((0, *tail))
    return "steps", {f"f{j}": np.ascontiguousarray(flat), f"f{j}.lengths": lengths}


def encode_samples(samples: Sequence[Any]) -> bytes:
    """``samples`` as the bytes of a safetensors file (see the module docstring)."""
    if len(samples) == 0:
        raise ValueError("no samples to store")
    bare = not isinstance(samples[0], tuple | list)
    rows = [(s,) if bare else tuple(s) for s in samples]
    width = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"sample {i} has {len(r)} fields; sample 0 has {width}")
    kinds: list[str] = []
    tensors: dict[str, np.ndarray] = {}
    for j in range(width):
        kind, arrays = _field([r[j] for r in rows], j)
        kinds.append(kind)
        tensors.update(arrays)
    meta = {
        "format": FORMAT,
        "count": str(len(rows)),
        "bare": "1" if bare else "0",
        "kinds": ",".join(kinds),
    }
    return save(tensors, metadata=meta)


def load_samples(path: str | os.PathLike[str]) -> list[Any]:
    """The samples of a file `encode_samples` wrote; one ``ValueError`` line naming the file when
    it is not one."""
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    except Exception as err:  # safetensors' own errors: a damaged header or data
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r} is not {FORMAT!r}")
    count = int(meta["count"])
    fields: list[list[Any]] = []
    for j, kind in enumerate(meta["kinds"].split(",")):
        if kind == "none":
            fields.append([None] * count)
        elif kind == "scalar":
            fields.append(list(tensors[f"f{j}"]))
        elif kind == "steps":
            ends = np.cumsum(tensors[f"f{j}.lengths"])
            if len(ends) != count or (count and ends[-1] != len(tensors[f"f{j}"])):
                raise ValueError(f"{path}: field {j}'s lengths do not add up to its rows")
            fields.append(np.split(tensors[f"f{j}"], ends[:-1]))
        else:
            raise ValueError(f"{path}: unknown field kind {kind!r}")
    if meta["bare"] == "1":
        return fields[0]
    return [tuple(f[i] for f in fields) for i in range(count)]


__all__ = ["FORMAT", "encode_samples", "load_samples"]
