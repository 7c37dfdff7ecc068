"""``rnnkit predict`` / ``generate`` / ``forecast``: use a finished run's model."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Container, Sequence
from typing import Literal

from rnnkit.cli._common import fail, run_parser


def unknown_tokens(tokens: Sequence[str], known: Container[str], noun: str) -> str | None:
    """``None`` when every token is known, else "N nouns not in ... (examples)"."""
    unknown = Counter(t for t in tokens if t not in known)
    if not unknown:
        return None
    shown = ", ".join(f"{t!r} x{n}" for t, n in unknown.most_common(5))
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    return f"{sum(unknown.values())} {noun} not in the model's vocabulary ({shown}{more})"


def generate(args: Sequence[str]) -> int:
    from rnnkit.models import LanguageModel
    from rnnkit.train.predict import load_run
    from rnnkit.train.tasks.lm import sample_text

    parser = run_parser("generate")
    parser.add_argument("--prompt", type=str, default="\n", help="text that primes the state")
    parser.add_argument("--chars", type=int, default=300, help="characters to generate")
    parser.add_argument("--strategy", type=Literal["sample", "greedy", "beam"], default="sample")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top_k", type=int | None, default=None)
    parser.add_argument("--top_p", type=float | None, default=None)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same text)")
    parser.add_argument(
        "--allow_unknown",
        type=bool,
        default=False,
        help="generate even when prompt characters are outside the vocabulary (they become <unk>)",
    )
    ns = parser.parse_args(list(args))
    loaded = load_run(ns.run)
    if not isinstance(loaded.model, LanguageModel):
        return fail(f"{ns.run} holds a {loaded.task} model; generate needs a language model run")
    if loaded.vocab is None:  # e.g. the music app's (pitch, duration) ids: no text to write
        return fail(
            f"{ns.run} is a language model over an application's own token ids (no vocab.json); "
            "generate writes text from a text vocabulary, so sample it from the application"
        )
    data = loaded.experiment.data
    level = getattr(data, "level", "char")
    if level == "char":
        # A character model never sees <unk> in training (every training character is in the
        # vocabulary), so its <unk> embedding is untrained: refuse unless asked.
        text = ns.prompt.lower() if getattr(data, "lower", False) else ns.prompt
        report = unknown_tokens(list(text), loaded.vocab, "characters")
        if report and not ns.allow_unknown:
            return fail(
                f"--prompt: {report}; they would enter as <unk>, which this "
                "character model never saw in training. Replace them, or pass "
                "--allow_unknown true"
            )
    else:  # words below min_freq trained <unk>: rare words are expected, say how many
        from rnnkit.data import word_tokenize

        words = word_tokenize(ns.prompt, lower=data.lower)
        report = unknown_tokens(words, loaded.vocab, "words")
    if report:
        print(f"rnnkit: warning: --prompt: {report}; they enter as <unk>", file=sys.stderr)
    text = sample_text(
        loaded.model,
        loaded.vocab,
        prompt=ns.prompt,
        chars=ns.chars,
        temperature=ns.temperature,
        top_k=ns.top_k,
        top_p=ns.top_p,
        strategy=ns.strategy,
        seed=ns.seed,
        level=level,
    )
    print(ns.prompt + text)
    return 0


def predict(args: Sequence[str]) -> int:
    parser = run_parser("predict")
    parser.add_argument("--text", type=str | None, default=None, help="LM: text to score (bpc)")
    parser.add_argument("--out", type=str | None, default=None, help="CSV path (default: run dir)")
    parser.add_argument(
        "--input", type=str | None, default=None, help="a new file in the training file's format"
    )
    parser.add_argument(
        "--future",
        type=str | None,
        default=None,
        help="forecasting: future covariates of the forecast steps (id, time, their columns)",
    )
    parser.add_argument(
        "--inputs",
        type=str | None,
        default=None,
        help="raw inputs as a JSON list, answered by rnnkit.Predictor: '[\"a great film\"]'",
    )
    parser.add_argument(
        "--onnx", type=bool, default=False, help="--inputs: use RUN/export/model.onnx"
    )
    parser.add_argument(
        "--top_k",
        type=int | None,
        default=None,
        help="LM over sequences: next tokens listed per test sequence (default: the run's, or 10)",
    )
    ns = parser.parse_args(list(args))
    if ns.inputs is not None:
        from pathlib import Path

        from rnnkit.predictor import Predictor

        try:
            raw = json.loads(ns.inputs)
        except json.JSONDecodeError as err:
            raise ValueError(f"--inputs is not JSON: {err.msg} at column {err.colno}") from None
        if not isinstance(raw, list):
            raise ValueError("--inputs must be a JSON list of raw inputs")
        model = Path(ns.run) / "export" / "model.onnx"
        predictor = Predictor.from_onnx(model) if ns.onnx else Predictor.from_run(ns.run)
        print(json.dumps(predictor.predict(raw), indent=2))
        return 0
    from rnnkit.train.predict import predict_run

    result = predict_run(
        ns.run, text=ns.text, out=ns.out, input_path=ns.input, future=ns.future, top_k=ns.top_k
    )
    print(json.dumps(result, indent=2))
    return 0


def forecast(args: Sequence[str]) -> int:
    from rnnkit.train.predict import forecast_run

    parser = run_parser("forecast")
    parser.add_argument("--horizon", type=int, required=True, help="steps ahead to forecast")
    ns = parser.parse_args(list(args))
    print(json.dumps(forecast_run(ns.run, horizon=ns.horizon), indent=2))
    return 0
