"""Shared test fixtures: every test starts from a fixed seed; hypothesis profiles sized for 2 CPU
cores; the C++ extension is built (once, cached) so the fused paths are the ones tested."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("RNNKIT_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session", autouse=True)
def _extension() -> None:
    """The fused C++ path under test: ``make test`` runs after the install step built it; a
    checkout without the build compiles it once here (cached, like the install step does)."""
    from rnnkit import _ext

    if _ext.ops() is None:
        _ext.build()


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
