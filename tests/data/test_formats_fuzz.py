"""Fuzz every user-file reader, and the whole user-file path of `rnnkit fit` up to the training
samples (read, split, encode) for each task: random bytes and random rows end in our one-line
`ValueError` (naming the file) or a result, never in a pandas, csv, json, numpy or torch
exception. ``RNNKIT_FUZZ_EXAMPLES`` sets the examples per reader (15)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.data.formats import (
    read_conll,
    read_long,
    read_long_series,
    read_texts,
    read_ts,
    read_wide,
)

FUZZ = settings(
    max_examples=int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "15")),  # per reader
    deadline=None,
    suppress_health_check=list(HealthCheck),
)

READERS: dict[str, tuple[str, Callable[[Path], Any]]] = {
    "series_csv": ("s.csv", read_long_series),
    "series_tsv_numeric": ("s.tsv", lambda p: read_long_series(p, id_col=None, freq="1")),
    "series_parquet": ("s.parquet", read_long_series),
    "ts": ("t.ts", read_ts),
    "wide": ("w.csv", read_wide),
    "long": ("l.csv", read_long),
    "texts_csv": ("x.csv", read_texts),
    "texts_jsonl": ("x.jsonl", read_texts),
    "pairs_tsv": ("p.tsv", lambda p: read_texts(p, text_col="0", label_col="1", header=False)),
    "conll": ("c.conll", read_conll),
}


# ---- the other readers of a user's file, and the whole path from file to training samples ----


def _load_csv(path: Path) -> Any:
    from rnnkit.data import load_csv

    return load_csv(path, target="y", time="ds")


def _labelled_csv(path: Path) -> Any:
    from rnnkit.data import read_labelled_csv

    return read_labelled_csv(path, text_column="text", label_column="label")


def _lm_text(path: Path) -> Any:
    from rnnkit.data.lm_stream import load_corpus
    from rnnkit.train.config import TextDataConfig

    return load_corpus(TextDataConfig(source=str(path)))


def _parts(task: str, **data: Any) -> Callable[[Path], Any]:
    """The user-file path of ``rnnkit fit`` up to the samples (read, split, encode), no training."""

    def run(path: Path) -> Any:
        from rnnkit.train import specs
        from rnnkit.train.config import SequenceDataConfig
        from rnnkit.train.user_data import PARTS

        kinds = {
            "classification": specs.ClassificationExperiment,
            "tagging": specs.TaggingExperiment,
            "seq2seq": specs.Seq2SeqExperiment,
            "forecasting": specs.ForecastingExperiment,
        }
        experiment = kinds[task](data=SequenceDataConfig(path=str(path), **data))
        return PARTS[task](experiment)

    return run


READERS.update(
    {
        "load_csv": ("s.csv", _load_csv),
        "labelled_csv": ("l.csv", _labelled_csv),
        "labelled_csv_bz2": ("l.csv.bz2", _labelled_csv),
        "lm_text": ("corpus.txt", _lm_text),
        "fit_ts": ("t.ts", _parts("classification")),
        "fit_wide": ("w.csv", _parts("classification", format="wide")),
        "fit_long": ("l.csv", _parts("classification", id_col="id", time_col="time")),
        "fit_text": ("x.csv", _parts("classification", text_col="text")),
        "fit_conll": ("c.conll", _parts("tagging")),
        "fit_pairs": ("p.tsv", _parts("seq2seq", src_col="0", tgt_col="1", header=False)),
        "fit_series": ("s.csv", _parts("forecasting", seq_len=2, horizon=1)),
    }
)


def _only_our_errors(name: str, data: bytes) -> None:
    suffix, reader = READERS[name]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / suffix
        path.write_bytes(data)
        try:
            reader(path)
        except ValueError as err:
            assert type(err) is ValueError, f"{type(err).__name__} escaped: {err}"
            message = str(err)
            assert "\n" not in message, message
            assert str(path) in message or message.startswith("data."), message


# Cells drawn from what breaks parsers: numbers, dates, blanks, quotes, separators, NaN, BOMs.
CELLS = st.sampled_from(
    [
        "1", "2.5", "-3", "1e400", "nan", "inf", "", " ", "NA", "?", "x", '"', '"a,b"', ",", ":",
        "\t", "2020-01-01", "2020-01-02", "2020-13-45", "0", "A", "B", "\ufeff", "1,2,3", "{", "[]",
        '{"text": "a", "label": 1}', "-DOCSTART-", "#", "@data", "@classLabel true 1 2",
        "@univariate true", "1,2:3", "1,2,3:1",
    ]
)  # fmt: skip
LINES = st.lists(st.lists(CELLS, min_size=0, max_size=5), min_size=0, max_size=8)
HEADERS = st.sampled_from(
    [
        "unique_id,ds,y",
        "id,time,f1,label",
        "label,t0,t1,t2",
        "text,label",
        "ds\ty",
        "@classLabel true 1 2\n@data",
        "",
    ]
)


@pytest.mark.parametrize("name", sorted(READERS))
@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_give_our_error(name: str, data: bytes) -> None:
    _only_our_errors(name, data)


@pytest.mark.parametrize("name", sorted(READERS))
@FUZZ
@given(header=HEADERS, lines=LINES, sep=st.sampled_from([",", "\t", " ", ":"]))
def test_random_rows_give_our_error(
    name: str, header: str, lines: list[list[str]], sep: str
) -> None:
    text = header + "\n" + "\n".join(sep.join(cells) for cells in lines) + "\n"
    _only_our_errors(name, text.encode("utf-8"))
