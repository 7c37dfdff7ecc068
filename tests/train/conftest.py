"""Tiny experiments that train in seconds on 2 CPU cores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from rnnkit.train.config import (
    EarlyStoppingConfig,
    RunConfig,
    SchedulerConfig,
    TBPTTConfig,
    TextDataConfig,
    TrainerConfig,
)
from rnnkit.train.specs import LanguageModelExperiment, LanguageModelSpec


@pytest.fixture(autouse=True)
def _keep_threads() -> Iterator[None]:
    """Runs may set torch's thread count (trainer.num_threads); give the next test its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_lm(tmp_path: Path) -> Callable[..., LanguageModelExperiment]:
    """``tiny_lm(name, **trainer_overrides)``: a 2k-parameter char LM on 3,000 chars of pydoc."""

    def make(
        name: str = "run", *, dropout: float = 0.0, k2: int | None = None, **trainer: Any
    ) -> LanguageModelExperiment:
        t = dict(
            num_threads=1,
            max_steps=12,
            val_check_interval=4,
            log_every_n_steps=2,
            enable_progress_bar=False,
            deterministic=True,
        )
        t.update(trainer)
        return LanguageModelExperiment(
            seed=3,
            data=TextDataConfig(
                source="pydoc_topics", max_chars=3000, batch_size=4, val_batch_size=2
            ),
            model=LanguageModelSpec(embedding_dim=8, hidden_size=16, dropout=dropout),
            tbptt=TBPTTConfig(k1=16, k2=k2, reset_every=5),
            scheduler=SchedulerConfig(name="cosine", warmup_steps=2),
            trainer=TrainerConfig(**t),
            early_stopping=EarlyStoppingConfig(enabled=False),
            run=RunConfig(root=str(tmp_path), name=name, plot=False),
            sample_chars=0,
        )

    return make
