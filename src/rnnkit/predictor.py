"""One object from raw input to answer, for every task, on torch or on ONNX Runtime.

``Predictor.from_run(dir)`` loads a run's artifact (safetensors + JSON, ``rnnkit.artifact``) and
runs the model eagerly; ``Predictor.from_onnx(file)`` loads an exported model and the
preprocessing JSON beside it (``rnnkit export``). Both answer the same way:

- ``predict([raw, ...])``: text -> label and probabilities; a series -> forecast with intervals; a
  sequence -> tags; a source string -> target; text under a language model -> bits per token and
  the next token's distribution;
- ``generate(prompt)``: the language model's continuation, token by token;
- ``open_stream()`` -> ``stream.step(x)``: one step at a time, the state kept between calls, and
  ``step_many`` advancing many independent streams as one batched step (the server's micro-batch).

This module imports no training code (no Lightning): it is what ``rnnkit serve`` runs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.text import word_tokenize

States = dict[str, np.ndarray]  # one stream's state: name -> (L*D, 1, size) float32
INTERVALS = (0.8, 0.95)  # central prediction intervals of a Gaussian forecast


@dataclass
class Preprocessing:
    """Everything between raw input and the model's tensors, as plain JSON data."""

    task: str
    model_class: str
    config: dict[str, Any]  # the model config (vocab sizes, horizon, distribution, ids ...)
    state: dict[str, list[int]]  # main (or decoder) state tensor name -> [L*D, size]
    streaming: str | None  # None when the model streams; else why it cannot
    vocab: list[str] | None = None  # token inputs (the source side of seq2seq)
    tgt_vocab: list[str] | None = None  # seq2seq targets
    tokenizer: str | None = None  # "chars", "words" or "words_lower" for string inputs
    classes: list[str] | None = None  # classifier / tagger output names
    scaler: dict[str, Any] | None = None  # {"shift", "scale"} of the input features (model units)
    target_columns: list[int] | None = None  # forecasting: which scaled columns are the targets
    frame: int = 1  # numeric classifiers: raw steps stacked into one model step (data.frame)

    @staticmethod
    def from_artifact(art: Any, model: Any) -> Preprocessing:
        from rnnkit.export._graph import state_shapes, streaming_blocker

        config = asdict(model.config)
        scaler, targets = None, None
        if art.scalers:
            scaler = {k: art.scalers["scaler"][k] for k in ("shift", "scale")}
            if "targets" in art.scalers:
                cols = list(art.scalers["columns"])
                targets = [cols.index(t) for t in art.scalers["targets"]]
        elif art.encoder and art.encoder.get("kind") == "sequences" and art.encoder["scaler"]:
            # a run on the user's own numeric files: its training-split scaler (encoder.json),
            # so a server takes the same raw values as `rnnkit predict --input`
            scaler = {k: art.encoder["scaler"][k] for k in ("shift", "scale")}
        tokenizer = None
        if art.vocab is not None:
            tokenizer = {"language_model": "chars" if art.level == "char" else "words"}.get(
                art.task, "chars" if art.task == "seq2seq" else "words_lower"
            )
        return Preprocessing(
            task=art.task,
            model_class=type(model).__name__,
            config=config,
            state=state_shapes(model),
            streaming=streaming_blocker(model),
            vocab=art.vocab.tokens if art.vocab is not None else None,
            tgt_vocab=art.tgt_vocab.tokens if art.tgt_vocab is not None else None,
            tokenizer=tokenizer,
            classes=art.classes,
            scaler=scaler,
            target_columns=targets,
            frame=int(art.meta.get("frame", 1)),
        )


