"""Load a finished run's artifact (safetensors + JSON) and predict with it; no pickle is read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from rnnkit.data import Vocab
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


def score_text(model: nn.Module, vocab: Vocab, text: str) -> dict[str, float]:
    """Bits per character of ``text`` under a language model (from the zero state)."""
    import math

    import torch

    ids = torch.from_numpy(vocab.encode_chars(text).astype("int64"))[None]  # (1, N)
    if ids.shape[1] < 2:
        raise ValueError("--text needs at least 2 characters to score")
    with torch.no_grad():
        nats = float(model.loss(ids))  # type: ignore[operator]
    return {"chars": float(ids.shape[1]), "nats": nats, "bpc": nats / math.log(2)}


def predict_run(
    run_dir: str | os.PathLike[str],
    *,
    text: str | None = None,
    out: str | None = None,
    input_path: str | None = None,
    future: str | None = None,
) -> dict[str, Any]:
    """Language model: score ``text``. Other tasks: predict the user's raw file ``input_path``
    (runs trained on files; ``future``: future covariates of the forecast steps), else the run's
    test split, into a CSV."""
    loaded = load_run(run_dir)
    if input_path is not None:
        from rnnkit.train.predict_files import predict_file

        target = Path(out) if out else Path(run_dir) / "predictions.csv"
        return predict_file(loaded, input_path, target, future=future)
    if loaded.task == "language_model":
        if text is None:
            raise ValueError(
                "predict on a language-model run needs --text (or use rnnkit generate)"
            )
        assert loaded.vocab is not None
        return score_text(loaded.model, loaded.vocab, text)
    from rnnkit.train.seq_tasks import predict_split

    path = Path(out) if out else Path(run_dir) / "predictions.csv"
    return predict_split(loaded, path)


def forecast_run(run_dir: str | os.PathLike[str], *, horizon: int) -> dict[str, Any]:
    """Forecast ``horizon`` steps past the end of a forecasting run's series."""
    loaded = load_run(run_dir)
    if loaded.task != "forecasting":
        raise ValueError(f"{run_dir} holds a {loaded.task} model; forecast needs a forecasting run")
    if loaded.meta.get("encoder"):
        raise ValueError(
            f"{run_dir} was trained on your files; forecast them with "
            f"rnnkit predict --run {run_dir} --input HISTORY.csv"
        )
    from rnnkit.train.seq_tasks import forecast_ahead

    return forecast_ahead(loaded, horizon=horizon)
