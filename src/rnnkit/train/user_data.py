"""Training from the user's own files (``data.path``): read, split, fit encoders, baseline inputs.

Per task family, the files become the `DataParts` the family's own builder takes (so a run on
files trains exactly as a registry run), and `build_user` adds what only user data has: the
encoder (classes, scalers, vocabularies; fitted on the training split only) saved as
``artifact/encoder.json`` for `rnnkit predict --input`, a record of how each split was made, and
the inputs of the baselines that `rnnkit.evaluate.reference` scores on the test split. Splits: the
user's own validation/test files when given; otherwise a seeded hold-out (``data.seed``),
stratified by label for classification, the last steps of each series for forecasting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import nn

from rnnkit.data.formats import (
    LabelledSequences,
    LabelledTexts,
    LongSeries,
    TaggedSentences,
    read_conll,
    read_long,
    read_long_series,
    read_table,
    read_texts,
    read_ts,
    read_wide,
)
from rnnkit.data.formats.encode import (
    PairEncoder,
    SequenceEncoder,
    TagEncoder,
    TextEncoder,
    holdout,
)
from rnnkit.data.formats.forecast import fit_windows, season_of, split_series
from rnnkit.data.text import tokenize
from rnnkit.train.config import SequenceDataConfig
from rnnkit.train.tasks import TASKS, Built, DataParts

ENCODER_FILE = "encoder.json"


@dataclass
class UserFiles:
    """What a run on the user's files carries beside the model: how each split was made, the
    fitted encoder (JSON-ready), and plain inputs for the baselines of `rnnkit.evaluate.reference`
    (``kind`` names the suite and the verdict's headline metric)."""

    kind: str
    split: dict[str, str]
    encoder: dict[str, Any]
    reference: dict[str, Any] = field(default_factory=dict)


# ---- reading ----


def _syntax(d: SequenceDataConfig) -> str | None:
    return d.format if d.format in ("csv", "tsv", "jsonl", "parquet") else None


def layout(d: SequenceDataConfig, path: str) -> str:
    """How a classification file is laid out: ``ts``, ``wide``, ``long`` or ``text``. Given by
    ``data.format`` (ts/wide/long), else ``.ts`` by extension, else by the header: the text
    column means text, the id and time columns mean long, anything else wide."""
    if d.format in ("ts", "wide", "long"):
        return d.format
    if d.format is None and Path(path).suffix.lower() == ".ts":
        return "ts"
    columns = read_table(path, fmt=_syntax(d), header=d.header).columns
    if d.text_col in columns:
        return "text"
    if d.id_col in columns and d.time_col in columns:
        return "long"
    return "wide"


def read_examples(
    d: SequenceDataConfig, path: str, kind: str, *, labelled: bool = True
) -> LabelledSequences | LabelledTexts:
    """A classification file of layout ``kind``; ``labelled=False`` reads the label column only
    when the file has one (prediction input)."""
    label: str | None = d.label_col
    if kind == "ts":
        return read_ts(path)
    columns = read_table(path, fmt=_syntax(d), header=d.header).columns
    if not labelled and d.label_col not in columns:
        label = None
    id_col = d.id_col if d.id_col in columns else None
    if kind == "text":
        return read_texts(
            path,
            text_col=d.text_col,
            label_col=label,
            id_col=id_col,
            fmt=_syntax(d),
            header=d.header,
        )
    if kind == "long":
        if d.id_col is None:
            raise ValueError(f"{path}: a long-format file needs data.id_col")
        return read_long(
            path,
            id_col=d.id_col,
            time_col=d.time_col,
            label_col=label,
            features=d.features,
            fmt=_syntax(d),
        )
    return read_wide(path, label_col=label, id_col=id_col, fmt=_syntax(d), header=d.header)


def _split(
    d: SequenceDataConfig,
    full: Any,
    read: Callable[[str], Any],
    *,
    strata: list[str] | None,
) -> tuple[Any, Any, Any, dict[str, str]]:
    """Train/val/test from the files given, else seeded hold-outs of the training file."""
    how = "stratified by label, " if strata is not None else ""
    info: dict[str, str] = {}
    if d.test_path:
        test = read(d.test_path)
        info["test"] = f"{d.test_path} ({len(test)} rows)"
    else:
        where = f"{d.path} (data.test_fraction)"
        keep, held = holdout(len(full), d.test_fraction, seed=d.seed, labels=strata, source=where)
        test, full = full.take(held), full.take(keep)
        strata = None if strata is None else [strata[i] for i in keep]
        info["test"] = (
            f"{len(held)} rows of {d.path} held out ({d.test_fraction:g}, {how}seed {d.seed})"
        )
    if d.val_path:
        val = read(d.val_path)
        info["val"] = f"{d.val_path} ({len(val)} rows)"
    else:
        fraction = d.val_fraction or 0.2
        where = f"{d.path} (data.val_fraction)"
        keep, held = holdout(len(full), fraction, seed=d.seed + 1, labels=strata, source=where)
        val, full = full.take(held), full.take(keep)
        info["val"] = f"{len(held)} training rows held out ({fraction:g}, {how}seed {d.seed + 1})"
    info["train"] = f"{d.path} ({len(full)} rows)"
    return full, val, test, info


def _as_numpy(sequences: list[Any], labels: list[Any]) -> tuple[list[np.ndarray], list[Any]]:
    xs = [np.asarray(s, dtype=np.float64).reshape(len(s), -1) for s in sequences]
    return xs, list(labels)


def _parts(sets: tuple[Any, Any, Any], meta: dict[str, Any]) -> DataParts:
    """`DataParts` of three `SequenceDataset`s (their ``(x, y)`` samples)."""
    train, val, test = ([ds[k] for k in range(len(ds))] for ds in sets)
    return DataParts(train, val, test, meta)


def _finish(experiment: Any, parts: DataParts, user: UserFiles) -> Built:
    """The family's own builder on ``parts``, plus the encoder file and the split record."""
    built = TASKS[experiment.task](experiment, parts)
    built.files[ENCODER_FILE] = json.dumps(user.encoder, ensure_ascii=False)
    built.artifact_json["encoder"] = ENCODER_FILE
    sizes = [len(parts.train), len(parts.val), len(parts.test or [])]
    record: dict[str, Any] = {"split": user.split, "sizes": sizes}
    if "frame" in user.encoder:  # numeric series: what `rnnkit predict` and serving frame by
        built.artifact_json["frame"] = record["frame"] = int(user.encoder["frame"])
    built.after_fit = lambda _: {"data": record}
    built.user_files = user
    return built


# ---- classification / regression of series and texts ----


def classifier_parts(experiment: Any) -> tuple[DataParts, UserFiles]:
    d = experiment.data
    assert d.path is not None
    kind = layout(d, d.path)
    regression = experiment.model.task == "regression"

    def read(path: str) -> Any:
        return read_examples(d, path, kind)

    full = read(d.path)
    if full.labels is None:
        raise ValueError(f"{d.path}: the training file has no labels")
    train, val, test, split = _split(d, full, read, strata=None if regression else full.labels)
    task: Literal["classification", "regression"] = "regression" if regression else "classification"
    enc: TextEncoder | SequenceEncoder
    meta: dict[str, Any]
    if kind == "text":
        if isinstance(d.frame, int):
            raise ValueError(f"{d.path}: data.frame frames numeric series; this is a text file")
        enc = TextEncoder.fit(
            train,
            level=d.level,
            lower=d.lower,
            min_freq=d.min_freq,
            max_vocab=d.max_vocab,
            task=task,
            label_col=d.label_col,
        )
        meta = {"vocab": enc.vocab}
    else:
        enc = SequenceEncoder.fit(
            train,
            task=task,
            scale=d.scale,
            label_col=d.label_col,
            frame=d.frame,
            frame_steps=d.frame_steps,
            frame_quantile=d.frame_quantile,
        )
        meta = {"n_features": enc.frame * len(enc.columns)}
    if not regression and len(enc.classes) < 2:
        raise ValueError(f"{d.path}: the training split holds one class {enc.classes}; need two")
    sets = (enc.dataset(train), enc.dataset(val), enc.dataset(test))
    parts = _parts(sets, {**meta, "classes": enc.classes})
    labels = [list(p.labels or []) for p in sets]
    if isinstance(enc, TextEncoder):
        level, lower = enc.level, enc.lower

        def words(data: LabelledTexts) -> list[str]:
            return [" ".join(tokenize(t, level=level, lower=lower)) for t in data.texts]

        reference: dict[str, Any] = {
            "train": (words(train), labels[0]),
            "val": (words(val), labels[1]),
            "test": (words(test), labels[2]),
        }
    else:  # the baselines read the series step by step (scaled, not framed)
        reference = {
            "train": _as_numpy(enc.scaled(train), labels[0]),
            "test": _as_numpy(enc.scaled(test), labels[2]),
        }
    suite = "text" if kind == "text" else task
    encoder = {**enc.to_dict(), "layout": kind}
    return parts, UserFiles(suite, split, encoder, reference)


# ---- tagging ----


def _read_conll(d: SequenceDataConfig, path: str, *, tagged: bool = True) -> TaggedSentences:
    return read_conll(path, token_field=d.token_field, tag_field=d.tag_field, tagged=tagged)


def tagger_parts(experiment: Any) -> tuple[DataParts, UserFiles]:
    d = experiment.data
    assert d.path is not None
    full = _read_conll(d, d.path)
    train, val, test, split = _split(d, full, lambda p: _read_conll(d, p), strata=None)
    enc = TagEncoder.fit(train, lower=d.lower, min_freq=d.min_freq)
    sets = (enc.dataset(train), enc.dataset(val), enc.dataset(test))
    parts = _parts(sets, {"vocab_size": len(enc.vocab), "num_tags": len(enc.tags)})

    def ids(p: Any) -> tuple[list[Any], list[Any]]:
        return [s.tolist() for s in p.sequences], [np.asarray(t).tolist() for t in p.labels]

    reference = {"train": ids(sets[0]), "test": ids(sets[2])}
    return parts, UserFiles("tagging", split, enc.to_dict(), reference)


# ---- seq2seq ----


def _read_pairs(d: SequenceDataConfig, path: str, *, labelled: bool = True) -> LabelledTexts:
    target: str | None = d.tgt_col
    if not labelled and d.tgt_col not in read_table(path, fmt=_syntax(d), header=d.header).columns:
        target = None
    return read_texts(path, text_col=d.src_col, label_col=target, fmt=_syntax(d), header=d.header)


def greedy_strings(
    model: Any, enc: PairEncoder, sources: list[np.ndarray], max_len: int
) -> list[str]:
    """Greedy decodes of id sequences, in batches, as strings."""
    import torch

    out: list[str] = []
    with torch.no_grad():
        for i in range(0, len(sources), 64):
            chunk = [torch.as_tensor(s) for s in sources[i : i + 64]]
            x = nn.utils.rnn.pad_sequence(chunk, batch_first=True, padding_value=0)
            lengths = torch.tensor([len(s) for s in chunk])
            tokens = model.decode(x, lengths=lengths, max_len=max_len).tokens
            out.extend(enc.decode(row) for row in tokens.tolist())
    return out


def seq2seq_parts(experiment: Any) -> tuple[DataParts, UserFiles]:
    d = experiment.data
    assert d.path is not None
    full = _read_pairs(d, d.path)
    train, val, test, split = _split(d, full, lambda p: _read_pairs(d, p), strata=None)
    enc = PairEncoder.fit(
        train, level=d.level, lower=d.lower, min_freq=d.min_freq, max_vocab=d.max_vocab
    )
    sets = (enc.dataset(train), enc.dataset(val), enc.dataset(test))
    parts = _parts(sets, {"src_vocab": enc.src_vocab, "tgt_vocab": enc.tgt_vocab})
    assert train.labels is not None and test.labels is not None
    reference = {
        "train_targets": [enc.normalise(t) for t in train.labels],
        "test_targets": [enc.normalise(t) for t in test.labels],
        "test_sources": [np.asarray(x) for x in sets[2].sequences],
        "max_len": max(len(t) for t in sets[2].labels or []) + 1,
    }
    return parts, UserFiles("seq2seq", split, enc.to_dict(), reference)


# ---- forecasting ----


def read_series(
    d: SequenceDataConfig, path: str, *, future_only: bool = False, freq: str | None = None
) -> Any:
    """A long-format file with the recipe's columns; ``freq`` (the training file's) is given for
    later files, which may be too short to infer it."""
    return read_long_series(
        path,
        id_col=d.id_col,
        time_col=d.time_col,
        target_col=d.target_col,
        past_covariates=d.past_covariates,
        future_covariates=d.future_covariates,
        freq=freq or d.freq,
        fmt=_syntax(d),
        need_future_only=future_only,
    )


def forecaster_parts(
    experiment: Any, *, series: LongSeries | None = None
) -> tuple[DataParts, UserFiles]:
    """``series``: already-read history to train on instead of the files (a backtest fold)."""
    d = experiment.data
    assert d.path is not None
    if d.past_covariates and experiment.model.strategy != "direct":
        raise ValueError(
            "data.past_covariates need model.strategy: direct (an autoregressive roll-out would "
            "read past covariates of future steps, which are not known)"
        )
    data = series if series is not None else read_series(d, d.path)
    later = series is None
    val = read_series(d, d.val_path, freq=data.freq) if d.val_path and later else None
    test = read_series(d, d.test_path, freq=data.freq) if d.test_path and later else None
    by_series = split_series(
        data,
        val=val,
        test=test,
        val_size=d.val_size,
        test_size=d.test_size,
        input_len=d.seq_len,
        horizon=d.horizon,
    )
    enc, windows, naive = fit_windows(
        by_series,
        columns=data.columns,
        n_past=len(data.past),
        input_len=d.seq_len,
        horizon=d.horizon,
        freq=data.freq,
    )
    season = d.season or season_of(data.freq)
    parts = DataParts(*windows, meta={"naive_scale": naive, "season": season})
    split = {
        "train": f"{d.path}: each series up to its validation part ({len(windows[0])} windows)",
        "val": (f"{d.val_path}" if val else f"last {d.val_size} steps before the test part")
        + f" of each series ({len(windows[1])} windows)",
        "test": (f"{d.test_path}" if test else f"last {d.test_size} steps of each series")
        + f" ({len(windows[2])} windows, inputs may reach back into earlier parts)",
    }
    reference = {
        "series": [enc.scalers[p.series.id].transform(p.series.values)[:, 0] for p in by_series],
        "origins": [
            list(range(max(p.val_end, d.seq_len), len(p.series) - d.horizon + 1)) for p in by_series
        ],
        "horizon": d.horizon,
        "season": season,
        "naive_scale": naive,
    }
    encoder = {
        **enc.to_dict(),
        "id_col": d.id_col,
        "time_col": d.time_col,
        "target_col": d.target_col,
        "season": season,
    }
    return parts, UserFiles("forecasting", split, encoder, reference)


PARTS: dict[str, Callable[[Any], tuple[DataParts, UserFiles]]] = {
    "classification": classifier_parts,
    "tagging": tagger_parts,
    "forecasting": forecaster_parts,
    "seq2seq": seq2seq_parts,
}


def build_user(experiment: Any, *, series: LongSeries | None = None) -> Built:
    """`Built` for ``experiment`` from its files (``data.path``); ``series``: a forecasting
    history already read (a backtest fold)."""
    if experiment.task not in PARTS:
        raise ValueError(
            f"data.path is for {sorted(PARTS)}; a language model reads data.source (a file or a "
            "folder)"
        )
    if experiment.task != "classification" and isinstance(experiment.data.frame, int):
        raise ValueError(
            f"data.frame frames numeric series for classification/regression, not for "
            f"{experiment.task}; remove it"
        )
    if series is not None:
        parts, user = forecaster_parts(experiment, series=series)
    else:
        parts, user = PARTS[experiment.task](experiment)
    return _finish(experiment, parts, user)
