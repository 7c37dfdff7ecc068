"""A run's artifact as a model: rebuild it from ``model.json`` and load ``model.safetensors``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from rnnkit.artifact import load_artifact
from rnnkit.data.text import Vocab


@dataclass
class LoadedRun:
    """A run's model (eval mode, CPU), its experiment config and its vocab/scalers."""

    run_dir: Path
    task: str
    model: nn.Module
    meta: dict[str, Any]
    experiment: Any
    vocab: Vocab | None


def load_run(run_dir: str | os.PathLike[str]) -> LoadedRun:
    """Rebuild the model of ``run_dir/artifact`` (`rnnkit.artifact`, Lightning-free, integrity
    checked) and add the experiment it was trained by, as typed config.

    A seed ensemble's folder (``ensemble.json``) gives its members as one `EnsembleClassifier`
    (averaged probabilities), with the first member's vocab/scalers and the ensemble's experiment.
    """
    from rnnkit.train.experiment_io import experiment_from_dict

    art = load_artifact(run_dir)
    recorded = art.meta["ensemble"]["experiment"] if "ensemble" in art.meta else None
    experiment = experiment_from_dict(recorded or art.meta.get("experiment", {"task": art.task}))
    return LoadedRun(Path(run_dir), art.task, art.model, art.meta, experiment, art.vocab)
