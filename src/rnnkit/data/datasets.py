"""The offline registry of real data sets: `load(name, **opts)` and `list_datasets()`.

Every set is read from files that an installed package ships; nothing downloads. This module holds
the entry points and the numeric sets (sktime, statsmodels, scikit-learn); text, seq2seq and
music sets live in `rnnkit.data._text_sets`, which registers itself on import. Origins and licences:
``docs/data.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from rnnkit.data._registry import (  # noqa: F401  (re-exported: the registry's public names)
    _REGISTRY,
    DatasetInfo,
    DataSplits,
    LabelledSeries,
    Loader,
    _seeded_split,
    package_dir,
    register,
)
from rnnkit.data._scalers import StandardScaler
from rnnkit.data.batching import SequenceDataset
from rnnkit.data.series import load_csv, prepare_forecasting, time_split


def list_datasets() -> list[DatasetInfo]:
    """Every registered set, sorted by name."""
    _load_text_sets()
    return [info for _, (info, _) in sorted(_REGISTRY.items())]


def load(name: str, **opts: Any) -> DataSplits:
    """Load the set ``name`` with its options (see each set's entry in ``docs/data.md``)."""
    _load_text_sets()
    if name not in _REGISTRY:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(_REGISTRY)}")
    info, fn = _REGISTRY[name]
    return fn(info, **opts)


def _load_text_sets() -> None:
    import rnnkit.data._text_sets  # noqa: F401  (registers on import)


# ---- sequence classification (sktime, official train/test splits) ----


def _class_ids(labels: np.ndarray, classes: list[str]) -> list[int]:
    table = {c: i for i, c in enumerate(classes)}
    return [table[str(v)] for v in labels]


def _sorted_classes(labels: np.ndarray) -> list[str]:
    values = sorted({str(v) for v in labels})
    return sorted(values, key=int) if all(v.lstrip("-").isdigit() for v in values) else values


def _sktime_classification(
    info: DatasetInfo, loader: str, *, scale: bool = True, val_fraction: float = 0.0, seed: int = 0
) -> DataSplits:
    """The official train/test files; ``val_fraction`` > 0 carves a validation split from train,
    stratified by class with ``seed``, exactly as a run on the same rows written as user files
    (`rnnkit.data.formats.encode.holdout`). The scaler is fitted afterwards, on the rows left for
    training only, in float64 as a user file is read."""
    import sktime.datasets

    from rnnkit.data.formats.encode import holdout

    parts = {}
    for split in ("train", "test"):
        frame, labels = getattr(sktime.datasets, loader)(split=split, return_X_y=True)
        seqs = [
            np.stack(
                [np.asarray(frame.iloc[i, j], dtype=np.float64) for j in range(frame.shape[1])], 1
            )
            for i in range(len(frame))
        ]  # each (T_i, C)
        parts[split] = (seqs, np.asarray(labels).astype(str))
    classes = _sorted_classes(parts["train"][1])
    if val_fraction > 0:
        seqs, labels = parts.pop("train")
        keep, held = holdout(len(seqs), val_fraction, seed=seed, labels=labels.tolist())
        parts = {
            "train": ([seqs[i] for i in keep], labels[keep]),
            "val": ([seqs[i] for i in held], labels[held]),
            **parts,
        }
    scaler = StandardScaler().fit(np.concatenate(parts["train"][0]))
    out: dict[str, SequenceDataset] = {}
    for split, (seqs, labels) in parts.items():
        if scale:
            seqs = [scaler.transform(s) for s in seqs]
        out[split] = SequenceDataset(
            [s.astype(np.float32) for s in seqs],
            _class_ids(labels, classes),
            source=f"{info.name} {split}",
        )
    meta = {"classes": classes, "n_features": out["train"].sequences[0].shape[1], "scaler": scaler}
    return DataSplits(info, out["train"], out.get("val"), out["test"], meta)


_UCR = "UCR/UEA archive (free for research; cite the archive); bundled by sktime (BSD-3-Clause)"
for _name, _loader, _desc, _size in [
    (
        "japanese_vowels",
        "load_japanese_vowels",
        "Nine speakers saying /ae/: 12 LPC cepstrum channels per frame; classify the speaker. "
        "Variable length, kept as lengths.",
        "270 train / 370 test, 12 channels, 7-29 steps, 9 classes",
    ),
    (
        "basic_motions",
        "load_basic_motions",
        "Smart-watch accelerometer and gyroscope during four activities.",
        "40 train / 40 test, 6 channels, 100 steps, 4 classes",
    ),
    (
        "gunpoint",
        "load_gunpoint",
        "Hand x-position while drawing a gun or pointing a finger.",
        "50 train / 150 test, 1 channel, 150 steps, 2 classes",
    ),
    (
        "italy_power_demand",
        "load_italy_power_demand",
        "Daily Italian electricity demand curves; classify winter or summer months.",
        "67 train / 1029 test, 1 channel, 24 steps, 2 classes",
    ),
]:
    _info = DatasetInfo(_name, "classification", _desc, _size, f"sktime.datasets.{_loader}", _UCR)
    register(_info)(lambda info, _l=_loader, **o: _sktime_classification(info, _l, **o))


