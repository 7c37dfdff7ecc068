"""CLI runs may change torch's thread count; restore it for the tests that follow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _keep_threads() -> Iterator[None]:
    """Runs may set torch's thread count (trainer.num_threads); give the next test its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
