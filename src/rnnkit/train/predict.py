"""Predict with a finished run: score text, predict the test split, forecast ahead; no pickle read.

`load_run` lives in `rnnkit.train.artifact` and is re-exported here.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.data import Vocab
from rnnkit.train.artifact import LoadedRun, load_run
from rnnkit.train.trainer import rebuild

__all__ = [
    "LoadedRun",
    "forecast_ahead",
    "forecast_run",
    "load_run",
    "predict_classes",
    "predict_run",
    "predict_split",
]


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
    return forecast_ahead(loaded, horizon=horizon)


def labeller(loaded: Any) -> Callable[[Any], str]:
    """How a prediction or target of ``loaded``'s test split is written: a class name, a tag name
    per step, a seq2seq output as its string (up to ``<eos>``); anything else as its values."""
    classes = loaded.meta.get("classes") or None
    model_task = getattr(loaded.model.config, "task", "classification")
    if loaded.task == "classification" and classes and model_task == "classification":
        return lambda i: str(classes[int(i)])
    if loaded.task == "tagging" and classes:
        return lambda ids: " ".join(str(classes[int(i)]) for i in ids if 0 <= int(i) < len(classes))
    name = loaded.meta.get("tgt_vocab")
    if loaded.task == "seq2seq" and name:
        vocab = Vocab.load(Path(loaded.meta["_folder"]) / name)
        sep = "" if getattr(loaded.experiment.data, "level", "word") == "char" else " "

        def text(ids: Any) -> str:
            out = []
            for i in ids:
                if int(i) == Vocab.eos_id:
                    break
                if int(i) != Vocab.pad_id:
                    out.append(vocab.decode([int(i)])[0])
            return sep.join(out)

        return text
    return str


@torch.no_grad()
def predict_split(loaded: Any, path: Path) -> dict[str, Any]:
    """Predict the test split of a finished run into ``path`` (CSV: row, prediction, target;
    labels as names and strings where the run knows them, see `labeller`). A run trained on an
    application's in-memory data reads the test split its artifact stored."""
    built = rebuild(loaded)
    model = loaded.model
    data: Any = built.datamodule
    label = labeller(loaded)
    rows: list[tuple[int, str, str]] = []
    for batch in data.test_dataloader():
        if loaded.task == "seq2seq":
            out = model.decode(batch.x, lengths=batch.lengths, max_len=batch.y.shape[1]).tokens
        elif loaded.task == "forecasting":
            cov = getattr(batch, "covariates", None)
            out = model(batch.x, lengths=batch.lengths, covariates=cov).mean
        else:
            out = model(batch.x, lengths=batch.lengths)
            if loaded.task == "tagging" or model.config.task == "classification":
                out = out.argmax(-1)
        if loaded.task == "tagging":  # the real steps only, not the padding
            n = batch.lengths.tolist()
            pairs = [
                (p[:k], t[:k]) for p, t, k in zip(out.tolist(), batch.y.tolist(), n, strict=True)
            ]
        else:
            pairs = list(zip(out.tolist(), batch.y.tolist(), strict=True))
        for p, t in pairs:
            rows.append((len(rows), label(p), label(t)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "prediction", "target"])
        writer.writerows(rows)
    return {"predictions": str(path), "rows": len(rows)}


@torch.no_grad()
def predict_classes(
    model: nn.Module, samples: Sequence[Any], *, batch_size: int = 256
) -> np.ndarray:
    """Class ids ``(N,)`` a classifier predicts for in-memory ``(x, label)`` samples, in order.

    For applications that built their data in memory (per-sample plots, confusion matrices);
    batches are padded with ``collate`` and read through ``lengths`` as in training.
    """
    from rnnkit.data.batching import collate

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(samples), batch_size):
        batch = collate([samples[i] for i in range(start, min(start + batch_size, len(samples)))])
        logits = model(batch.x.to(device), lengths=batch.lengths.to(device))  # (B, C)
        out.append(logits.argmax(-1).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


@torch.no_grad()
def forecast_ahead(loaded: Any, *, horizon: int) -> dict[str, Any]:
    """Roll the forecaster ``horizon`` steps past the last step of the test split."""
    if horizon < 1:
        raise ValueError(f"--horizon must be >= 1, got {horizon}")
    built = rebuild(loaded)
    data: Any = built.datamodule
    if loaded.model.config.covariate_size > 0:
        raise ValueError("forecast ahead needs the future covariates; this model reads covariates")
    x, y = data.parts[2][len(data.parts[2]) - 1][:2]
    # The last window's inputs and targets together end at the series' last step.
    last = np.concatenate([np.asarray(x), np.asarray(y)], axis=0)[-len(x) :]
    window = torch.as_tensor(last, dtype=torch.float32)[None]  # (1, T, Y)
    steps: list[Tensor] = []
    while sum(s.shape[1] for s in steps) < horizon:
        mean = loaded.model(window).mean  # (1, H, Y)
        steps.append(mean)
        window = torch.cat([window, mean], dim=1)[:, -window.shape[1] :]
    forecast = torch.cat(steps, dim=1)[0, :horizon]  # (N, Y)
    scalers = Path(loaded.meta["_folder"]) / "scalers.json"
    units = "scaled"
    if scalers.is_file():
        from rnnkit.data import Scaler

        state = json.loads(scalers.read_text(encoding="utf-8"))
        scaler = Scaler.from_dict(state["scaler"])
        forecast = torch.as_tensor(
            scaler.inverse_transform(
                forecast.numpy().astype(np.float64), columns=range(forecast.shape[1])
            )
        )
        units = "original"
    return {"horizon": horizon, "units": units, "forecast": forecast[:, 0].tolist()}
