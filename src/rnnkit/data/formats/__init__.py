"""Readers for the files users bring to ``rnnkit fit``: one reader per format, one error style.

- `series`: long-format CSV/Parquet series for forecasting (``unique_id``, ``ds``, ``y``).
- `ts`: sktime/UCR/UEA ``.ts`` files for sequence classification and regression.
- `tables`: wide and long CSV series, labelled texts, source/target pairs, CoNLL tags.

Every reader raises a one-line `ValueError` naming the file, row and column of the first problem;
nothing from pandas, csv or json escapes. Fitting (classes, vocabularies, scalers) happens on the
training split only, in `rnnkit.data.formats.encode`.
"""

from rnnkit.data.formats._common import Table, read_table, read_user_text
from rnnkit.data.formats.series import LongSeries, OneSeries, check_window, read_long_series
from rnnkit.data.formats.tables import (
    LabelledSequences,
    LabelledTexts,
    TaggedSentences,
    read_conll,
    read_long,
    read_texts,
    read_wide,
)
from rnnkit.data.formats.ts import read_ts

__all__ = [
    "LabelledSequences",
    "LabelledTexts",
    "LongSeries",
    "OneSeries",
    "Table",
    "TaggedSentences",
    "check_window",
    "read_conll",
    "read_long",
    "read_long_series",
    "read_table",
    "read_texts",
    "read_ts",
    "read_user_text",
    "read_wide",
]
