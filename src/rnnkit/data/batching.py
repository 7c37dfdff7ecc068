"""Batching: a sequence dataset, padding collate into `rnnkit.types.Batch`, packing, length buckets.

Samples are ``(x, y)`` pairs: ``x`` a ``(T, I)`` float array or a ``(T,)`` array of token ids;
``y`` a
scalar label, a per-step array ``(T, ...)``, or None. Shapes are checked here, where arrays enter.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from torch.utils.data import Dataset, Sampler

from rnnkit.types import Batch

Sample = tuple[Any, Any]


class SequenceDataset(Dataset[Sample]):
    """Variable-length sequences with labels, checked on entry.

    **Arguments:**
    - ``sequences``: N arrays, each ``(T_n, I)`` (same I for all) or ``(T_n,)``; every T_n >= 1.
    - ``labels``: N labels (ints, or per-step arrays of length T_n), or None.
    - ``source``: a name for error messages (file or data set).
    """

    def __init__(
        self, sequences: Sequence[Any], labels: Sequence[Any] | None = None, *, source: str = "data"
    ) -> None:
        self.sequences = [_as_sequence(s, i, source) for i, s in enumerate(sequences)]
        _check_features(self.sequences, source)
        if labels is not None:
            if len(labels) != len(self.sequences):
                raise ValueError(
                    f"{source}: {len(self.sequences)} sequences but {len(labels)} labels"
                )
            for i, lab in enumerate(labels):
                if lab is None or (isinstance(lab, float) and np.isnan(lab)):
                    raise ValueError(f"{source} row {i}, column 'label': label is missing")
        self.labels = list(labels) if labels is not None else None
        self.source = source

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> Sample:
        return self.sequences[i], None if self.labels is None else self.labels[i]

    @property
    def lengths(self) -> list[int]:
        """Steps of each sequence."""
        return [int(s.shape[0]) for s in self.sequences]


def _as_sequence(seq: Any, i: int, source: str) -> Tensor:
    try:
        t = torch.as_tensor(np.asarray(seq))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{source} row {i}: not a rectangular numeric array ({err})") from None
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{source} row {i}: dtype {t.dtype} is not numeric")
    if t.ndim not in (1, 2):
        raise ValueError(f"{source} row {i}: expected (T,) or (T, I), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{source} row {i}, column 0: sequence has no steps")
    return t.float() if t.is_floating_point() else t  # finiteness: once per batch (`collate`)


def _check_features(seqs: Sequence[Tensor], source: str) -> None:
    if not seqs:
        return
    ref = seqs[0]
    for i, s in enumerate(seqs):
        if s.shape[1:] != ref.shape[1:] or s.is_floating_point() != ref.is_floating_point():
            raise ValueError(
                f"{source} row {i}: shape {tuple(s.shape)} ({s.dtype}) does not match row 0's "
                f"{tuple(ref.shape)} ({ref.dtype}); arrays are ragged across features"
            )


def collate(
    samples: Sequence[Sample],
    *,
    pad_value: float = 0.0,
    label_pad_value: int = -100,
    source: str = "batch",
) -> Batch:
    """Pad ``samples`` to the longest one and return a `Batch`.

    ``x`` is ``(B, T_max, I)`` float32 or ``(B, T_max)`` int64; ``lengths`` ``(B,)``; ``y``
    ``(B,)`` for
    scalar labels, ``(B, T_max, ...)`` padded with ``label_pad_value`` for per-step labels, or None.
    """
    if len(samples) == 0:
        raise ValueError(f"{source}: cannot collate an empty batch")
    xs = [_as_sequence(x, i, source) for i, (x, _) in enumerate(samples)]
    _check_features(xs, source)
    lengths = torch.tensor([x.shape[0] for x in xs], dtype=torch.int64)
    x = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True, padding_value=pad_value)  # (B, T, ·)
    if not x.is_floating_point():
        x = x.long()
    elif not bool(torch.isfinite(x).all()):  # one check for the batch, not one per sequence
        row, step = (int(v) for v in (~torch.isfinite(x)).nonzero()[0, :2])
        raise ValueError(f"{source} row {row}, step {step}: value is NaN or infinite")
    ys = [y for _, y in samples]
    missing = [i for i, y in enumerate(ys) if y is None]
    if len(missing) == len(ys):
        return Batch(x=x, lengths=lengths)
    if missing:
        raise ValueError(f"{source} row {missing[0]}, column 'label': label is missing")
    first = torch.as_tensor(np.asarray(ys[0]))
    if first.ndim == 0:
        return Batch(x=x, lengths=lengths, y=torch.stack([torch.as_tensor(y) for y in ys]))
    per_step = [torch.as_tensor(np.asarray(y)) for y in ys]
    for i, (y, n) in enumerate(zip(per_step, lengths.tolist(), strict=True)):
        if y.shape[0] != n:
            raise ValueError(f"{source} row {i}: {y.shape[0]} labels for {n} steps")
    y = torch.nn.utils.rnn.pad_sequence(per_step, batch_first=True, padding_value=label_pad_value)
    return Batch(x=x, lengths=lengths, y=y)


def pack(batch: Batch) -> PackedSequence:
    """The batch's ``x`` as a `PackedSequence` (any order of lengths), for ``torch.nn`` RNNs."""
    return pack_padded_sequence(
        batch.x, batch.lengths.cpu(), batch_first=True, enforce_sorted=False
    )


