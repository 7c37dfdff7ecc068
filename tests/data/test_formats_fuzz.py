"""Fuzz every user-file reader: random bytes and random rows end in our one-line `ValueError`
(naming the file) or a result, never in a pandas, csv, json, numpy or torch exception."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    max_examples=int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "60")),
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


@FUZZ
@given(name=st.sampled_from(sorted(READERS)), data=st.binary(max_size=300))
def test_random_bytes_give_our_error(name: str, data: bytes) -> None:
    _only_our_errors(name, data)


@FUZZ
@given(
    name=st.sampled_from(sorted(READERS)),
    header=HEADERS,
    lines=LINES,
    sep=st.sampled_from([",", "\t", " ", ":"]),
)
def test_random_rows_give_our_error(
    name: str, header: str, lines: list[list[str]], sep: str
) -> None:
    text = header + "\n" + "\n".join(sep.join(cells) for cells in lines) + "\n"
    _only_our_errors(name, text.encode("utf-8"))
