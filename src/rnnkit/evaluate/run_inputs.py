"""What the baselines of a run read when it is not on the user's files: the data it was built on.

A run on the user's files carries its baseline inputs (`rnnkit.train.user_data.UserFiles`). Any
other run (a registry set, a synthetic task, `build(experiment, data=DataParts(...))`) has them
read here from its `Built`: the samples of its datamodule, or a language model's corpus, in the
very units and on the very split the model is scored on. ``run_inputs`` returns the suite's name
(a key of `rnnkit.evaluate.reference.HEADLINE`) and plain NumPy/list inputs for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnkit.data.text import Vocab


def _samples(split: Any) -> list[Any]:
    """The samples of a split (a list, a `Samples` or a `SequenceDataset`)."""
    return [split[i] for i in range(len(split))]


def _label(y: Any) -> Any:
    a = np.asarray(y)
    return a.item() if a.size == 1 else a.astype(np.float64).ravel()


def _series(samples: list[Any]) -> tuple[list[np.ndarray], list[Any]]:
    xs = [np.asarray(x, dtype=np.float64).reshape(len(x), -1) for x, *_ in samples]
    return xs, [_label(s[1]) for s in samples]


def _ids(seq: Any) -> list[int]:
    return [int(t) for t in np.asarray(seq).reshape(-1)]


def _tokens(built: Any) -> list[str] | None:
    """The token strings of the run's vocabulary file, if it has one."""
    text = built.files.get("vocab.json")
    return None if text is None else list(json.loads(text)["tokens"])


def _texts(samples: list[Any], tokens: list[str] | None) -> tuple[list[str], list[Any]]:
    """Token ids as the whitespace-joined words TF-IDF reads (the ids themselves without a
    vocabulary); the model and the baseline see the same tokens."""

    def word(i: int) -> str:
        return tokens[i] if tokens is not None and 0 <= i < len(tokens) else f"#{i}"

    texts = [" ".join(word(i) for i in _ids(x)) for x, *_ in samples]
    return texts, [_label(s[1]) for s in samples]


def _target(seq: Any) -> tuple[int, ...]:
    """A seq2seq target as the decoder is scored on it: without a leading ``<bos>``."""
    ids = _ids(seq)
    return tuple(ids[1:] if ids and ids[0] == Vocab.bos_id else ids)


def _forecast(built: Any, experiment: Any, held: list[Any], split: str) -> dict[str, Any]:
    """Whole histories when the builder recorded them (a registry series), else each window's
    own input as its history: each forecast sees only the steps before its origin."""
    horizon = int(np.asarray(held[0][1]).shape[0])
    season = experiment.data.season or built.reference.get("season", 1)
    scale = float(built.baselines.get("naive_scale", 0.0))
    if "series" in built.reference:
        origins = built.reference["origins"][split]
        series = built.reference["series"]
        return {
            "series": series,
            "origins": [origins] * len(series),
            "horizon": horizon,
            "season": season,
            "naive_scale": scale,
        }
    series, origins = [], []
    for x, y, *_ in held:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        for j in range(y.shape[-1]):  # targets are the first input channels
            series.append(np.concatenate([x[:, j], y[:, j]]))
            origins.append([len(x)])
    return {
        "series": series,
        "origins": origins,
        "horizon": horizon,
        "season": season,
        "naive_scale": scale,
    }


def run_inputs(built: Any, experiment: Any, *, split: str) -> tuple[str, dict[str, Any]] | None:
    """(suite, inputs) of the baselines of ``built``, scored on ``split`` ("val" or "test");
    None for a datamodule an application wrote itself (its samples are not ours to read)."""
    task = experiment.task
    if task == "language_model" and hasattr(built.datamodule, "corpus"):
        corpus = built.datamodule.corpus
        return "language_model", {
            "train": [corpus.train],
            "test": [getattr(corpus, split)],
            "vocab_size": len(corpus.vocab),
        }
    parts = getattr(built.datamodule, "parts", None)
    if parts is None or parts[1] is None or (split == "test" and parts[2] is None):
        return None
    train, val = _samples(parts[0]), _samples(parts[1])
    if not train:  # a run rebuilt from its stored test split alone: nothing to fit a baseline on
        return None
    held = val if split == "val" else _samples(parts[2])
    if task == "language_model":
        seqs: list[Sequence[int]] = [_ids(s) for s in train]
        return "sequence_lm", {
            "train": seqs,
            "test": [_ids(s) for s in held],
            "vocab_size": int(built.model_config.vocab_size),
        }
    if task == "classification":
        config = built.module.model.config
        if getattr(config, "vocab_size", None):
            tokens = _tokens(built)
            return "text", {
                "train": _texts(train, tokens),
                "val": _texts(val, tokens),
                "test": _texts(held, tokens),
            }
        steps = built.reference.get("unframed")  # a framed set: 1-NN reads the steps
        if steps is not None:
            train = _samples(steps[0])
            held = _samples(steps[1] if split == "val" else steps[2])
        return config.task, {"train": _series(train), "test": _series(held)}
    if task == "tagging":

        def tagged(samples: list[Any]) -> tuple[list[list[int]], list[list[int]]]:
            return [_ids(x) for x, _ in samples], [_ids(y) for _, y in samples]

        return "tagging", {"train": tagged(train), "test": tagged(held)}
    if task == "seq2seq":
        return "seq2seq_ids", {
            "train_targets": [_target(y) for _, y in train],
            "test_targets": [_target(y) for _, y in held],
        }
    if task == "forecasting":
        return "forecasting", _forecast(built, experiment, held, split)
    raise ValueError(f"no baseline suite for task {task!r}")
