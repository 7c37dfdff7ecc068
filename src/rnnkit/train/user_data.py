"""Training from the user's own files (``data.path``): read, split, fit encoders, set baselines.

One builder per task family returns the same `Built` the registry builders return, plus what only
user data has: the encoder (classes, scalers, vocabularies; fitted on the training split only)
saved as ``artifact/encoder.json`` for `rnnkit predict --input`, a record of how each split was
made, and the baseline suite scored on the test split. Splits: the user's own validation/test files
when given; otherwise a seeded hold-out (``data.seed``), stratified by label for classification,
the last steps of each series for forecasting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
from rnnkit.evaluate import reference as ref
from rnnkit.models import (
    Forecaster,
    ForecasterConfig,
    Seq2Seq,
    Seq2SeqConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
    SequenceTagger,
    SequenceTaggerConfig,
)
from rnnkit.train.config import SequenceDataConfig
from rnnkit.train.fit import Built
from rnnkit.train.specs import spec_dict

ENCODER_FILE = "encoder.json"
Reference = Callable[[nn.Module], tuple[dict[str, float], ref.Scores]]


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
    info: dict[str, str] = {"train": f"{d.path} ({len(full)} rows, less what is held out)"}
    if d.test_path:
        test = read(d.test_path)
        info["test"] = f"{d.test_path} ({len(test)} rows)"
    else:
        keep, held = holdout(len(full), d.test_fraction, seed=d.seed, labels=strata)
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
        keep, held = holdout(len(full), fraction, seed=d.seed + 1, labels=strata)
        val, full = full.take(held), full.take(keep)
        info["val"] = f"{len(held)} training rows held out ({fraction:g}, {how}seed {d.seed + 1})"
    info["train"] = f"{d.path} ({len(full)} rows)"
    return full, val, test, info


def _as_numpy(data: Any) -> tuple[list[np.ndarray], list[Any]]:
    xs = [np.asarray(s, dtype=np.float64).reshape(len(s), -1) for s in data.sequences]
    return xs, list(data.labels)


def _built(
    module: Any,
    parts: tuple[Any, Any, Any],
    config: Any,
    experiment: Any,
    *,
    collate_fn: Callable[..., Any],
    encoder: dict[str, Any],
    split: dict[str, str],
    reference: Reference,
    kind: str,
    extra_json: dict[str, Any] | None = None,
    baselines: dict[str, float] | None = None,
) -> Built:
    from rnnkit.train.seq_tasks import SequenceData, _batches

    d = experiment.data
    return Built(
        module,
        SequenceData(parts, batch_size=d.batch_size, collate_fn=collate_fn),
        config,
        _batches(len(parts[0]), d.batch_size),
        files={ENCODER_FILE: json.dumps(encoder, ensure_ascii=False)},
        artifact_json={"encoder": ENCODER_FILE, **(extra_json or {})},
        baselines=baselines or {},
        after_fit=lambda _: {"data": {"split": split, "sizes": [len(p) for p in parts]}},
        reference=reference if experiment.evaluate.baselines else None,
        reference_kind=kind,
        split=split,
    )


# ---- classification / regression of series and texts ----


def build_classifier(experiment: Any) -> Built:
    from rnnkit.data import collate
    from rnnkit.train.seq_tasks import ClassificationTask, _common

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
    if kind == "text":
        enc = TextEncoder.fit(
            train,
            level=d.level,
            lower=d.lower,
            min_freq=d.min_freq,
            max_vocab=d.max_vocab,
            task=task,
            label_col=d.label_col,
        )
        sizes: dict[str, Any] = {"vocab_size": len(enc.vocab)}
    else:
        enc = SequenceEncoder.fit(train, task=task, scale=d.scale, label_col=d.label_col)
        sizes = {"input_size": len(enc.columns)}
    if not regression and len(enc.classes) < 2:
        raise ValueError(f"{d.path}: the training split holds one class {enc.classes}; need two")
    parts = (enc.dataset(train), enc.dataset(val), enc.dataset(test))
    outputs = 1 if regression else len(enc.classes)
    config = SequenceClassifierConfig(num_outputs=outputs, **sizes, **spec_dict(experiment.model))
    module = ClassificationTask(SequenceClassifier(config), **_common(experiment))

    def reference(model: nn.Module) -> tuple[dict[str, float], ref.Scores]:
        if isinstance(enc, TextEncoder):

            def words(data: LabelledTexts) -> list[str]:
                return [" ".join(tokenize(t, level=enc.level, lower=enc.lower)) for t in data.texts]

            labels = [list(p.labels or []) for p in parts]
            return {}, ref.text_baselines(
                (words(train), labels[0]), (words(val), labels[1]), (words(test), labels[2])
            )
        return {}, ref.series_baselines(
            _as_numpy(parts[0]),
            _as_numpy(parts[2]),
            regression=regression,
            dtw_max_cells=experiment.evaluate.dtw_max_cells,
        )

    return _built(
        module,
        parts,
        config,
        experiment,
        collate_fn=collate,
        encoder={**enc.to_dict(), "layout": kind},
        split=split,
        reference=reference,
        kind="text" if kind == "text" else task,
        extra_json={"classes": enc.classes},
    )


# ---- tagging ----


def _read_conll(d: SequenceDataConfig, path: str, *, tagged: bool = True) -> TaggedSentences:
    return read_conll(path, token_field=d.token_field, tag_field=d.tag_field, tagged=tagged)


def build_tagger(experiment: Any) -> Built:
    from rnnkit.data import collate
    from rnnkit.train.seq_tasks import TaggingTask, _common

    d = experiment.data
    assert d.path is not None
    full = _read_conll(d, d.path)
    train, val, test, split = _split(d, full, lambda p: _read_conll(d, p), strata=None)
    enc = TagEncoder.fit(train, lower=d.lower, min_freq=d.min_freq)
    parts = (enc.dataset(train), enc.dataset(val), enc.dataset(test))
    config = SequenceTaggerConfig(
        num_tags=len(enc.tags), vocab_size=len(enc.vocab), **spec_dict(experiment.model)
    )
    module = TaggingTask(SequenceTagger(config), **_common(experiment))

    def reference(model: nn.Module) -> tuple[dict[str, float], ref.Scores]:
        def ids(p: Any) -> tuple[list[Any], list[Any]]:
            return [s.tolist() for s in p.sequences], [np.asarray(t).tolist() for t in p.labels]

        return {}, ref.tagging_baselines(ids(parts[0]), ids(parts[2]))

    return _built(
        module,
        parts,
        config,
        experiment,
        collate_fn=collate,
        encoder=enc.to_dict(),
        split=split,
        reference=reference,
        kind="tagging",
        extra_json={"tags": enc.tags},
    )


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


def build_seq2seq(experiment: Any) -> Built:
    from rnnkit.train.seq_tasks import BOS, EOS, PAD, Seq2SeqTask, _collate_pairs, _common

    d = experiment.data
    assert d.path is not None
    full = _read_pairs(d, d.path)
    train, val, test, split = _split(d, full, lambda p: _read_pairs(d, p), strata=None)
    enc = PairEncoder.fit(
        train, level=d.level, lower=d.lower, min_freq=d.min_freq, max_vocab=d.max_vocab
    )
    parts = (enc.dataset(train), enc.dataset(val), enc.dataset(test))
    spec = spec_dict(experiment.model, drop=("teacher_forcing",))
    config = Seq2SeqConfig(
        src_vocab_size=len(enc.src_vocab),
        tgt_vocab_size=len(enc.tgt_vocab),
        pad_id=PAD,
        bos_id=BOS,
        eos_id=EOS,
        **spec,
    )
    module = Seq2SeqTask(
        Seq2Seq(config), teacher_forcing=experiment.model.teacher_forcing, **_common(experiment)
    )

    def reference(model: nn.Module) -> tuple[dict[str, float], ref.Scores]:
        assert train.labels is not None and test.labels is not None
        gold = [enc.normalise(t) for t in test.labels]
        longest = max(len(t) for t in parts[2].labels or []) + 1
        sources = [np.asarray(s) for s in parts[2].sequences]
        mine = ref.text_scores(greedy_strings(model, enc, sources, longest), gold)
        return mine, ref.seq2seq_baselines([enc.normalise(t) for t in train.labels], gold)

    return _built(
        module,
        parts,
        config,
        experiment,
        collate_fn=_collate_pairs,
        encoder=enc.to_dict(),
        split=split,
        reference=reference,
        kind="seq2seq",
    )


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


def build_forecaster(experiment: Any, *, series: LongSeries | None = None) -> Built:
    """``series``: already-read history to train on instead of the files (a backtest fold)."""
    from rnnkit.train.seq_tasks import ForecastTask, _collate_windows, _common

    d = experiment.data
    assert d.path is not None
    if d.past_covariates and experiment.model.strategy != "direct":
        raise ValueError(
            "data.past_covariates need model.strategy: direct (an autoregressive roll-out would "
            "read past covariates of future steps, which are not known)"
        )
    data = series if series is not None else read_series(d, d.path)
    val = read_series(d, d.val_path, freq=data.freq) if d.val_path and series is None else None
    test = read_series(d, d.test_path, freq=data.freq) if d.test_path and series is None else None
    parts_by_series = split_series(
        data,
        val=val,
        test=test,
        val_size=d.val_size,
        test_size=d.test_size,
        input_len=d.seq_len,
        horizon=d.horizon,
    )
    enc, windows, naive = fit_windows(
        parts_by_series,
        columns=data.columns,
        n_past=len(data.past),
        input_len=d.seq_len,
        horizon=d.horizon,
        freq=data.freq,
    )
    from rnnkit.train.seq_tasks import _Samples

    parts = (_Samples(windows[0]), _Samples(windows[1]), _Samples(windows[2]))
    config = ForecasterConfig(
        target_size=1,
        covariate_size=enc.n_covariates,
        horizon=d.horizon,
        **spec_dict(experiment.model),
    )
    module = ForecastTask(Forecaster(config), naive_scale=naive, **_common(experiment))
    season = d.season or season_of(data.freq)
    split = {
        "train": f"{d.path}: each series up to its validation part ({len(windows[0])} windows)",
        "val": (f"{d.val_path}" if d.val_path else f"last {d.val_size} steps before the test part")
        + f" of each series ({len(windows[1])} windows)",
        "test": (f"{d.test_path}" if d.test_path else f"last {d.test_size} steps of each series")
        + f" ({len(windows[2])} windows, inputs may reach back into earlier parts)",
    }

    def reference(model: nn.Module) -> tuple[dict[str, float], ref.Scores]:
        series, origins = [], []
        for p in parts_by_series:
            scaled = enc.scalers[p.series.id].transform(p.series.values)[:, 0]
            series.append(scaled)
            origins.append(list(range(max(p.val_end, d.seq_len), len(p.series) - d.horizon + 1)))
        return {}, ref.forecast_baselines(
            series, origins, horizon=d.horizon, season=season, naive_scale=naive
        )

    return _built(
        module,
        parts,
        config,
        experiment,
        collate_fn=_collate_windows,
        encoder={
            **enc.to_dict(),
            "id_col": d.id_col,
            "time_col": d.time_col,
            "target_col": d.target_col,
            "season": season,
        },
        split=split,
        reference=reference,
        kind="forecasting",
        baselines={"naive_scale": naive},
    )


BUILDERS: dict[str, Callable[[Any], Built]] = {
    "classification": build_classifier,
    "tagging": build_tagger,
    "forecasting": build_forecaster,
    "seq2seq": build_seq2seq,
}


def judge(built: Built, metrics: dict[str, float], model: nn.Module) -> dict[str, Any]:
    """The baselines and the verdict of a run whose test metrics (``test_*``) are in
    ``metrics``; {} when the run has no baseline suite."""
    if built.reference is None:
        return {}
    extra, baselines = built.reference(model)
    mine = {k.removeprefix("test_"): v for k, v in metrics.items() if k.startswith("test_")}
    mine.update(extra)
    return {
        "test_extra": extra,
        "baselines": baselines,
        "verdict": ref.verdict(built.reference_kind, mine, baselines),
    }
