"""CSV rows with their line numbers, checked for syntax and ragged rows (shared by series and
text)."""

from __future__ import annotations

import csv
import io
from os import PathLike

from rnnkit.data.text import read_text


def read_rows(path: str | PathLike[str]) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows and each row's line number; ragged rows and CSV syntax errors raise."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if header is None:
                header = [c.strip() for c in row]
                dupes = sorted({c for c in header if header.count(c) > 1})
                if dupes:
                    raise ValueError(f"{path} row {reader.line_num}: repeated column names {dupes}")
                continue
            if len(row) != len(header):
                col = min(len(row), len(header)) + 1
                raise ValueError(
                    f"{path} row {reader.line_num}, column {col}: {len(row)} fields but the header "
                    f"has {len(header)}"
                )
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as err:
        raise ValueError(f"{path} row {reader.line_num}: not valid CSV ({err})") from None
    if header is None:
        raise ValueError(f"{path}: no header row (the file holds only blank lines)")
    return header, rows, lines
