"""Application tests run each recipe's ``quick:`` version (CI-sized) on one thread."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread for the test, the caller's count restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _runs_keep_their_test_split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every run an application test leaves (under pytest's temporary folders) stores its test
    split, so `rnnkit test/predict/export` can use it; a sample the split file cannot hold (music's
    chorales once went in as Python lists) is recorded as ``test_split_error`` and fails here."""
    before = set(tmp_path_factory.getbasetemp().rglob("model.json"))
    yield
    for path in set(tmp_path_factory.getbasetemp().rglob("model.json")) - before:
        error = json.loads(path.read_text()).get("test_split_error")
        assert error is None or error == "the data had no test split", f"{path}: {error}"
