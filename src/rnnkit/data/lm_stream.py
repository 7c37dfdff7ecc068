"""Language-model streams: a char or word corpus as parallel streams, resumable.

The corpus comes from the data registry (``rnnkit.data.load("shakespeare")``, contiguous
train/val/test id blocks and the vocab) or from a UTF-8 file path. Each split is laid out as the
`rnnkit.data.LMStream` layout (B parallel streams read in chunks of ``k1`` tokens) and a process of
a DDP run reads only its own rows, so the global batch is the same whatever the number of processes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from rnnkit.data.datasets import load
from rnnkit.data.text import LMStream, Vocab, read_text, word_tokenize
from rnnkit.types import Batch


class CorpusOptions(Protocol):
    """What `load_corpus` reads (``rnnkit.train.TextDataConfig`` has these fields)."""

    @property
    def source(self) -> str: ...

    @property
    def level(self) -> str: ...

    @property
    def lower(self) -> bool: ...

    @property
    def max_chars(self) -> int | None: ...

    @property
    def head_chars(self) -> int | None: ...

    @property
    def val_fraction(self) -> float: ...

    @property
    def test_fraction(self) -> float: ...

    @property
    def min_freq(self) -> int: ...

    @property
    def max_vocab(self) -> int | None: ...


@dataclass
class StreamBatch(Batch):
    """A `Batch` that knows its chunk's index in the epoch (0 = the streams start over)."""

    position: int = 0
    row_offset: int = 0  # global index of this process's first stream (rank * B / W)

    def to(self, device: str | object) -> StreamBatch:
        moved = super().to(device)
        return StreamBatch(
            moved.x,
            moved.lengths,
            moved.y,
            moved.mask,
            position=self.position,
            row_offset=self.row_offset,
        )


