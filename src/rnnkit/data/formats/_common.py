"""What every user-file reader shares: decoding, delimited tables with row numbers, cell checks.

A user's file enters here once. Every problem becomes one `ValueError` line that names the file,
the row (the line in the file; the header is row 1) and the column, so that no pandas, csv or json
exception reaches the user. A UTF-8 byte-order mark is dropped; other encodings are refused with
the position of the first bad byte.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from rnnkit.data.text import read_text

StrPath = str | PathLike[str]
BOM = "\ufeff"
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


def read_user_text(path: StrPath) -> str:
    """The whole file as text: it must exist, hold something, and be UTF-8 (a BOM is dropped)."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{p}: is a folder, not a file")
    text = read_text(p)  # missing, empty and non-UTF-8 files raise with line and column
    text = text.removeprefix(BOM)
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ValueError(f"{p} row {line}: holds a NUL byte; this is a binary file, not text")
    if not text.strip():
        raise ValueError(f"{p}: file holds only blank space")
    return text


@dataclass
class Table:
    """Rows of string cells under a header, with each row's line in the file for messages."""

    path: str
    columns: list[str]
    rows: list[list[str]]
    lines: list[int]

    def where(self, i: int, column: str | None = None) -> str:
        """``"<path> row <line>, column '<name>'"`` for data row ``i``."""
        at = f"{self.path} row {self.lines[i]}"
        return at if column is None else f"{at}, column {column!r}"

    def require(self, *names: str) -> None:
        """Every named column is in the header, or an error listing the header."""
        for name in names:
            if name not in self.columns:
                raise ValueError(
                    f"{self.path} row 1, column {name!r}: no such column; the file has "
                    f"{self.columns}"
                )

    def column(self, name: str) -> list[str]:
        """The cells of ``name`` (checked to exist)."""
        self.require(name)
        j = self.columns.index(name)
        return [row[j] for row in self.rows]


def table_format(path: StrPath, given: str | None = None) -> str:
    """``csv``, ``tsv`` or ``jsonl``: ``given``, else from the file's extension."""
    if given:
        if given not in ("csv", "tsv", "jsonl"):
            raise ValueError(f"{path}: format {given!r} is not csv, tsv or jsonl")
        return given
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(
            f"{path}: cannot tell the format from the extension {suffix!r}; use .csv, .tsv or "
            ".jsonl, or set data.format"
        )
    return TABLE_SUFFIXES[suffix]


def read_table(path: StrPath, *, fmt: str | None = None, header: bool = True) -> Table:
    """A CSV, TSV or JSON-lines file as a `Table`; ragged rows and syntax errors raise.

    ``header=False``: a delimited file without a header row; its columns are named ``"0"``,
    ``"1"``, ... by position (a Tatoeba-style ``source<TAB>target`` file)."""
    kind = table_format(path, fmt)
    text = read_user_text(path)
    if kind == "jsonl":
        return _read_jsonl(str(path), text)
    return read_delimited(str(path), text, "," if kind == "csv" else "\t", header=header)


def read_delimited(path: str, text: str, delimiter: str = ",", *, header: bool = True) -> Table:
    """Delimited ``text`` (read from ``path``) as a `Table`: rows of blank cells are skipped,
    repeated column names, ragged rows, syntax errors and a file without data rows raise. The one
    CSV/TSV reader of the package (`rnnkit.data.load_csv` reads through it too)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if columns is None and not header:
                columns = [str(j) for j in range(len(row))]
            elif columns is None:
                columns = [c.strip() for c in row]
                dupes = sorted({c for c in columns if columns.count(c) > 1})
                if dupes:
                    raise ValueError(f"{path} row {reader.line_num}: repeated column names {dupes}")
                continue
            if len(row) != len(columns):
                col = min(len(row), len(columns)) + 1
                what = "the header has" if header else "the first row has"
                raise ValueError(
                    f"{path} row {reader.line_num}, column {col}: {len(row)} fields but {what} "
                    f"{len(columns)} (ragged row)"
                )
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as err:
        kind = "CSV" if delimiter == "," else "TSV" if delimiter == "\t" else "delimited text"
        raise ValueError(f"{path} row {reader.line_num}: not valid {kind} ({err})") from None
    if columns is None:
        raise ValueError(f"{path}: no header row (the file holds only blank lines)")
    if not rows:
        raise ValueError(f"{path}: the header has no data rows under it")
    return Table(path, columns, rows, lines)


def _cell(value: Any, path: str, line: int, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(
        f"{path} row {line}, column {key!r}: a {type(value).__name__} is not a string or number"
    )


def _read_jsonl(path: str, text: str) -> Table:
    columns: list[str] = []
    records: list[tuple[int, dict[str, Any]]] = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as err:
            msg = err.msg if isinstance(err, json.JSONDecodeError) else "nested too deeply"
            raise ValueError(f"{path} row {line}: not valid JSON ({msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{path} row {line}: expected a JSON object, got {type(obj).__name__}")
        for key in obj:
            if key not in columns:
                columns.append(key)
        records.append((line, obj))
    if not records:
        raise ValueError(f"{path}: holds no JSON objects")
    rows, lines = [], []
    for line, obj in records:
        rows.append([_cell(obj.get(k), path, line, k) if k in obj else "" for k in columns])
        lines.append(line)
    return Table(path, columns, rows, lines)


def is_missing(cell: str) -> bool:
    """Empty, ``NA``, ``nan``, ``null``... cells."""
    return cell.strip().lower() in MISSING


def parse_number(cell: str, where: str, *, allow_missing: bool = False) -> float:
    """A finite float from ``cell``, or a `ValueError` at ``where`` saying what is wrong."""
    if is_missing(cell):
        if allow_missing:
            return math.nan
        raise ValueError(f"{where}: value is missing")
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"{where}: {cell.strip()[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {cell.strip()[:40]!r} is not a finite number")
    return value


def parse_label(cell: str, where: str) -> str:
    """A label cell, stripped; a missing label is an error."""
    label = cell.strip()
    if not label:
        raise ValueError(f"{where}: label is missing")
    return label
