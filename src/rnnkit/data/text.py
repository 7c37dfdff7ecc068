"""Text: tokenisers, the `Vocab`, streaming encoding into a memmap, contiguous splits and LM
batching.

Every file enters through `read_text` or `iter_text_chunks`, which raise a `ValueError` naming the
file, line and column for an empty file or bytes that are not UTF-8. Ids are ``int32`` on disk and
``int64`` tensors in batches.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from rnnkit.types import Batch

Level = Literal["char", "word"]
StrPath = str | PathLike[str]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS)

# Words (with inner apostrophes: don't, o'er), runs of digits, or any single other visible
# character.
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+|[^\w\s]|_")


def char_tokenize(text: str) -> list[str]:
    """Split ``text`` into characters (whitespace and newlines included, so decoding restores
    it)."""
    return list(text)


def word_tokenize(text: str, *, lower: bool = False) -> list[str]:
    """Split ``text`` into words, digit runs and punctuation marks; whitespace is dropped.

    ``"Don't stop, 2 times!"`` -> ``["Don't", "stop", ",", "2", "times", "!"]``.
    """
    return _WORD_RE.findall(text.lower() if lower else text)


def tokenize(text: str, *, level: Level = "char", lower: bool = False) -> list[str]:
    """Tokenise at ``level`` ("char" or "word"); ``lower`` lower-cases first."""
    if level == "char":
        return char_tokenize(text.lower() if lower else text)
    if level == "word":
        return word_tokenize(text, lower=lower)
    raise ValueError(f"level must be 'char' or 'word', got {level!r}")


class Vocab:
    """A token <-> id mapping whose first ids are ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, ``<eos>``
    3.

    Build it with `Vocab.build` from tokens (or counts); unknown tokens encode to ``unk_id``.
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocab must start with {list(SPECIALS)}, got {list(tokens[:4])}")
        self._itos: list[str] = list(tokens)
        self._stoi: dict[str, int] = {}
        for i, tok in enumerate(self._itos):
            if tok in self._stoi:
                raise ValueError(
                    f"token {tok!r} appears twice in the vocab (ids {self._stoi[tok]}, {i})"
                )
            self._stoi[tok] = i
        self._char_table: tuple[np.ndarray, np.ndarray] | None = None

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    @classmethod
    def build(
        cls,
        tokens: Iterable[str] | Counter[str],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> Vocab:
        """Keep tokens seen at least ``min_freq`` times, most frequent first (ties by token), at
        most ``max_size`` entries including the four specials."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < len(SPECIALS):
            raise ValueError(f"max_size must be >= {len(SPECIALS)} (the specials), got {max_size}")
        counts = tokens if isinstance(tokens, Counter) else Counter(tokens)
        kept = sorted(
            (t for t, c in counts.items() if c >= min_freq and t not in SPECIALS),
            key=lambda t: (-counts[t], t),
        )
        if max_size is not None:
            kept = kept[: max_size - len(SPECIALS)]
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._itos == other._itos

    __hash__ = None  # type: ignore[assignment]

    @property
    def tokens(self) -> list[str]:
        """All tokens in id order."""
        return list(self._itos)

    def index(self, token: str) -> int:
        """The id of ``token``, or ``unk_id``."""
        return self._stoi.get(token, self.unk_id)

    def encode(self, tokens: Iterable[str], *, bos: bool = False, eos: bool = False) -> list[int]:
        """Map tokens to ids, optionally wrapped in ``<bos>``/``<eos>``."""
        ids = [self._stoi.get(t, self.unk_id) for t in tokens]
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> list[str]:
        """Map ids back to tokens; ``skip_special`` drops pad/unk/bos/eos. Out-of-range ids
        raise."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self._itos):
                raise ValueError(f"id {i} is outside the vocab of size {len(self._itos)}")
            if not (skip_special and i < len(SPECIALS)):
                out.append(self._itos[i])
        return out

    def encode_chars(self, text: str) -> np.ndarray:
        """Encode every character of ``text`` at numpy speed: ``(len(text),)`` int32 ids."""
        if self._char_table is None:
            pairs = sorted((ord(t), i) for i, t in enumerate(self._itos) if len(t) == 1)
            self._char_table = (
                np.array([p[0] for p in pairs], dtype=np.uint32),
                np.array([p[1] for p in pairs], dtype=np.int32),
            )
        codes, ids = self._char_table
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        if len(codes) == 0:
            return np.full(len(points), self.unk_id, dtype=np.int32)
        pos = np.minimum(np.searchsorted(codes, points), len(codes) - 1)
        return np.where(codes[pos] == points, ids[pos], np.int32(self.unk_id)).astype(np.int32)

    def save(self, path: StrPath) -> None:
        """Write the vocab as JSON: ``{"format": "rnnkit.vocab/1", "tokens": [...]}``."""
        payload = {"format": "rnnkit.vocab/1", "tokens": self._itos}
        Path(path).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: StrPath) -> Vocab:
        """Read a vocab written by `save`."""
        try:
            payload = json.loads(read_text(path))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} line {err.lineno}, column {err.colno}: {err.msg}") from None
        tokens = payload.get("tokens") if isinstance(payload, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{path}: expected a JSON object with a 'tokens' list of strings")
        return cls(tokens)


def _position(consumed: bytes, line: int, col: int) -> tuple[int, int]:
    """Advance a 1-based (line, column) position over ``consumed`` bytes."""
    newlines = consumed.count(b"\n")
    if newlines:
        return line + newlines, len(consumed) - consumed.rfind(b"\n")
    return line, col + len(consumed)


def iter_text_chunks(path: StrPath, *, chunk_bytes: int = 1 << 22) -> Iterator[str]:
    """Stream a UTF-8 file as strings of about ``chunk_bytes`` bytes, never holding the whole file.

    Raises `ValueError` for a missing or empty file, and for invalid UTF-8 with its line and column.
    A UTF-8 byte-order mark at the start (Excel's "CSV UTF-8") is dropped, not read as text.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise ValueError(f"{p}: file is empty")
    decoder = codecs.getincrementaldecoder("utf-8-sig")()  # drops a leading byte-order mark
    line, col = 1, 1
    with p.open("rb") as f:
        while True:
            raw = f.read(chunk_bytes)
            # Bytes of a character cut by the previous chunk wait in the decoder; they hold no
            # newline.
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as err:
                buf = bytes(err.object)
                at_line, at_col = _position(buf[: err.start], line, col - pending)
                raise ValueError(
                    f"{p} line {at_line}, column {at_col}: byte 0x{buf[err.start]:02x} is not "
                    "valid UTF-8"
                ) from None
            line, col = _position(raw, line, col)
            if text:
                yield text
            if not raw:
                return


def read_text(path: StrPath) -> str:
    """Read a whole UTF-8 file, with the checks of `iter_text_chunks`."""
    return "".join(iter_text_chunks(path))


def _iter_tokens_chunks(
    path: StrPath, *, level: Level, lower: bool, chunk_bytes: int
) -> Iterator[str]:
    """Chunks cut only at whitespace for word level, so no word is split across two chunks."""
    if level == "char":
        for text in iter_text_chunks(path, chunk_bytes=chunk_bytes):
            yield text.lower() if lower else text
        return
    carry = ""
    for text in iter_text_chunks(path, chunk_bytes=chunk_bytes):
        text = carry + text
        cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))
        carry, text = (text[cut + 1 :], text[: cut + 1]) if cut >= 0 else (text, "")
        yield text
    yield carry


def build_vocab_from_file(
    path: StrPath,
    *,
    level: Level = "char",
    lower: bool = False,
    min_freq: int = 1,
    max_size: int | None = None,
    chunk_bytes: int = 1 << 22,
) -> Vocab:
    """Count tokens over a file in chunks (bounded memory) and build a `Vocab`."""
    counts: Counter[str] = Counter()
    for text in _iter_tokens_chunks(path, level=level, lower=lower, chunk_bytes=chunk_bytes):
        counts.update(text if level == "char" else word_tokenize(text, lower=lower))
    return Vocab.build(counts, min_freq=min_freq, max_size=max_size)


def encode_file(
    path: StrPath,
    vocab: Vocab,
    out_path: StrPath,
    *,
    level: Level = "char",
    lower: bool = False,
    chunk_bytes: int = 1 << 22,
) -> np.memmap:
    """Encode a corpus of any size into an ``int32`` memmap at ``out_path``: ``(N,)`` token ids.

    The file is read ``chunk_bytes`` at a time and ids are appended to disk, so memory stays bounded
    by the chunk size whatever the corpus size.
    """
    total = 0
    with Path(out_path).open("wb") as out:
        for text in _iter_tokens_chunks(path, level=level, lower=lower, chunk_bytes=chunk_bytes):
            if level == "char":
                ids = vocab.encode_chars(text)
            else:
                ids = np.asarray(vocab.encode(word_tokenize(text, lower=lower)), dtype=np.int32)
            ids.tofile(out)
            total += len(ids)
    if total == 0:
        raise ValueError(f"{path}: no tokens to encode")
    return np.memmap(out_path, dtype=np.int32, mode="r", shape=(total,))


def split_contiguous(
    ids: np.ndarray, *, val_fraction: float = 0.05, test_fraction: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``(N,)`` ids into train, validation, test blocks in that order (views, no copies)."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction {val_fraction} and test_fraction {test_fraction} must be in [0, 1) "
            "and sum to less than 1"
        )
    n = len(ids)
    n_test, n_val = int(n * test_fraction), int(n * val_fraction)
    n_train = n - n_val - n_test
    return ids[:n_train], ids[n_train : n_train + n_val], ids[n_train + n_val :]


class LMStream:
    """Language-model batches from one id stream, laid out as ``batch_size`` parallel streams.

    The ids are cut into B equal contiguous streams (one per batch row) and each is read in chunks
    of
    ``seq_len``; row b of chunk k+1 continues row b of chunk k, so a model may carry its final state
    across chunks (truncated BPTT). Each item is a `Batch` with ``x`` ``(B, T)`` int64 ids, ``y``
    the next ids ``(B, T)``, and ``lengths`` all T; the last chunk may be shorter.
    """

    def __init__(self, ids: np.ndarray, *, batch_size: int, seq_len: int) -> None:
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}")
        per_stream = (len(ids) - 1) // batch_size
        if per_stream < 1:
            raise ValueError(
                f"{len(ids)} tokens are too few for {batch_size} streams (need at least "
                f"{batch_size + 1})"
            )
        self.x = ids[: batch_size * per_stream].reshape(batch_size, per_stream)  # (B, N)
        self.y = ids[1 : batch_size * per_stream + 1].reshape(batch_size, per_stream)  # (B, N)
        self.seq_len = seq_len

    def __len__(self) -> int:
        return -(-self.x.shape[1] // self.seq_len)

    def __iter__(self) -> Iterator[Batch]:
        for start in range(0, self.x.shape[1], self.seq_len):
            x = torch.from_numpy(np.array(self.x[:, start : start + self.seq_len], dtype=np.int64))
            y = torch.from_numpy(np.array(self.y[:, start : start + self.seq_len], dtype=np.int64))
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
            yield Batch(x=x, lengths=lengths, y=y)