@dataclass
class Corpus:
    """Token ids of the three contiguous splits and the vocab that encoded them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    vocab: Vocab
    source: str


def load_corpus(cfg: CorpusOptions) -> Corpus:
    """Read ``cfg.source`` (a registry name, a file, or a folder of .txt files) into id splits.

    Character level reads a registry set's own splits (or a file's); ``head_chars`` first cuts the
    text to its start. Word level splits the same text contiguously by characters, tokenises each
    block with `rnnkit.data.word_tokenize` and builds the vocab from the training block (words seen
    fewer than ``min_freq`` times, or beyond ``max_vocab``, become ``<unk>``, in every split).
    """
    key = (
        cfg.source,
        cfg.level,
        cfg.lower,
        cfg.head_chars,
        cfg.val_fraction,
        cfg.test_fraction,
        cfg.min_freq,
        cfg.max_vocab,
    )
    corpus = _cached_corpus(*key)
    train, val, test = corpus.train, corpus.val, corpus.test
    if cfg.max_chars is not None:
        keep = max(1, int(cfg.max_chars * cfg.val_fraction))
        train, val, test = train[: cfg.max_chars], val[:keep], test[:keep]
    return Corpus(train, val, test, corpus.vocab, corpus.source)


def _is_file(source: str) -> bool:
    path = Path(source)
    return bool(path.suffix) or path.is_file() or path.is_dir()


def _folder_text(folder: Path) -> str:
    """The ``.txt`` files of a folder (and its subfolders), in path order, a blank line apart."""
    files = sorted(p for p in folder.rglob("*.txt") if p.is_file())
    if not files:
        raise ValueError(f"data.source {folder}: the folder holds no .txt files")
    return "\n\n".join(read_text(p) for p in files)


@functools.lru_cache(maxsize=4)
def _cached_corpus(
    source: str,
    level: str,
    lower: bool,
    head_chars: int | None,
    val_fraction: float,
    test_fraction: float,
    min_freq: int,
    max_vocab: int | None,
) -> Corpus:
    # Cached: an application trains several models on one corpus; the arrays are never written.
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"data.val_fraction {val_fraction} and data.test_fraction {test_fraction} must be in "
            "[0, 1) and sum to less than 1"
        )
    fractions = {"val_fraction": val_fraction, "test_fraction": test_fraction}
    if level == "char" and not lower and not _is_file(source):
        splits = _registry_splits(source, head_chars, **fractions)
        if splits is not None:
            train, val, test = (np.asarray(p) for p in (splits.train, splits.val, splits.test))
            return Corpus(train, val, test, splits.meta["vocab"], source)
    text = _source_text(source, head_chars)
    if lower:
        text = text.lower()
    n = len(text)
    n_val, n_test = int(n * val_fraction), int(n * test_fraction)
    n_train = n - n_val - n_test
    blocks = text[:n_train], text[n_train : n_train + n_val], text[n_train + n_val :]
    if level == "char":
        vocab = Vocab.build(blocks[0])
        train, val, test = (vocab.encode_chars(b) for b in blocks)
    else:
        words = [word_tokenize(b) for b in blocks]
        vocab = Vocab.build(words[0], min_freq=min_freq, max_size=max_vocab)
        train, val, test = (np.asarray(vocab.encode(w), dtype=np.int32) for w in words)
    if len(train) < 2:
        raise ValueError(f"data.source {source!r}: the training split holds {len(train)} tokens")
    return Corpus(train, val, test, vocab, source)


def _registry_splits(source: str, head_chars: int | None, **opts: Any) -> Any:
    """A registry set's splits, read up to ``head_chars`` characters; None if the set cannot stop
    early (then the caller cuts the text itself)."""
    if head_chars is not None:
        opts["max_chars"] = head_chars
    try:
        splits = load(source, **opts)
    except TypeError as err:  # the set's loader takes no max_chars
        if "max_chars" not in str(err):
            raise
        return None
    if "vocab" not in splits.meta or not isinstance(splits.train, np.ndarray):
        raise ValueError(
            f"data.source {source!r} is a {splits.info.task} set, not a text stream; "
            "use a language-model set (rnnkit datasets) or a text file"
        )
    return splits


def _source_text(source: str, head_chars: int | None) -> str:
    """The text of a file or of a registry language-model set, cut to ``head_chars``."""
    if Path(source).is_dir():
        return _folder_text(Path(source))[:head_chars]
    if _is_file(source):
        return read_text(Path(source))[:head_chars]
    # One block (no held-out parts), so its vocab covers every character and decoding is exact.
    whole = {"val_fraction": 0.0, "test_fraction": 0.0}
    splits = _registry_splits(source, head_chars, **whole) or _registry_splits(
        source, None, **whole
    )
    tokens = np.asarray(splits.meta["vocab"].tokens, dtype=object)
    return "".join(tokens[np.asarray(splits.train)].tolist())[:head_chars]


def unigram_bpc(train: np.ndarray, heldout: np.ndarray, vocab_size: int) -> float:
    """Bits per character of a unigram model fitted on ``train`` (add-one) on ``heldout``."""
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log2(counts / counts.sum())
    return float(-logp[heldout].mean())


class StreamLoader:
    """This process's rows of a split, in chunks of ``seq_len``; resumable mid-epoch.

    ``batch_size`` is the global number of streams; rank r of W reads rows ``[r*B/W, (r+1)*B/W)``.
    Lightning saves ``state_dict()`` in checkpoints and calls ``load_state_dict`` on resume, so the
    next epoch-iteration starts at the chunk after the last one trained on.
    """

    def __init__(
        self,
        ids: np.ndarray,
        *,
        batch_size: int,
        seq_len: int,
        rank: int = 0,
        world_size: int = 1,
        progress: Any = None,
    ) -> None:
        if batch_size % world_size:
            raise ValueError(
                f"batch size {batch_size} must be divisible by the number of processes {world_size}"
            )
        stream = LMStream(ids, batch_size=batch_size, seq_len=seq_len)
        rows = slice(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)
        self.x, self.y = stream.x[rows], stream.y[rows]  # (B/W, N)
        self.row_offset = rows.start
        self.seq_len = seq_len
        self._start = 0
        self._progress = progress  # () -> chunks of this epoch already trained on

    def __len__(self) -> int:
        return math.ceil(self.x.shape[1] / self.seq_len)

    def __iter__(self) -> Iterator[StreamBatch]:
        start, self._start = self._start, 0
        for k in range(start, len(self)):
            s = slice(k * self.seq_len, (k + 1) * self.seq_len)
            x = torch.from_numpy(np.asarray(self.x[:, s], dtype=np.int64))
            y = torch.from_numpy(np.asarray(self.y[:, s], dtype=np.int64))
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
            yield StreamBatch(x=x, lengths=lengths, y=y, position=k, row_offset=self.row_offset)

    def state_dict(self) -> dict[str, int]:
        done = int(self._progress()) if self._progress is not None else 0
        return {"next_chunk": done % max(1, len(self))}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._start = int(state.get("next_chunk", 0))


def load_line_sequences(
    cfg: CorpusOptions,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], Vocab]:
    """Many independent sequences from text: one per non-empty line, ``<bos> tokens <eos>``.

    Lines are split contiguously (train, then val, then test by ``val_fraction``/``test_fraction``);
    the vocab comes from the training lines (``min_freq``/``max_vocab`` at word level).
    """
    text = _source_text(cfg.source, cfg.head_chars)
    if cfg.lower:
        text = text.lower()
    lines = [line for line in text.splitlines() if line.strip()]
    n_val, n_test = int(len(lines) * cfg.val_fraction), int(len(lines) * cfg.test_fraction)
    n_train = len(lines) - n_val - n_test
    if n_train < 1 or n_val < 1:
        raise ValueError(
            f"data.source {cfg.source!r}: {len(lines)} non-empty lines leave {n_train} training "
            f"and {n_val} validation sequences; sequences mode needs at least one of each"
        )
    tokens: list[list[str]] = [
        word_tokenize(line) if cfg.level == "word" else list(line) for line in lines
    ]
    vocab = (
        Vocab.build(
            [t for seq in tokens[:n_train] for t in seq],
            min_freq=cfg.min_freq,
            max_size=cfg.max_vocab,
        )
        if cfg.level == "word"
        else Vocab.build("".join(lines[:n_train]))
    )
    seqs = [np.asarray(vocab.encode(t, bos=True, eos=True), dtype=np.int64) for t in tokens]
    return seqs[:n_train], seqs[n_train : n_train + n_val], seqs[n_train + n_val :], vocab