class Predictor:
    """Raw input in, answer out; see the module docstring. Build with ``from_run``/``from_onnx``."""

    def __init__(self, runtime: Any, prep: Preprocessing, *, source: str) -> None:
        self.runtime = runtime
        self.prep = prep
        self.source = source
        self.task = prep.task
        self._stoi = {t: i for i, t in enumerate(prep.vocab)} if prep.vocab else None
        cfg = prep.config
        self._vocab_size: int | None = cfg.get("vocab_size") or cfg.get("src_vocab_size")
        self._float_width = cfg.get("input_size") or (
            cfg.get("target_size") if prep.task == "forecasting" else None
        )

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike[str]) -> Predictor:
        """The model of a run directory (or artifact folder), run eagerly in torch."""
        from rnnkit.artifact import load_artifact
        from rnnkit.export.runtime import TorchRuntime

        art = load_artifact(run_dir)
        return cls(
            TorchRuntime(art.model),
            Preprocessing.from_artifact(art, art.model),
            source=str(run_dir),
        )

    @classmethod
    def from_onnx(cls, path: str | os.PathLike[str], *, threads: int | None = None) -> Predictor:
        """An exported model: ``path`` is the ``.onnx`` file ``rnnkit export`` wrote (its
        ``.json`` metadata beside it)."""
        from rnnkit.export._graph import EXPORT_FORMAT, GraphSpec
        from rnnkit.export.runtime import OnnxRuntime

        meta_path = Path(path).with_suffix(".json")
        if not meta_path.is_file():
            raise ValueError(f"{meta_path} is missing: export writes it beside {Path(path).name}")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != EXPORT_FORMAT:
            raise ValueError(f"{meta_path}: format {meta.get('format')!r} is not {EXPORT_FORMAT!r}")
        if meta.get("format_kind", "onnx") != "onnx":
            raise ValueError(f"{meta_path}: describes a {meta['format_kind']} export, not ONNX")
        folder = meta_path.parent
        files = {g: folder / v["file"] for g, v in meta["graphs"].items()}
        specs = {
            g: GraphSpec(v["inputs"], v["outputs"], state=v["state"])
            for g, v in meta["graphs"].items()
        }
        prep = Preprocessing(**meta["preprocessing"])
        return cls(OnnxRuntime(files, specs, threads=threads), prep, source=str(path))

    def metadata(self) -> dict[str, Any]:
        """What a client needs to know: task, inputs, classes, state sizes, streaming."""
        p = self.prep
        return {
            "task": p.task,
            "model_class": p.model_class,
            "runtime": getattr(self.runtime, "name", "?"),
            "source": self.source,
            "config": p.config,
            "state": p.state,
            "streaming": p.streaming is None,
            "streaming_blocker": p.streaming,
            "classes": p.classes,
            "vocab_size": len(p.vocab) if p.vocab else None,
            "tokenizer": p.tokenizer,
            "scaled": p.scaler is not None,
            "frame": p.frame,
        }

    # --- raw input -> arrays -----------------------------------------------------------------

    def encode(self, raw: Any, *, field: str = "input") -> np.ndarray:
        """One raw sequence -> ``(T,)`` int64 ids or ``(T, I)`` float32 features (model units):
        scaled, then framed when the run framed its series (``(ceil(T / frame), frame * C)``)."""
        if self._vocab_size:
            return self._ids(raw, field)
        frame = self.prep.frame
        width = int(self._float_width or 1) // frame  # raw channels per step
        try:
            x = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{field}: expected numbers, got {_short(raw)}") from None
        if x.ndim == 1 and width == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != width or x.shape[0] < 1:
            raise ValueError(
                f"{field}: expected a non-empty sequence of {width} number(s) per step, "
                f"got shape {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError(f"{field}: values must be finite numbers")
        if self.prep.scaler is not None:
            cols = self.prep.target_columns or list(range(width))
            shift = np.asarray(self.prep.scaler["shift"])[cols]
            scale = np.asarray(self.prep.scaler["scale"])[cols]
            x = (x - shift) / scale
        if frame > 1:
            from rnnkit.data.framing import frame_series

            x = frame_series(x, frame)
        return x.astype(np.float32)

    def _ids(self, raw: Any, field: str) -> np.ndarray:
        if isinstance(raw, str):
            if self._stoi is None:
                raise ValueError(f"{field}: this model has no vocabulary; send a list of token ids")
            tok = self.prep.tokenizer
            tokens = list(raw) if tok == "chars" else word_tokenize(raw, lower=tok == "words_lower")
            ids = [self._stoi.get(t, 1) for t in tokens]  # 1 = <unk>
        elif isinstance(raw, list) and all(isinstance(t, str) for t in raw) and self._stoi:
            ids = [self._stoi.get(t, 1) for t in raw]
        elif isinstance(raw, list) and all(
            isinstance(t, int) and not isinstance(t, bool) for t in raw
        ):
            ids = list(raw)
        else:
            raise ValueError(
                f"{field}: expected a string or a list of token ids, got {_short(raw)}"
            )
        if not ids:
            raise ValueError(f"{field}: the input has no tokens")
        size = int(self._vocab_size or 0)
        bad = [i for i in ids if not 0 <= i < size]
        if bad:
            raise ValueError(f"{field}: token id {bad[0]} is outside [0, {self._vocab_size})")
        return np.asarray(ids, dtype=np.int64)

    def _batch(self, seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Right-pad sequences into ``(B, T[, I])`` with their lengths ``(B,)``."""
        lengths = np.asarray([len(s) for s in seqs], dtype=np.int64)
        shape = (len(seqs), int(lengths.max()), *seqs[0].shape[1:])
        x = np.zeros(shape, dtype=seqs[0].dtype)
        for i, s in enumerate(seqs):
            x[i, : len(s)] = s
        return x, lengths

    def zero_state(self, batch: int = 1) -> States:
        return {
            n: np.zeros((shape[0], batch, shape[1]), dtype=np.float32)
            for n, shape in self.prep.state.items()
        }

    # --- whole inputs ------------------------------------------------------------------------

    def predict(self, inputs: Sequence[Any], *, max_len: int = 64) -> list[dict[str, Any]]:
        """Answer each raw input (one batched model call; seq2seq decodes up to ``max_len``)."""
        if not inputs:
            raise ValueError("inputs: give at least one input")
        seqs = [self.encode(raw, field=f"inputs[{i}]") for i, raw in enumerate(inputs)]
        x, lengths = self._batch(seqs)
        if self.task == "seq2seq":
            return self._translate(x, lengths, max_len=max_len)
        out = self.runtime.run("main", {"x": x, "lengths": lengths, **self.zero_state(len(seqs))})
        return [self._answer(out, i, lengths[i], seqs[i]) for i in range(len(seqs))]

    def _answer(self, out: dict[str, np.ndarray], i: int, n: int, seq: np.ndarray) -> dict:
        p = self.prep
        if self.task == "language_model":
            logp = _log_softmax(out["logits"][i, :n])  # (n, V)
            nats = -float(logp[np.arange(n - 1), seq[1:]].mean()) if n > 1 else float("nan")
            return {
                "tokens": int(n),
                "bits_per_token": nats / math.log(2) if n > 1 else None,
                "next": self._top(np.exp(logp[-1])),
            }
        if self.task == "forecasting":
            return self._forecast(out, i)
        if self.task == "tagging":
            probs = _softmax(out["logits"][i, :n])
            return {
                "tags": [self._label(int(k)) for k in probs.argmax(-1)],
                "probabilities": probs.tolist(),
            }
        logits = out["logits"][i]
        if p.config.get("task") == "regression":
            return {"values": logits.tolist()}
        probs = _softmax(logits)
        return {
            "label": self._label(int(probs.argmax())),
            "probabilities": {self._label(k): float(v) for k, v in enumerate(probs)},
        }

    def _label(self, k: int) -> str | int:
        return self.prep.classes[k] if self.prep.classes else k

    def _top(self, probs: np.ndarray, k: int = 5) -> list[list[Any]]:
        order = np.argsort(-probs)[:k]
        vocab = self.prep.vocab
        return [[vocab[j] if vocab else int(j), float(probs[j])] for j in order]

    def _forecast(self, out: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        mean = out["mean"][i].astype(np.float64)  # (H, Y)
        shift, scale = self._target_scale(mean.shape[-1])
        answer: dict[str, Any] = {"forecast": (mean * scale + shift).tolist(), "intervals": None}
        if "log_var" in out:
            std = np.exp(0.5 * out["log_var"][i].astype(np.float64)) * scale
            answer["intervals"] = {
                f"{int(q * 100)}%": {
                    "lower": (mean * scale + shift - _z(q) * std).tolist(),
                    "upper": (mean * scale + shift + _z(q) * std).tolist(),
                }
                for q in INTERVALS
            }
        return answer

    def _target_scale(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        if self.prep.scaler is None:
            return np.zeros(width), np.ones(width)
        cols = self.prep.target_columns or list(range(width))
        return (
            np.asarray(self.prep.scaler["shift"])[cols],
            np.asarray(self.prep.scaler["scale"])[cols],
        )

    def _translate(self, x: np.ndarray, lengths: np.ndarray, *, max_len: int) -> list[dict]:
        c = self.prep.config
        enc = self.runtime.run("encoder", {"x": x, "lengths": lengths})
        spec = self.runtime.specs["decoder"]
        feeds = {n: enc[n] for n in spec.inputs if n != "token"}
        token = np.full(len(x), c["bos_id"], dtype=np.int64)
        tokens, done = [], np.zeros(len(x), dtype=bool)
        for _ in range(max_len):
            out = self.runtime.run("decoder", {"token": token, **feeds})
            token = np.where(done, c["eos_id"], out["logits"].argmax(-1)).astype(np.int64)
            tokens.append(token)
            done |= token == c["eos_id"]
            for n in spec.state:
                feeds[n] = out[f"{n}_n"]
            feeds["feed"] = out["feed_n"]
            if done.all():
                break
        rows = np.stack(tokens, axis=1)  # (B, N)
        answers = []
        for row in rows:
            ids = [int(t) for t in row]
            ids = ids[: ids.index(c["eos_id"])] if c["eos_id"] in ids else ids
            target: Any = ids
            if self.prep.tgt_vocab:
                target = " ".join(self.prep.tgt_vocab[i] for i in ids)
            answers.append({"target": target, "tokens": ids})
        return answers

    # --- generation --------------------------------------------------------------------------

    def generate(
        self,
        prompt: str | list[int],
        *,
        max_tokens: int,
        temperature: float = 0.8,
        top_k: int | None = None,
        seed: int = 0,
    ) -> Iterator[str | int]:
        """Yield up to ``max_tokens`` tokens continuing ``prompt`` (a language model), sampled at
        ``temperature`` (0 = greedy) from the ``top_k`` most likely, seeded. O(1) per token: the
        prompt primes the state once, then each token is one step."""
        if self.task != "language_model":
            raise ValueError(f"generate needs a language model; this is a {self.task} model")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        ids = self.encode(prompt, field="prompt")
        rng = np.random.default_rng(seed)
        x, lengths = ids[None], np.asarray([len(ids)], dtype=np.int64)
        out = self.runtime.run("main", {"x": x, "lengths": lengths, **self.zero_state(1)})
        for _ in range(max_tokens):
            logits = out["logits"][0, -1].astype(np.float64)
            token = _pick(logits, temperature=temperature, top_k=top_k, rng=rng)
            yield self.prep.vocab[token] if self.prep.vocab else token
            state = {n: out[f"{n}_n"] for n in self.prep.state}
            out = self.runtime.run(
                "main", {"x": np.asarray([[token]]), "lengths": np.ones(1, np.int64), **state}
            )

    # --- streaming ---------------------------------------------------------------------------

    def open_stream(self) -> Stream:
        """A stream from the zero state; ``stream.step(x)`` advances it by one step."""
        self._check_streaming()
        return Stream(self)

    def _check_streaming(self) -> None:
        if self.prep.streaming is not None:
            raise ValueError(f"this model cannot stream: {self.prep.streaming}")

    def encode_step(self, raw: Any, *, field: str = "step") -> np.ndarray:
        """One step's raw input -> ``()`` id or ``(I,)`` features."""
        if self._vocab_size and isinstance(raw, str):
            seq = self.encode(raw, field=field)  # one character, or one word
        else:
            seq = self.encode([raw], field=field)
        if len(seq) != 1:
            raise ValueError(f"{field}: one step takes one token or one observation")
        return seq[0]

    def step_many(
        self, steps: Sequence[np.ndarray], states: Sequence[States | None]
    ) -> tuple[list[dict[str, Any]], list[States]]:
        """Advance independent streams by one step each, as one batched model call.

        ``steps`` come from ``encode_step``; ``states`` are the streams' states (None = a new
        stream). Returns each stream's answer and new state.
        """
        self._check_streaming()
        n = len(steps)
        x = np.stack(steps)[:, None]  # (B, 1) ids or (B, 1, I)
        parts = [s if s is not None else self.zero_state(1) for s in states]
        feeds = {k: np.concatenate([p[k] for p in parts], axis=1) for k in self.prep.state}
        out = self.runtime.run("main", {"x": x, "lengths": np.ones(n, np.int64), **feeds})
        answers = [self._step_answer(out, i) for i in range(n)]
        new = [{k: out[f"{k}_n"][:, i : i + 1].copy() for k in self.prep.state} for i in range(n)]
        return answers, new

    def _step_answer(self, out: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        if self.task == "language_model":
            probs = _softmax(out["logits"][i, 0].astype(np.float64))
            return {"next": self._top(probs), "probabilities": probs.tolist()}
        if self.task == "tagging":
            probs = _softmax(out["logits"][i, 0].astype(np.float64))
            return {"tag": self._label(int(probs.argmax())), "probabilities": probs.tolist()}
        return self._answer(out, i, 1, np.zeros(1))


class Stream:
    """One stream's state between steps (see ``Predictor.open_stream``)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.state: States | None = None
        self.steps = 0

    def step(self, x: Any) -> dict[str, Any]:
        """Feed one step of raw input; return the answer after it."""
        answers, states = self.predictor.step_many([self.predictor.encode_step(x)], [self.state])
        self.state = states[0]
        self.steps += 1
        return answers[0]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _pick(
    logits: np.ndarray, *, temperature: float, top_k: int | None, rng: np.random.Generator
) -> int:
    if temperature == 0:
        return int(logits.argmax())
    if top_k is not None and top_k < len(logits):
        kth = np.sort(logits)[-top_k]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = _softmax(logits / temperature)
    return int(rng.choice(len(probs), p=probs))


def _z(q: float) -> float:
    """The standard normal quantile of ``(1 + q) / 2``: half-width of a central ``q`` interval."""
    from statistics import NormalDist

    return NormalDist().inv_cdf((1 + q) / 2)


def _short(raw: Any) -> str:
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."
