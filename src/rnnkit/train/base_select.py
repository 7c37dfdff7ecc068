"""A hybrid forecaster's bare base and its equal-weight combination with the hybrid as the last
candidate checkpoints, chosen on validation only.

A hybrid (``model.base``) forecasts ``base + base_scale * head``; its head starts at zero, so the
untrained model *is* the statistical base. Training can still end worse than that start on the
windows it is judged by: short yearly or monthly series give the correction little to learn and
much to overfit. The M competitions' lesson is that a combination of forecasts beats picking
one, so there is a third candidate between the two: the equal-weight mean of the base and the
hybrid, ``base + 0.5 * base_scale * head`` (the head's last layer halved).

With ``model.base_select: validation`` (the default) the run validates, on the whole validation
split and by the run's monitor, the best checkpoint (``hybrid``), the same model with its head
halved (``combined``) and with its head zeroed (``base``), and keeps the best; a tie keeps the
simpler one (base, then combined), so the hybrid cannot end behind its base on validation. The
rule is fixed here, before any test score, and the choice is made once, at the end of
`rnnkit.train.fit`; it never reads the test split.

Each candidate is stored as what it is: only the head's weights change (zero, or halved), so
``rnnkit predict``/``evaluate``/`rnnkit.Predictor`/``rnnkit export`` reproduce it with no flag
to honour. For a Gaussian head the halved layer halves the log-variance too (relative to the
base's own, ``log_var 0``): the combination's variance is the geometric mean of the two. The
decision and the three validation values go to ``summary.json`` and ``model.json``
(``base_select``). The best checkpoint keeps the trained head.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from rnnkit.train.tasks.base import Built

# Simplest first: a tie keeps the earlier one.
CANDIDATES = {"base": 0.0, "combined": 0.5, "hybrid": 1.0}  # name -> the head's factor


def selects_base(experiment: Any) -> bool:
    """Whether a run of ``experiment`` ends by choosing between its hybrid, the combination and
    the bare base."""
    model = getattr(experiment, "model", None)
    return (
        experiment.task == "forecasting"
        and getattr(model, "base", "none") != "none"
        and getattr(model, "base_select", "never") == "validation"
    )


@torch.no_grad()
def scale_correction(model: torch.nn.Module, factor: float) -> None:
    """Multiply a hybrid forecaster's correction by ``factor``: its head (the last layer,
    linear) scaled, so the mean is ``base + factor * correction`` exactly. ``factor`` 0 is the
    bare base (mean = the base; a Gaussian's variance the base's training RMS error squared)."""
    head = model.head
    assert isinstance(head, torch.nn.Linear)
    head.weight.mul_(factor)
    head.bias.mul_(factor)


def _best(values: dict[str, float], mode: str) -> str:
    """The candidate with the best finite value, the simplest among equals (``base`` when none
    is finite)."""
    chosen, best = "base", math.nan
    for name in CANDIDATES:
        value = values[name]
        if not math.isfinite(value):
            continue
        if not math.isfinite(best) or (value < best if mode == "min" else value > best):
            chosen, best = name, value
    return chosen


def select_base(
    built: Built, metrics: dict[str, float], *, monitor: str, mode: str, accelerator: str = "auto"
) -> dict[str, Any]:
    """Validate the bare base and the combination of ``built.module.model`` (holding the best
    checkpoint, whose validation is in ``metrics``); leave the model as the best of the three by
    ``monitor``. Returns the decision; ``metrics`` then holds the chosen model's ``val_*``."""
    model = built.module.model
    trained = {k: v.clone() for k, v in model.head.state_dict().items()}
    # A trainer of its own: the run's logger would add the candidates' rows to metrics.csv,
    # where they would read as more validations of the training curve.
    judge = built.scoring_trainer(accelerator)
    found: dict[str, dict[str, float]] = {}
    for name, factor in CANDIDATES.items():
        if factor == 1.0:
            continue  # the best checkpoint, validated already
        model.head.load_state_dict(trained)
        scale_correction(model, factor)
        results = judge.validate(built.module, datamodule=built.datamodule, verbose=False)
        found[name] = {k: float(v) for k, v in (results[0] if results else {}).items()}
    values = {name: found.get(name, metrics).get(monitor, math.nan) for name in CANDIDATES}
    chosen = _best(values, mode)
    model.head.load_state_dict(trained)
    scale_correction(model, CANDIDATES[chosen])
    metrics.update(found.get(chosen, {}))
    return {
        "rule": "validation",
        "monitor": monitor,
        **{name: v if math.isfinite(v) else None for name, v in values.items()},
        "chosen": chosen,
    }
