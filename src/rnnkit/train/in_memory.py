"""What a run keeps of the in-memory data an application trained it on, so commands can use it.

A run's config names its data, so `rnnkit predict`, `test` and `export` rebuild the test split
from it; an application's samples are made in memory (`DataParts`) and no config can rebuild
them. `fit` therefore writes two more artifact files for such a run, sealed with the others
(`rnnkit.integrity`): ``test_split.safetensors`` (the test samples, `rnnkit.data.sample_file`) and
``data_meta.json`` (the sizes and names in ``DataParts.meta``: classes, vocabularies, feature
counts). `stored_parts` turns them back into `DataParts` with empty train and validation splits.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.sample_file import encode_samples, load_samples
from rnnkit.data.text import Vocab
from rnnkit.integrity import read_json
from rnnkit.train.tasks.base import DataParts

TEST_SPLIT = "test_split.safetensors"
DATA_META = "data_meta.json"


def _plain(value: Any) -> Any:
    """``value`` as JSON data (a `Vocab` as ``{"vocab_tokens": [...]}``); TypeError otherwise."""
    if isinstance(value, Vocab):
        return {"vocab_tokens": value.tokens}
    if isinstance(value, np.generic | np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise TypeError("not finite")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(type(value).__name__)


def _restore(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"vocab_tokens"}:
        return Vocab(value["vocab_tokens"])
    return value


def stored_split_files(data: Any, artifact_json: dict[str, Any]) -> dict[str, bytes]:
    """The artifact files keeping ``data``'s test split and plain meta; their names go into
    ``artifact_json``. Data they cannot hold (no test split, samples of mixed shapes) is noted
    there as ``test_split_error`` and the run is kept as before: re-scoring needs the data."""
    test = getattr(data, "test", None)
    if test is None or len(test) == 0:
        artifact_json["test_split_error"] = "the data had no test split"
        return {}
    try:
        split = encode_samples(test)
    except ValueError as err:
        artifact_json["test_split_error"] = str(err)
        return {}
    meta: dict[str, Any] = {}
    skipped = []
    for key, value in (getattr(data, "meta", None) or {}).items():
        try:
            meta[str(key)] = _plain(value)
        except TypeError:
            skipped.append(str(key))
    artifact_json.update(test_split=TEST_SPLIT, data_meta=DATA_META)
    if skipped:  # objects (a fitted scaler...) that only the application can remake
        artifact_json["data_meta_skipped"] = skipped
    return {TEST_SPLIT: split, DATA_META: json.dumps(meta, ensure_ascii=False).encode()}


class _Restored(DataParts):
    """`DataParts` read back from an artifact (`build` does not store them a second time)."""

    restored = True


def stored_parts(meta: dict[str, Any]) -> DataParts | None:
    """The stored test split and meta of an artifact (``model.json`` as read, with ``_folder``),
    as `DataParts` with empty train and validation splits; None when the run stored none."""
    if not meta.get("test_split"):
        return None
    folder = Path(meta["_folder"])
    samples = load_samples(folder / meta["test_split"])
    plain = read_json(folder / meta["data_meta"])
    if not isinstance(plain, dict):
        raise ValueError(f"{folder / meta['data_meta']} is corrupt: not a JSON mapping")
    return _Restored([], [], samples, {k: _restore(v) for k, v in plain.items()})


__all__ = ["DATA_META", "TEST_SPLIT", "stored_parts", "stored_split_files"]
