"""A run's artifact as a model: rebuild it from ``model.json`` and load ``model.safetensors``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from rnnkit.data.text import Vocab
from rnnkit.train.run import load_weights, read_artifact_meta

_MODEL_CLASSES = {
    "LanguageModel": ("LanguageModel", "LanguageModelConfig"),
    "SequenceClassifier": ("SequenceClassifier", "SequenceClassifierConfig"),
    "SequenceTagger": ("SequenceTagger", "SequenceTaggerConfig"),
    "Forecaster": ("Forecaster", "ForecasterConfig"),
    "Seq2Seq": ("Seq2Seq", "Seq2SeqConfig"),
}


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
    """Rebuild the model of ``run_dir/artifact`` from ``model.json`` and load its weights."""
    import rnnkit.models as models
    from rnnkit.train.experiment_io import experiment_from_dict

    meta = read_artifact_meta(run_dir)
    folder = Path(meta["_folder"])
    names = _MODEL_CLASSES.get(meta.get("model_class", ""))
    if names is None:
        raise ValueError(
            f"{folder / 'model.json'}: unknown model_class {meta.get('model_class')!r}"
        )
    cls, cfg_cls = getattr(models, names[0]), getattr(models, names[1])
    try:
        config = cfg_cls(**meta["model_config"])
    except TypeError as err:
        raise ValueError(
            f"{folder / 'model.json'}: model_config does not fit {names[1]}: {err}"
        ) from None
    model = cls(config)
    load_weights(model, folder)
    model.eval()
    vocab = Vocab.load(folder / meta["vocab"]) if meta.get("vocab") else None
    experiment = experiment_from_dict(meta.get("experiment", {"task": meta["task"]}))
    return LoadedRun(Path(run_dir), meta["task"], model, meta, experiment, vocab)
