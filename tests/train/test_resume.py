"""A run killed and resumed from last.ckpt ends with the same weights as an uninterrupted one."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch

from rnnkit.train.run import load_checkpoint
from rnnkit.train.trainer import fit


class _Kill(L.Callback):
    """Raise mid-epoch after ``step`` optimiser steps, as a killed process would stop."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step >= self.step:
            raise RuntimeError("killed")


def _weights(run_dir: Any) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]


@pytest.mark.parametrize("k2", [None, 24])
def test_resume_after_kill_equals_uninterrupted(tiny_lm: Any, k2: int | None) -> None:
    # 3,000 chars in 4 streams of 16 -> 12 chunks an epoch: 30 steps cross two epoch ends; the kill
    # at step 17 resumes from step 16 (mid-epoch, carried state, after a validation).
    common = dict(max_steps=30, checkpoint_every_n_steps=4, val_check_interval=8)
    full = fit(tiny_lm("full", dropout=0.1, k2=k2, **common), final_eval=False)
    with pytest.raises(RuntimeError, match="killed"):
        fit(tiny_lm("cut", dropout=0.1, k2=k2, **common), callbacks=[_Kill(17)], final_eval=False)
    assert (
        load_checkpoint(full.run_dir.parent / "cut" / "checkpoints" / "last.ckpt")["global_step"]
        == 16
    )
    resumed = fit(
        tiny_lm("cut", dropout=0.1, k2=k2, **common),
        resume=str(full.run_dir.parent / "cut"),
        final_eval=False,
    )
    a, b = _weights(full.run_dir), _weights(resumed.run_dir)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_resume_without_checkpoint_fails_clearly(tiny_lm: Any, tmp_path: Any) -> None:
    with pytest.raises(ValueError, match=r"cannot resume: checkpoint .*last\.ckpt does not exist"):
        fit(tiny_lm("nothing"), resume=str(tmp_path / "nothing"))


def test_resume_with_incompatible_config_fails_clearly(tiny_lm: Any) -> None:
    first = fit(tiny_lm("a", max_steps=4), final_eval=False)
    other = tiny_lm("a", max_steps=8)
    other.model.hidden_size = 24
    with pytest.raises(ValueError, match="does not fit this config's model"):
        fit(other, resume=str(first.run_dir))
