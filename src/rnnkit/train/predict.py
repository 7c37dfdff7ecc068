"""Predict with a finished run: score text, predict the test split, forecast ahead; no pickle read.

`load_run` lives in `rnnkit.train.artifact` and is re-exported here.
"""

from __future__ import annotations

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
from rnnkit.train.predict_files import write_csv
from rnnkit.train.trainer import rebuild

__all__ = [
    "LoadedRun",
    "forecast_ahead",
    "forecast_run",
    "load_run",
    "next_token_scores",
    "predict_classes",
    "predict_next",
    "predict_run",
    "predict_split",
    "rankable",
    "target_ranks",
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
    top_k: int | None = None,
) -> dict[str, Any]:
    """Language model: score ``text``; without it, a model of independent sequences
    (``data.mode: sequences``) ranks the next token of each test sequence (`predict_next`, the
    ``top_k`` best listed). Other tasks: predict the user's raw file ``input_path`` (runs trained
    on files; ``future``: future covariates of the forecast steps), else the run's test split,
    into a CSV."""
    loaded = load_run(run_dir)
    if input_path is not None:
        from rnnkit.train.predict_files import predict_file

        target = Path(out) if out else Path(run_dir) / "predictions.csv"
        return predict_file(loaded, input_path, target, future=future)
    path = Path(out) if out else Path(run_dir) / "predictions.csv"
    if loaded.task == "language_model":
        if text is None and getattr(loaded.experiment.data, "mode", None) == "sequences":
            return predict_next(loaded, path, top_k=top_k)
        if text is None:
            raise ValueError(
                "predict on a language-model run needs --text (or use rnnkit generate)"
            )
        if loaded.vocab is None:
            raise ValueError(
                f"{run_dir} is a language model over an application's own token ids (no "
                "vocab.json), so there is no text to score; without --text, predict ranks the "
                "next token of each test sequence"
            )
        return score_text(loaded.model, loaded.vocab, text)
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
    write_csv(path, ["row", "prediction", "target"], rows)
    return {"predictions": str(path), "rows": len(rows)}


def _length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


@torch.no_grad()
def next_token_scores(model: Any, histories: Sequence[Tensor], *, batch_size: int = 32) -> Tensor:
    """Next-token logits ``(N, V)`` (float32, CPU) after each whole history of token ids.

    Histories go through the model batched by length (similar lengths together, little padding)
    and only each one's last step through the output layer (`LanguageModel.last_logits`): the
    full ``(B, T, V)`` projection would cost as much as a training epoch's forward pass when it
    runs on every validation epoch."""
    was_training = model.training
    model.eval()
    out = torch.empty(len(histories), model.config.vocab_size)
    device = next(model.parameters()).device
    for idx in _length_batches([len(h) for h in histories], batch_size):
        rows = [torch.as_tensor(histories[i], dtype=torch.int64) for i in idx]
        x = nn.utils.rnn.pad_sequence(rows, batch_first=True).to(device)  # (B, T)
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.int64, device=device)
        out[idx] = model.last_logits(x, lengths=lengths).float().cpu()  # (B, V)
    model.train(was_training)
    return out


def rankable(
    scores: Tensor,
    histories: Sequence[Tensor],
    *,
    exclude: Sequence[int] = (),
    exclude_seen: bool = False,
) -> Tensor:
    """``scores`` ``(N, V)`` as float64 with the tokens that may not be offered at -inf: the ids
    in ``exclude`` (padding) and, with ``exclude_seen``, those already in each row's history."""
    never = torch.zeros(scores.shape[1], dtype=torch.bool)
    never[list(exclude)] = True
    out = scores.double().masked_fill(never, float("-inf"))
    if exclude_seen:
        for row, h in enumerate(histories):
            out[row, torch.as_tensor(h).long()] = float("-inf")
    return out


def target_ranks(scores: Tensor, targets: Tensor) -> Tensor:
    """1-based rank of each target among the scores ``(N, V)``; ties count against the target."""
    return (scores >= scores.gather(1, targets[:, None])).sum(dim=1)


def _test_sequences(loaded: Any) -> tuple[list[Any], dict[str, Any]]:
    """A sequences language model's test split and its data meta (the stored split of a run an
    application trained in memory, else the one its config reads)."""
    from rnnkit.train.in_memory import stored_parts
    from rnnkit.train.trainer import IN_MEMORY

    data = stored_parts(loaded.meta) if loaded.meta.get("data") == IN_MEMORY else None
    datamodule: Any = rebuild(loaded, data=data).datamodule
    test = datamodule.parts[2]
    if not test:
        raise ValueError(f"{loaded.run_dir} has no test sequences to predict")
    return [np.asarray(s) for s in test], (dict(data.meta) if data is not None else {})


@torch.no_grad()
def predict_next(loaded: Any, path: Path, *, top_k: int | None = None) -> dict[str, Any]:
    """Rank the next token of each test sequence of a sequences language model into ``path``.

    Each sequence's last token is held out and ranked among every token the model scores after
    the rest (the history): what a next-item recommender's leave-one-out test asks, and what
    "predict the test split" means for a language model. The CSV has one row per sequence: the
    ``top_k`` best ids (space-separated, best first), the held-out id and its 1-based rank (ties
    count against it), plus their names when the run stored ``token_names``.

    The data meta an application stored may set ``next_token``: ``{"top_k": k, "exclude_seen":
    bool, "exclude": [ids]}`` -- its own list length, whether tokens already in the history are
    left out of the ranking (a recommender does not offer what the user had), and ids never
    ranked (padding). Returns the path, the rows, ``hr@k`` (share of held-out tokens in the top
    k) and ``mrr`` (mean reciprocal rank).
    """
    sequences, meta = _test_sequences(loaded)
    rules = meta.get("next_token") or {}
    k = int(top_k if top_k is not None else rules.get("top_k", 10))
    if k < 1:
        raise ValueError(f"--top_k must be >= 1, got {k}")
    short = next((i for i, s in enumerate(sequences) if len(s) < 2), None)
    if short is not None:
        raise ValueError(f"test sequence {short} has fewer than 2 tokens: no history to rank from")
    histories = [torch.as_tensor(s[:-1], dtype=torch.int64) for s in sequences]
    targets = torch.as_tensor(np.array([int(s[-1]) for s in sequences]), dtype=torch.int64)
    scores = rankable(
        next_token_scores(loaded.model, histories),
        histories,
        exclude=[int(i) for i in rules.get("exclude", [])],
        exclude_seen=bool(rules.get("exclude_seen", False)),
    )  # (N, V)
    rank = target_ranks(scores, targets)
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices  # (N, k), best first
    names = meta.get("token_names") or (loaded.vocab.tokens if loaded.vocab is not None else None)
    header = ["row", "prediction", "target", "rank"]
    if names:
        header += ["prediction_names", "target_name"]
    lines = []
    for row, (ids, target, r) in enumerate(
        zip(top.tolist(), targets.tolist(), rank.tolist(), strict=True)
    ):
        line = [row, " ".join(map(str, ids)), target, r]
        if names:
            line += [" | ".join(str(names[i]) for i in ids), names[target]]
        lines.append(line)
    write_csv(path, header, lines)
    return {
        "predictions": str(path),
        "rows": len(sequences),
        "top_k": k,
        f"hr@{k}": float((rank <= k).double().mean()),
        "mrr": float((1.0 / rank.double()).mean()),
    }


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
