"""Tables a user brings for classification, text, tagging and seq2seq.

- Sequence classification / regression: *wide* CSV (one row a series, the value columns are the
  steps; trailing empty cells make a row shorter) or *long* CSV (one row a step: id, time step,
  feature columns, label).
- Text classification: CSV, TSV or JSON lines with a text column and a label column.
- Seq2seq: TSV, CSV or JSON lines of source/target pairs.
- Tagging: CoNLL-style files, a token and its tag per line, a blank line between sentences.

Readers return raw strings and float arrays; labels, vocabularies and scalers are fitted later, on
the training split only (`rnnkit.data.formats.encode`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rnnkit.data.formats._common import (
    StrPath,
    Table,
    is_missing,
    parse_label,
    parse_number,
    read_table,
    read_user_text,
)


@dataclass
class LabelledSequences:
    """Numeric series with their ids and (string) labels; ``labels`` None for unlabelled input."""

    path: str
    ids: list[str]
    sequences: list[np.ndarray]  # each (T_n, C) float64
    labels: list[str] | None
    columns: list[str]  # the C feature names
    rows: list[int]  # the file row where each series starts
    classes: list[str] | None = None  # classes a header declares (.ts), else None

    def __len__(self) -> int:
        return len(self.sequences)

    def take(self, idx: Sequence[int] | np.ndarray) -> Any:
        """The rows ``idx`` (a split)."""
        return replace(
            self,
            ids=_pick(self.ids, idx),
            sequences=_pick(self.sequences, idx),
            labels=_pick(self.labels, idx),
            rows=_pick(self.rows, idx),
        )


@dataclass
class LabelledTexts:
    """Strings (texts, or source/target pairs) with ids and the file row of each."""

    path: str
    ids: list[str]
    texts: list[str]
    labels: list[str] | None  # labels, or the seq2seq targets
    rows: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, idx: Sequence[int] | np.ndarray) -> Any:
        """The rows ``idx`` (a split)."""
        return replace(
            self,
            ids=_pick(self.ids, idx),
            texts=_pick(self.texts, idx),
            labels=_pick(self.labels, idx),
            rows=_pick(self.rows, idx),
        )


@dataclass
class TaggedSentences:
    """Token sentences with one tag per token (``tags`` None for unlabelled input)."""

    path: str
    tokens: list[list[str]]
    tags: list[list[str]] | None
    rows: list[int]  # the file row where each sentence starts
    # The file row of each token: comment, -DOCSTART- and multi-word lines may sit between them.
    token_rows: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    def take(self, idx: Sequence[int] | np.ndarray) -> Any:
        """The rows ``idx`` (a split)."""
        return replace(
            self,
            tokens=_pick(self.tokens, idx),
            tags=_pick(self.tags, idx),
            rows=_pick(self.rows, idx),
            token_rows=_pick(self.token_rows, idx),
        )

    def row_of(self, sentence: int, token: int) -> int:
        """The file row of token ``token`` of sentence ``sentence`` (for messages)."""
        if self.token_rows is not None:
            return self.token_rows[sentence][token]
        return self.rows[sentence] + token


def _pick(values: list[Any] | None, idx: Sequence[int] | np.ndarray) -> Any:
    return None if values is None else [values[int(i)] for i in idx]


def _ids(table: Table, id_col: str | None) -> list[str]:
    if id_col and id_col in table.columns:
        return [c.strip() for c in table.column(id_col)]
    return [str(line) for line in table.lines]  # the file row identifies an unnamed row


def read_wide(
    path: StrPath,
    *,
    label_col: str | None = "label",
    id_col: str | None = None,
    fmt: str | None = None,
    header: bool = True,
) -> LabelledSequences:
    """One series per row: every column but the label and id columns is one step (univariate).
    ``label_col`` None reads unlabelled rows (for prediction)."""
    table = read_table(path, fmt=fmt, header=header)
    labelled = label_col is not None
    if label_col is not None:
        table.require(label_col)
    if id_col:
        table.require(id_col)
    steps = [j for j, c in enumerate(table.columns) if c not in (label_col, id_col)]
    if not steps:
        raise ValueError(f"{table.path} row 1: no value columns besides {label_col!r}")
    seqs, labels = [], []
    for i, row in enumerate(table.rows):
        cells = [row[j] for j in steps]
        n = len(cells)
        while n and is_missing(cells[n - 1]):
            n -= 1  # trailing empty cells: a shorter series
        if n == 0:
            raise ValueError(f"{table.where(i)}: the row has no values")
        seq = [parse_number(cells[k], table.where(i, table.columns[steps[k]])) for k in range(n)]
        seqs.append(np.asarray(seq, dtype=np.float64)[:, None])
        if labelled:
            assert label_col is not None
            labels.append(
                parse_label(row[table.columns.index(label_col)], table.where(i, label_col))
            )
    return LabelledSequences(
        table.path, _ids(table, id_col), seqs, labels if labelled else None, ["value"], table.lines
    )


def read_long(
    path: StrPath,
    *,
    id_col: str = "id",
    time_col: str = "time",
    label_col: str | None = "label",
    features: Sequence[str] = (),
    fmt: str | None = None,
) -> LabelledSequences:
    """One step per row, grouped by ``id_col`` and ordered by ``time_col`` (which must increase
    within a series); ``features`` default to every other column. A series' label must not
    change from row to row."""
    table = read_table(path, fmt=fmt)
    table.require(id_col, time_col)
    labelled = label_col is not None
    if label_col is not None:
        table.require(label_col)
    skip = {id_col, time_col, label_col}
    names = list(features) or [c for c in table.columns if c not in skip]
    table.require(*names)
    if not names:
        raise ValueError(f"{table.path} row 1: no feature columns besides id, time and label")
    cols = [table.columns.index(c) for c in names]
    t_j = table.columns.index(time_col)
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(table.column(id_col)):
        if not key.strip():
            raise ValueError(f"{table.where(i, id_col)}: series id is missing")
        groups.setdefault(key.strip(), []).append(i)
    seqs, labels, rows = [], [], []
    for key, members in groups.items():
        times = [parse_number(table.rows[i][t_j], table.where(i, time_col)) for i in members]
        for k in range(1, len(times)):
            if times[k] <= times[k - 1]:
                what = "repeats" if times[k] == times[k - 1] else "comes before"
                raise ValueError(
                    f"{table.where(members[k], time_col)}: time {table.rows[members[k]][t_j]!r} "
                    f"{what} the time of row {table.lines[members[k - 1]]} in series {key!r}; "
                    "sort each series by time"
                )
        block = np.array(
            [
                [
                    parse_number(table.rows[i][j], table.where(i, n))
                    for j, n in zip(cols, names, strict=True)
                ]
                for i in members
            ],
            dtype=np.float64,
        )
        seqs.append(block.reshape(len(members), len(names)))
        rows.append(table.lines[members[0]])
        if labelled:
            assert label_col is not None
            j = table.columns.index(label_col)
            first = parse_label(table.rows[members[0]][j], table.where(members[0], label_col))
            for i in members[1:]:
                if parse_label(table.rows[i][j], table.where(i, label_col)) != first:
                    raise ValueError(
                        f"{table.where(i, label_col)}: label {table.rows[i][j].strip()!r} of "
                        f"series {key!r} differs from {first!r} on row {rows[-1]}"
                    )
            labels.append(first)
    return LabelledSequences(
        table.path, list(groups), seqs, labels if labelled else None, names, rows
    )


def read_texts(
    path: StrPath,
    *,
    text_col: str = "text",
    label_col: str | None = "label",
    id_col: str | None = None,
    fmt: str | None = None,
    header: bool = True,
) -> LabelledTexts:
    """Texts with labels (text classification) or targets (seq2seq, ``label_col`` = the target
    column); ``label_col`` None reads unlabelled texts, for prediction."""
    table = read_table(path, fmt=fmt, header=header)
    texts = table.column(text_col)
    for i, t in enumerate(texts):
        if not t.strip():
            raise ValueError(f"{table.where(i, text_col)}: text is missing")
    labels = None
    if label_col is not None:
        labels = [
            parse_label(c, table.where(i, label_col)) for i, c in enumerate(table.column(label_col))
        ]
    if id_col:
        table.require(id_col)
    return LabelledTexts(table.path, _ids(table, id_col), texts, labels, table.lines)


def read_conll(
    path: StrPath, *, token_field: int = 0, tag_field: int = -1, tagged: bool = True
) -> TaggedSentences:
    """CoNLL-style: whitespace-separated fields per token line, a blank line ends a sentence.
    ``#`` comment lines, ``-DOCSTART-`` lines and CoNLL-U multi-word ranges (``1-2``) are
    skipped. ``tagged=False`` reads one token per line (the token field only) for prediction."""
    text = read_user_text(path)
    sentences: list[list[str]] = []
    tags: list[list[str]] = []
    rows: list[list[int]] = []
    tok: list[str] = []
    tag: list[str] = []
    at: list[int] = []
    if tag_field >= 0:
        need = max(token_field, tag_field) + 1
    else:  # counted from the end: the tag must still be a field after the token
        need = max(token_field + 2, -tag_field)
    if not tagged:
        need = token_field + 1
    width = None
    # Lines as the file counts them (\n, \r\n or \r), not str.splitlines, which also breaks at
    # \x0c, \x1c-\x1e, \x85, \u2028 and \u2029 and would shift every later row number.
    for n, raw in enumerate([*re.split(r"\r\n|\r|\n", text), ""], start=1):
        line = raw.strip()
        if not line:
            if tok:
                sentences.append(tok)
                tags.append(tag)
                rows.append(at)
                tok, tag, at = [], [], []
            continue
        if line.startswith("#") or line.startswith("-DOCSTART-"):
            continue
        fields = line.split()
        if "-" in fields[0][1:] and fields[0].split("-")[0].isdigit():
            continue
        if len(fields) < need:
            raise ValueError(
                f"{path} row {n}, column {len(fields) + 1}: {len(fields)} fields but the token "
                f"and tag need {need}"
            )
        if tagged and width is not None and len(fields) != width:
            raise ValueError(
                f"{path} row {n}: {len(fields)} fields but earlier token lines have {width} "
                "(ragged rows)"
            )
        width = len(fields)
        at.append(n)
        tok.append(fields[token_field])
        if tagged:
            tag.append(fields[tag_field])
    if not sentences:
        raise ValueError(f"{path}: no token lines")
    starts = [r[0] for r in rows]
    return TaggedSentences(str(path), sentences, tags if tagged else None, starts, rows)
