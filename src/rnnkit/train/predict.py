"""Load a finished run's artifact (safetensors + JSON) and predict with it; no pickle is read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from rnnkit.artifact import load_artifact
from rnnkit.data import Vocab


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
    """Rebuild the model of ``run_dir/artifact`` (``rnnkit.artifact``, Lightning-free) and add the
    experiment it was trained by, as typed config."""
    from rnnkit.train.experiment_io import experiment_from_dict

    art = load_artifact(run_dir)
    experiment = experiment_from_dict(art.meta.get("experiment", {"task": art.task}))
    return LoadedRun(Path(run_dir), art.task, art.model, art.meta, experiment, art.vocab)


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
    run_dir: str | os.PathLike[str], *, text: str | None = None, out: str | None = None
) -> dict[str, Any]:
    """Language model: score ``text``. Other tasks: predict the run's test split into a CSV."""
    loaded = load_run(run_dir)
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
    from rnnkit.train.seq_tasks import forecast_ahead

    return forecast_ahead(loaded, horizon=horizon)
