"""Fixtures for model tests: a plain PyTorch training loop (Adam, full control, no Lightning)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor, nn

Fit = Callable[..., list[float]]


def _fit(
    model: nn.Module,
    loss_fn: Callable[[int], Tensor],
    *,
    steps: int,
    lr: float = 1e-2,
    clip: float = 1.0,
) -> list[float]:
    """Train ``model`` for ``steps`` Adam steps on ``loss_fn(step)``; return the loss curve."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for step in range(steps):
        optimiser.zero_grad()
        loss = loss_fn(step)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimiser.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@pytest.fixture
def fit() -> Fit:
    return _fit


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models run many small ops; a second intra-op thread only adds sync cost (measured:
    seq2seq training 10x slower with 2 threads than 1 on the 2-core CI machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