# ---- forecasting and anomaly detection ----


def _forecast(
    info: DatasetInfo,
    frame: pd.DataFrame,
    target: str,
    defaults: dict[str, Any],
    opts: dict[str, Any],
) -> DataSplits:
    data = prepare_forecasting(frame, targets=[target], **{**defaults, **opts})
    meta = {"data": data, "scaler": data.scaler, "season": _season(frame.index)}
    return DataSplits(info, data.train, data.val, data.test, meta)


def _season(index: pd.Index) -> int:
    """The usual season of a time index's frequency (12 for months, ...; 1 when it has none)."""
    from rnnkit.data.formats.forecast import season_of

    freq = getattr(index, "freqstr", None)
    if freq is None and isinstance(index, pd.DatetimeIndex) and len(index) > 2:
        freq = pd.infer_freq(index)
    return season_of(freq) if freq else 1


@register(
    DatasetInfo(
        "sunspots",
        "forecasting",
        "Yearly mean sunspot numbers, 1700-2008.",
        "309 steps, 1 channel",
        "statsmodels.datasets.sunspots",
        "public domain (NOAA / SIDC)",
    )
)
def _sunspots(info: DatasetInfo, **opts: Any) -> DataSplits:
    from statsmodels.datasets import sunspots

    frame = sunspots.load_pandas().data.set_index("YEAR")[["SUNACTIVITY"]]
    return _forecast(info, frame, "SUNACTIVITY", {"input_len": 20, "horizon": 1}, opts)


@register(
    DatasetInfo(
        "co2",
        "forecasting",
        "Weekly atmospheric CO2 at Mauna Loa (ppm), 1958-2001; 59 gaps.",
        "2284 steps, 1 channel",
        "statsmodels.datasets.co2",
        "public domain (Scripps / CDIAC)",
    )
)
def _co2(info: DatasetInfo, **opts: Any) -> DataSplits:
    from statsmodels.datasets import co2

    frame = co2.load_pandas().data[["co2"]]
    defaults = {"input_len": 52, "horizon": 1, "missing": "interpolate"}
    return _forecast(info, frame, "co2", defaults, opts)


@register(
    DatasetInfo(
        "airline",
        "forecasting",
        "Monthly international airline passengers (thousands), 1949-1960; test = last 24 months.",
        "144 steps, 1 channel",
        "sktime.datasets.load_airline",
        "public domain (Box & Jenkins series G)",
    )
)
def _airline(info: DatasetInfo, **opts: Any) -> DataSplits:
    from sktime.datasets import load_airline

    series = load_airline()
    frame = pd.DataFrame({"passengers": series.to_numpy(dtype=np.float64)}, index=series.index)
    defaults = {"input_len": 24, "horizon": 12, "val_size": 12, "test_size": 24}
    return _forecast(info, frame, "passengers", defaults, opts)


@register(
    DatasetInfo(
        "mitdb",
        "anomaly",
        "An ECG lead from the MIT-BIH Arrhythmia Database with a 0/1 anomaly label per sample.",
        "7500 steps, 1 channel",
        "sktime/datasets/data/mitdb/mitdb.csv (read as CSV)",
        "ODC-By 1.0 (PhysioNet MIT-BIH); bundled by sktime (BSD-3-Clause)",
    )
)
def _mitdb(info: DatasetInfo, *, val_size: float = 0.2, test_size: float = 0.2) -> DataSplits:
    path = package_dir("sktime") / "datasets" / "data" / "mitdb" / "mitdb.csv"
    frame = load_csv(path, target="data", numeric=["label"], missing="error")
    parts = time_split(len(frame), val_size=val_size, test_size=test_size)
    values = frame["data"].to_numpy(dtype=np.float64)[:, None]  # (N, 1)
    labels = frame["label"].to_numpy()
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{path} column 'label': labels must be 0 or 1")
    scaler = StandardScaler().fit(values[parts[0]])
    scaled = torch.from_numpy(scaler.transform(values).astype(np.float32))
    ys = torch.from_numpy(labels.astype(np.int64))
    train, val, test = (LabelledSeries(scaled[p], ys[p]) for p in parts)
    return DataSplits(info, train, val, test, {"scaler": scaler, "classes": ["normal", "anomaly"]})


# ---- sequential recommendation (MovieLens-100K, shipped by recbole) ----

_ML_COLUMNS = ("user_id:token", "item_id:token", "rating:float", "timestamp:float")


