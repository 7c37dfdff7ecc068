"""``rnnkit predict`` / ``generate`` / ``forecast``: use a finished run's model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from rnnkit.cli._common import fail, run_parser


def generate(args: Sequence[str]) -> int:
    from rnnkit.models import LanguageModel
    from rnnkit.train.lm_task import sample_text
    from rnnkit.train.predict import load_run

    parser = run_parser("generate")
    parser.add_argument("--prompt", type=str, default="\n", help="text that primes the state")
    parser.add_argument("--chars", type=int, default=300, help="characters to generate")
    parser.add_argument("--strategy", type=Literal["sample", "greedy", "beam"], default="sample")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top_k", type=int | None, default=None)
    parser.add_argument("--top_p", type=float | None, default=None)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same text)")
    ns = parser.parse_args(list(args))
    loaded = load_run(ns.run)
    if not isinstance(loaded.model, LanguageModel) or loaded.vocab is None:
        return fail(f"{ns.run} holds a {loaded.task} model; generate needs a language model run")
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
    )
    print(ns.prompt + text)
    return 0


def predict(args: Sequence[str]) -> int:
    parser = run_parser("predict")
    parser.add_argument("--text", type=str | None, default=None, help="LM: text to score (bpc)")
    parser.add_argument("--out", type=str | None, default=None, help="CSV path (default: run dir)")
    parser.add_argument(
        "--inputs",
        type=str | None,
        default=None,
        help="raw inputs as a JSON list, answered by rnnkit.Predictor: '[\"a great film\"]'",
    )
    parser.add_argument(
        "--onnx", type=bool, default=False, help="--inputs: use RUN/export/model.onnx"
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

    print(json.dumps(predict_run(ns.run, text=ns.text, out=ns.out), indent=2))
    return 0


def forecast(args: Sequence[str]) -> int:
    from rnnkit.train.predict import forecast_run

    parser = run_parser("forecast")
    parser.add_argument("--horizon", type=int, required=True, help="steps ahead to forecast")
    ns = parser.parse_args(list(args))
    print(json.dumps(forecast_run(ns.run, horizon=ns.horizon), indent=2))
    return 0
