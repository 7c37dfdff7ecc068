"""A hybrid forecaster's bare base as the last candidate checkpoint, chosen on validation only.

A hybrid (``model.base``) forecasts ``base + base_scale * head``; its head starts at zero, so the
untrained model *is* the statistical base. Training can still end worse than that start on the
windows it is judged by: short yearly or monthly series give the correction little to learn and
much to overfit. With ``model.base_select: validation`` (the default) the run compares, on the
whole validation split and by the run's monitor, the best checkpoint with the same model whose
head is zeroed; the correction is kept only where it is strictly better, so the hybrid cannot
end behind its base on validation (a tie keeps the simpler base). The choice is made once, at
the end of `rnnkit.train.fit`, and never reads the test split.

The chosen bare base is stored as what it is: the artifact's head weights are zero, so
``rnnkit predict``/``evaluate``/`rnnkit.Predictor` reproduce it with no flag to honour; the
decision and both validation values go to ``summary.json`` and ``model.json`` (``base_select``).
The best checkpoint keeps the trained head.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from rnnkit.train.tasks.base import Built


def selects_base(experiment: Any) -> bool:
    """Whether a run of ``experiment`` ends by choosing between its hybrid and the bare base."""
    model = getattr(experiment, "model", None)
    return (
        experiment.task == "forecasting"
        and getattr(model, "base", "none") != "none"
        and getattr(model, "base_select", "never") == "validation"
    )


@torch.no_grad()
def zero_correction(model: torch.nn.Module) -> None:
    """Make a hybrid forecaster its bare base: the head's output 0 (mean = the base; a Gaussian's
    variance the base's training RMS error squared)."""
    head = model.head
    assert isinstance(head, torch.nn.Linear)
    head.weight.zero_()
    head.bias.zero_()


def select_base(
    built: Built, metrics: dict[str, float], *, monitor: str, mode: str, accelerator: str = "auto"
) -> dict[str, Any]:
    """Validate the bare base of ``built.module.model`` (holding the best checkpoint, whose
    validation is in ``metrics``); keep it zeroed unless the hybrid is strictly better by
    ``monitor``. Returns the decision; ``metrics`` then holds the chosen model's ``val_*``."""
    model = built.module.model
    hybrid = float(metrics.get(monitor, math.nan))
    trained = {k: v.clone() for k, v in model.head.state_dict().items()}
    zero_correction(model)
    # A trainer of its own: the run's logger would add the base's row to metrics.csv, where it
    # would read as one more validation of the training curve.
    judge = L.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=built.use_distributed_sampler,
    )
    results = judge.validate(built.module, datamodule=built.datamodule, verbose=False)
    bare_metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    bare = bare_metrics.get(monitor, math.nan)
    better = hybrid < bare if mode == "min" else hybrid > bare
    keep = math.isfinite(hybrid) and (better or not math.isfinite(bare))
    if keep:
        model.head.load_state_dict(trained)
    else:
        metrics.update(bare_metrics)
    return {
        "rule": "validation",
        "monitor": monitor,
        "hybrid": hybrid if math.isfinite(hybrid) else None,
        "base": bare if math.isfinite(bare) else None,
        "chosen": "hybrid" if keep else "base",
    }