@register(
    DatasetInfo(
        "movielens_100k",
        "recommendation",
        "MovieLens-100K ratings as one time-ordered item sequence per user (ties in time broken by "
        "item id); leave-one-out: last item = test, second-to-last = validation, the rest = train.",
        "100,000 ratings, 943 users, 1,682 movies, 20-737 items per user",
        "recbole/dataset_example/ml-100k/ml-100k.inter (read as a file; recbole not imported)",
        "GroupLens MovieLens terms (research use, no redistribution; cite Harper & Konstan 2015); "
        "recbole MIT",
        extra="datasets (recbole, --no-deps)",
    )
)
def _movielens_100k(
    info: DatasetInfo,
    *,
    min_rating: float = 0.0,
    max_users: int | None = None,
    path: str | Path | None = None,
) -> DataSplits:
    """Items are ids ``1..n_items`` (0 is padding). ``train``: each user's sequence without its
    last two items (labels None); ``val``: that history with the second-to-last item as label;
    ``test``: the history up to the second-to-last item with the last item as label. Rows are users
    in id order; ``max_users`` keeps the first N (for small runs), ``min_rating`` drops ratings
    below it (0 keeps every rating as an interaction)."""
    file = (
        Path(path)
        if path is not None
        else package_dir("recbole") / "dataset_example" / "ml-100k" / "ml-100k.inter"
    )
    if not file.is_file():
        raise ValueError(f"{file}: no such file (install recbole==1.2.1, which ships it)")
    frame = pd.read_csv(file, sep="\t", dtype=str, keep_default_na=False)
    for col in _ML_COLUMNS:
        if col not in frame.columns:
            raise ValueError(
                f"{file} row 1, column {col!r}: no such column; the header has "
                f"{list(frame.columns)}"
            )
    if frame.empty:
        raise ValueError(f"{file}: the header has no data rows under it")
    numbers = {}
    for col in _ML_COLUMNS:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(
                f"{file} row {int(bad[0]) + 2}, column {col!r}: {frame[col].iloc[bad[0]]!r} is "
                "not a number"
            )
        numbers[col] = values
    users = numbers["user_id:token"].astype(np.int64)
    raw_items = numbers["item_id:token"].astype(np.int64)
    keep = numbers["rating:float"] >= min_rating
    users, raw_items, times = users[keep], raw_items[keep], numbers["timestamp:float"][keep]
    item_ids = np.unique(raw_items)  # raw id of item i+1
    items = np.searchsorted(item_ids, raw_items) + 1
    order = np.lexsort((items, times, users))  # by user, then time, then item id
    users, items = users[order], items[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    seqs = np.split(items, starts[1:])
    user_ids = users[starts]
    long_enough = [i for i, s in enumerate(seqs) if len(s) >= 3]
    if max_users is not None:
        long_enough = long_enough[:max_users]
    if not long_enough:
        raise ValueError(f"{file}: no user has the 3 interactions leave-one-out needs")
    seqs = [seqs[i] for i in long_enough]
    src = str(file)
    train = SequenceDataset([s[:-2] for s in seqs], source=f"{src} train")
    val = SequenceDataset([s[:-2] for s in seqs], [int(s[-2]) for s in seqs], source=f"{src} val")
    test = SequenceDataset([s[:-1] for s in seqs], [int(s[-1]) for s in seqs], source=f"{src} test")
    meta = {
        "n_items": len(item_ids),
        "item_ids": item_ids.tolist(),
        "users": user_ids[long_enough].tolist(),
        "titles": _ml_titles(file.with_suffix(".item"), item_ids),
    }
    return DataSplits(info, train, val, test, meta)


def _ml_titles(path: Path, item_ids: np.ndarray) -> list[str]:
    """Movie titles by item id - 1 from the ``.item`` file next to the ratings, or raw ids."""
    names = {int(i): f"item {int(i)}" for i in item_ids}
    if path.is_file():
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        if {"item_id:token", "movie_title:token_seq"} <= set(frame.columns):
            for raw, title in zip(
                frame["item_id:token"], frame["movie_title:token_seq"], strict=True
            ):
                if raw.isdigit() and int(raw) in names:
                    names[int(raw)] = title
    return [names[int(i)] for i in item_ids]


# ---- handwriting as sequences (scikit-learn digits) ----


def _digits(
    info: DatasetInfo,
    steps: int,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> DataSplits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.data / 16.0).astype(np.float32).reshape(len(bunch.data), steps, -1)  # (N, T, I)
    labels = bunch.target.astype(np.int64)
    parts = _seeded_split(
        len(images), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    train, val, test = (
        SequenceDataset(list(images[idx]), labels[idx].tolist(), source=f"{info.name}")
        for idx in parts
    )
    meta = {"classes": [str(d) for d in range(10)], "n_features": images.shape[2]}
    return DataSplits(info, train, val, test, meta)


_DIGITS_SRC = "sklearn.datasets.load_digits"
_DIGITS_LICENCE = "CC BY 4.0 (UCI optical digits); bundled by scikit-learn (BSD-3-Clause)"
register(
    DatasetInfo(
        "digits_rows",
        "classification",
        "8x8 handwritten digits read row by row.",
        "1797 images, 8 steps x 8 features, 10 classes",
        _DIGITS_SRC,
        _DIGITS_LICENCE,
    )
)(lambda info, **o: _digits(info, 8, **o))
register(
    DatasetInfo(
        "digits_pixels",
        "classification",
        "8x8 handwritten digits read pixel by pixel.",
        "1797 images, 64 steps x 1 feature, 10 classes",
        _DIGITS_SRC,
        _DIGITS_LICENCE,
    )
)(lambda info, **o: _digits(info, 64, **o))