def padding_fraction(batches: Iterable[Sequence[int] | Tensor]) -> float:
    """Share of padded steps over batches given as their lengths: ``sum(B*T_max - sum) /
    sum(B*T_max)``."""
    padded = total = 0
    for lens in batches:
        values = [int(v) for v in lens]
        if values:
            total += len(values) * max(values)
            padded += len(values) * max(values) - sum(values)
    return padded / total if total else 0.0


class BucketSampler(Sampler[list[int]]):
    """Yields batches of indices of similar length, to cut padding.

    Indices are shuffled, cut into pools of ``batch_size * pool_batches``, each pool sorted by
    length and
    cut into batches; the batch order is then shuffled. ``shuffle=False`` sorts the whole set
    instead. Call `set_epoch` for a new shuffle each epoch.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        *,
        batch_size: int,
        pool_batches: int = 50,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
    ) -> None:
        if batch_size < 1 or pool_batches < 1:
            raise ValueError(
                f"batch_size and pool_batches must be >= 1, got {batch_size}, {pool_batches}"
            )
        self.lengths = [int(n) for n in lengths]
        self.batch_size, self.pool_batches = batch_size, pool_batches
        self.shuffle, self.drop_last, self.seed, self.epoch = shuffle, drop_last, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Reseed the shuffle for ``epoch``."""
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        order = list(range(len(self.lengths)))
        pool = len(order) if not self.shuffle else self.batch_size * self.pool_batches
        if self.shuffle:
            rng.shuffle(order)
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=self.lengths.__getitem__)
            for b in range(0, len(chunk), self.batch_size):
                batch = chunk[b : b + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch)
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        full, rest = divmod(len(self.lengths), self.batch_size)
        return full if self.drop_last else full + (rest > 0)


def word_dropout(batch: Batch, *, p: float, unk_id: int, generator: Any = None) -> Batch:
    """Replace each real token of ``batch.x`` ``(B, T)`` by ``unk_id`` with probability ``p``.

    A regulariser for token inputs (Iyyer et al. 2015; Bowman et al. 2016): the model cannot lean
    on any single word. Padding stays padding; targets are untouched. Applied to training batches
    only (the trainer's ``train_transform``).
    """
    if p <= 0.0:
        return batch
    if batch.x.is_floating_point():
        raise ValueError("word dropout needs token-id inputs (B, T); these inputs are features")
    draw = torch.rand(batch.x.shape, device=batch.x.device, generator=generator)
    drop = (draw < p) & batch.mask.to(batch.x.device)  # type: ignore[union-attr]
    return dataclasses.replace(batch, x=batch.x.masked_fill(drop, unk_id))
