"""What the applications need from `rnnkit.train` beyond `rnnkit fit`: errors for recipe mappings
and class predictions over in-memory samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.models import SequenceClassifier, SequenceClassifierConfig
from rnnkit.train.experiment_io import experiment_from_dict
from rnnkit.train.predict import predict_classes


def test_unknown_top_level_key_of_a_mapping_lists_the_valid_ones() -> None:
    # a recipe's experiment: section is a mapping; a stray section must not pass silently
    with pytest.raises(
        ValueError, match=r"unknown key 'train\.epochs'; valid keys at the top level: seed"
    ):
        experiment_from_dict({"task": "classification", "train": {"epochs": 3}})
    with pytest.raises(ValueError, match=r"unknown key 'model\.cel'; valid keys of 'model'"):
        experiment_from_dict({"task": "classification", "model": {"cel": "gru"}})


def test_predict_classes_keeps_order_and_reads_lengths() -> None:
    torch.manual_seed(0)
    model = SequenceClassifier(
        SequenceClassifierConfig(num_outputs=3, input_size=2, hidden_size=8, pooling="last")
    )
    model.train()
    rng = np.random.default_rng(0)
    samples = [(rng.normal(size=(n, 2)).astype(np.float32), 0) for n in (3, 7, 1, 5, 2)]
    got = predict_classes(model, samples, batch_size=2)  # batches mix lengths
    assert model.training  # the caller's mode is restored
    model.eval()
    with torch.no_grad():
        want = [int(model(torch.as_tensor(x)[None]).argmax(-1)) for x, _ in samples]
    assert got.tolist() == want  # padding never changes a prediction, order is the samples'
