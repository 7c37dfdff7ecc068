"""Tests of rnnkit.data.batching: collate into Batch, packing, bucketing, padding fraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.data.batching import BucketSampler, SequenceDataset, collate, pack, padding_fraction
from rnnkit.types import Batch


def test_collate_pads_to_longest() -> None:
    samples = [(np.ones((3, 2)), 1), (np.ones((5, 2)), 0)]
    batch = collate(samples)
    assert isinstance(batch, Batch)
    assert batch.x.shape == (2, 5, 2) and batch.x.dtype == torch.float32
    assert batch.lengths.tolist() == [3, 5]
    assert batch.y is not None and batch.y.tolist() == [1, 0]
    assert batch.mask is not None and batch.mask.sum().item() == 8
    assert batch.x[0, 3:].abs().sum() == 0


def test_collate_token_ids_and_per_step_labels() -> None:
    batch = collate([([4, 5, 6], [1, 2, 3]), ([7], [9])])
    assert batch.x.dtype == torch.int64 and batch.x.tolist() == [[4, 5, 6], [7, 0, 0]]
    assert batch.y is not None and batch.y.tolist() == [[1, 2, 3], [9, -100, -100]]


def test_collate_without_labels() -> None:
    assert collate([(np.ones(2), None)]).y is None


def test_pack_matches_lengths() -> None:
    batch = collate([(np.ones((2, 1)), 0), (np.ones((4, 1)), 1)])
    packed = pack(batch)
    assert packed.data.shape == (6, 1)
    _, h = torch.nn.GRU(1, 3, batch_first=True)(packed)
    assert h.shape == (1, 2, 3)


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([], r"^batch: cannot collate an empty batch$"),
        (
            [(np.ones((2, 3)), 0), (np.ones((2, 4)), 1)],
            r"^batch row 1: shape \(2, 4\) \(torch.float32\) does not match row 0's \(2, 3\) "
            r"\(torch.float32\); arrays are ragged across features$",
        ),
        (
            [(np.ones((2, 3)), 0), (np.ones((2, 3)), None)],
            r"^batch row 1, column 'label': label is missing$",
        ),
        ([(np.zeros((0, 3)), 0)], r"^batch row 0, column 0: sequence has no steps$"),
        ([(np.array([1.0, np.nan]), 0)], r"^batch row 0, step 1: value is NaN or infinite$"),
        ([([[1, 2], [3]], 0)], r"^batch row 0: not a rectangular numeric array"),
        (
            [
                ([1, 2], [1]),
            ],
            r"^batch row 0: 1 labels for 2 steps$",
        ),
    ],
)
def test_collate_bad_input(samples: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        collate(samples)


def test_dataset_labels_missing() -> None:
    with pytest.raises(ValueError, match=r"^vowels row 1, column 'label': label is missing$"):
        SequenceDataset([np.ones(2), np.ones(3)], [0, None], source="vowels")
    with pytest.raises(ValueError, match=r"^vowels: 2 sequences but 1 labels$"):
        SequenceDataset([np.ones(2), np.ones(3)], [0], source="vowels")


def test_padding_fraction() -> None:
    assert padding_fraction([[2, 4], [3, 3]]) == pytest.approx(2 / 14)
    assert padding_fraction([]) == 0.0


def test_bucket_sampler_covers_every_index_and_cuts_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, size=503).tolist()
    sampler = BucketSampler(lengths, batch_size=16, pool_batches=8)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 32
    assert sorted(i for b in batches for i in b) == list(range(503))
    random_batches = [lengths[i : i + 16] for i in range(0, 503, 16)]
    bucketed = [[lengths[i] for i in b] for b in batches]
    assert padding_fraction(bucketed) < padding_fraction(random_batches) / 3
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_bucket_sampler_with_dataloader() -> None:
    data = SequenceDataset([np.ones((n, 2)) for n in (3, 1, 4, 1, 5)], [0, 1, 0, 1, 0])
    loader = torch.utils.data.DataLoader(
        data,
        batch_sampler=BucketSampler(data.lengths, batch_size=2, drop_last=True),
        collate_fn=collate,
    )
    batches = list(loader)
    assert len(batches) == 2 and all(isinstance(b, Batch) for b in batches)
