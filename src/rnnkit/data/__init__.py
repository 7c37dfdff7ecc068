"""rnnkit.data: from text, tables and package-bundled data sets to padded `Batch`es.

- `text`: tokenisers, `Vocab`, streaming memmap encoding, contiguous splits, `LMStream` batching.
- `series`: CSV loading, missing values, categorical encoding, scalers, forecasting windows.
- `batching`: `SequenceDataset`, `collate`, `pack`, `BucketSampler`, `padding_fraction`,
  `word_dropout`.
- `lm_stream`: a corpus as parallel LM streams (`load_corpus`, `StreamLoader`), line sequences.
- `synthetic`: seeded synthetic sets; `dates`: the seeded date-string generator.
- `datasets`: the offline registry, `load(name, **opts)` and `list_datasets()`.
"""

from rnnkit.data._text_sets import read_labelled_csv
from rnnkit.data.batching import (
    BucketSampler,
    SequenceDataset,
    collate,
    pack,
    padding_fraction,
    word_dropout,
)
from rnnkit.data.datasets import DatasetInfo, DataSplits, LabelledSeries, list_datasets, load
from rnnkit.data.series import (
    CategoryEncoder,
    ForecastData,
    ForecastSplit,
    Imputer,
    MinMaxScaler,
    RobustScaler,
    Scaler,
    StandardScaler,
    load_csv,
    make_scaler,
    make_windows,
    missing_report,
    prepare_forecasting,
    time_split,
)
from rnnkit.data.text import (
    LMStream,
    Vocab,
    build_vocab_from_file,
    char_tokenize,
    encode_file,
    iter_text_chunks,
    read_text,
    split_contiguous,
    tokenize,
    word_tokenize,
)

__all__ = [
    "BucketSampler",
    "CategoryEncoder",
    "DataSplits",
    "DatasetInfo",
    "ForecastData",
    "ForecastSplit",
    "Imputer",
    "LMStream",
    "LabelledSeries",
    "MinMaxScaler",
    "RobustScaler",
    "Scaler",
    "SequenceDataset",
    "StandardScaler",
    "Vocab",
    "build_vocab_from_file",
    "char_tokenize",
    "collate",
    "encode_file",
    "iter_text_chunks",
    "list_datasets",
    "load",
    "load_csv",
    "make_scaler",
    "make_windows",
    "missing_report",
    "pack",
    "padding_fraction",
    "prepare_forecasting",
    "read_labelled_csv",
    "read_text",
    "split_contiguous",
    "time_split",
    "tokenize",
    "word_dropout",
    "word_tokenize",
]
