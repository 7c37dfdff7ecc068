"""sktime / UCR / UEA ``.ts`` files: labelled series, equal or variable length, one or more
dimensions.

The header (``@problemName``, ``@univariate``, ``@dimensions``, ``@equalLength``,
``@seriesLength``, ``@classLabel true A B``, ``@targetLabel``, ``@missing``) is read and then
held to: a row that contradicts it is an error naming the row and the header line it breaks. After
``@data`` each row is ``d1:d2:...:label`` with comma-separated values per dimension. Time-stamped
rows (``@timeStamps true``) and missing values (``?``) are refused with that reason.
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.data.formats._common import StrPath, read_user_text
from rnnkit.data.formats.tables import LabelledSequences

_FLAGS = ("univariate", "equallength", "timestamps", "missing", "classlabel", "targetlabel")


def read_ts(path: StrPath) -> LabelledSequences:
    """Read a ``.ts`` file; ``labels`` is None where the header declares none."""
    text = read_user_text(path)
    header: dict[str, tuple[int, list[str]]] = {}
    data_line = 0
    lines = text.splitlines()
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise ValueError(f"{path} row {n}: {line[:30]!r} before @data is not a header line")
        words = line[1:].split()
        if not words:
            raise ValueError(f"{path} row {n}: '@' with no header name (e.g. @problemName, @data)")
        key, rest = words[0].lower(), words[1:]
        if key == "data":
            data_line = n
            break
        header[key] = (n, rest)
    if not data_line:
        raise ValueError(f"{path}: no @data line; a .ts file needs a header ending in @data")
    h = _Header(str(path), header)
    if h.flag("timestamps"):
        raise ValueError(f"{path} row {h.line('timestamps')}: @timeStamps true is not supported")
    has_label = h.flag("classlabel") or h.flag("targetlabel")
    ids: list[str] = []
    seqs: list[np.ndarray] = []
    labels: list[str | None] = []
    rows: list[int] = []
    for n in range(data_line + 1, len(lines) + 1):
        line = lines[n - 1].strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        label = None
        if has_label:
            if len(fields) < 2:
                said = h.says("classlabel", "targetlabel")
                raise ValueError(f"{path} row {n}: no ':label' after the values, but {said}")
            label = fields.pop().strip()
            if not label:
                raise ValueError(f"{path} row {n}, column {len(fields) + 1}: label is missing")
        dims = [_values(path, n, j, f, h) for j, f in enumerate(fields)]
        seq = _stack(path, n, dims)
        h.check_row(n, seq, label)
        ids.append(str(len(ids)))
        seqs.append(seq)
        labels.append(label)
        rows.append(n)
    if not seqs:
        raise ValueError(f"{path}: no rows after @data (row {data_line})")
    widths = {s.shape[1] for s in seqs}
    if len(widths) > 1:
        k = next(k for k, s in enumerate(seqs) if s.shape[1] != seqs[0].shape[1])
        raise ValueError(
            f"{path} row {rows[k]}: {seqs[k].shape[1]} dimensions but row {rows[0]} has "
            f"{seqs[0].shape[1]} (ragged rows)"
        )
    lengths = {len(s) for s in seqs}
    if h.flag("equallength") and len(lengths) > 1:
        first = next(r for r, s in zip(rows, seqs, strict=True) if len(s) != len(seqs[0]))
        raise ValueError(
            f"{path} row {first}: header row {h.line('equallength')} says @equalLength true but "
            f"this row has {len(seqs[rows.index(first)])} steps and row {rows[0]} has "
            f"{len(seqs[0])}"
        )
    columns = [f"dim_{j}" for j in range(seqs[0].shape[1])]
    classes = h.classes()
    return LabelledSequences(
        str(path),
        ids,
        seqs,
        labels if has_label else None,  # type: ignore[arg-type]
        columns,
        rows,
        classes=classes,
    )


class _Header:
    """The ``@`` lines of a ``.ts`` file and the checks that rows must pass against them."""

    def __init__(self, path: str, lines: dict[str, tuple[int, list[str]]]) -> None:
        self.path, self.lines = path, lines
        for key in _FLAGS:
            if key in lines:
                value = (lines[key][1] or [""])[0].lower()
                if value not in ("true", "false"):
                    raise ValueError(
                        f"{path} row {lines[key][0]}: @{key} must be true or false, got {value!r}"
                    )

    def line(self, key: str) -> int:
        return self.lines[key][0]

    def flag(self, key: str) -> bool:
        return key in self.lines and (self.lines[key][1] or [""])[0].lower() == "true"

    def says(self, *keys: str) -> str:
        key = next((k for k in keys if k in self.lines), keys[0])
        if key not in self.lines:
            return "the header declares labels"
        return f"header row {self.line(key)} says @{key} {' '.join(self.lines[key][1])}"

    def integer(self, key: str) -> int | None:
        if key not in self.lines:
            return None
        words = self.lines[key][1]
        if len(words) != 1 or not words[0].isdigit():
            raise ValueError(
                f"{self.path} row {self.line(key)}: @{key} needs one whole number, got {words}"
            )
        return int(words[0])

    def classes(self) -> list[str] | None:
        if not self.flag("classlabel"):
            return None
        names = self.lines["classlabel"][1][1:]
        if not names:
            raise ValueError(
                f"{self.path} row {self.line('classlabel')}: @classLabel true lists no classes"
            )
        return names

    def check_row(self, n: int, seq: np.ndarray, label: str | None) -> None:
        dims = self.integer("dimensions")
        if dims is None and self.flag("univariate"):
            dims = 1
        if dims is not None and seq.shape[1] != dims:
            key = "dimensions" if "dimensions" in self.lines else "univariate"
            raise ValueError(
                f"{self.path} row {n}: {seq.shape[1]} dimensions but "
                f"{self.says(key)} ({dims}); the header lies or the row is ragged"
            )
        length = self.integer("serieslength")
        if length is not None and self.flag("equallength") and len(seq) != length:
            raise ValueError(
                f"{self.path} row {n}: {len(seq)} steps but {self.says('serieslength')}"
            )
        classes = self.classes()
        if label is not None and classes is not None and label not in classes:
            raise ValueError(
                f"{self.path} row {n}: label {label!r} is not among the classes {classes} of "
                f"header row {self.line('classlabel')}"
            )
        if label is not None and self.flag("targetlabel"):
            try:
                ok = math.isfinite(float(label))
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(
                    f"{self.path} row {n}: target {label[:30]!r} is not a finite number "
                    f"({self.says('targetlabel')})"
                )


def _values(path: StrPath, n: int, j: int, field: str, h: _Header) -> np.ndarray:
    cells = field.split(",")
    out = np.empty(len(cells), dtype=np.float64)
    for k, cell in enumerate(cells):
        c = cell.strip()
        if c in ("?", "") or c.lower() == "nan":
            said = f" ({h.says('missing')})" if "missing" in h.lines else ""
            raise ValueError(
                f"{path} row {n}, dimension {j + 1}, step {k + 1}: value is missing{said}; "
                "rnnkit needs complete series, fill or drop it"
            )
        try:
            out[k] = float(c)
        except ValueError:
            raise ValueError(
                f"{path} row {n}, dimension {j + 1}, step {k + 1}: {c[:30]!r} is not a number"
            ) from None
        if not math.isfinite(out[k]):
            raise ValueError(
                f"{path} row {n}, dimension {j + 1}, step {k + 1}: {c[:30]!r} is not finite"
            )
    return out


def _stack(path: StrPath, n: int, dims: list[np.ndarray]) -> np.ndarray:
    if not dims:
        raise ValueError(f"{path} row {n}: no values")
    for j, d in enumerate(dims[1:], start=2):
        if len(d) != len(dims[0]):
            raise ValueError(
                f"{path} row {n}, dimension {j}: {len(d)} steps but dimension 1 has "
                f"{len(dims[0])}; every dimension of a row needs the same length"
            )
    return np.stack(dims, axis=1)  # (T, C)
