"""A run's artifact as a model: rebuild it from ``model.json`` and load ``model.safetensors``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from rnnkit.artifact import load_artifact
from rnnkit.data.text import Vocab
from rnnkit.models.ensemble import EnsembleClassifier
from rnnkit.train.ensemble import is_ensemble, read_ensemble


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

    if is_ensemble(run_dir):
        body, folders = read_ensemble(run_dir)
        arts = [load_artifact(folder) for folder in folders]
        model = EnsembleClassifier([a.model for a in arts]).eval()
        meta = {**arts[0].meta, "ensemble": body}
        experiment = experiment_from_dict(body["experiment"])
        return LoadedRun(Path(run_dir), arts[0].task, model, meta, experiment, arts[0].vocab)
    art = load_artifact(run_dir)
    experiment = experiment_from_dict(art.meta.get("experiment", {"task": art.task}))
    return LoadedRun(Path(run_dir), art.task, art.model, art.meta, experiment, art.vocab)
