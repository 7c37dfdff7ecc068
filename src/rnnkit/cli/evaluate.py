"""``rnnkit validate`` / ``rnnkit test``: score a finished run on its validation or test split."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rnnkit.cli._common import run_parser


def _evaluate(command: str, args: Sequence[str]) -> int:
    from rnnkit.evaluate.reference import test_report
    from rnnkit.train.trainer import evaluate

    ns = run_parser(command).parse_args(list(args))
    if command == "test":
        report = test_report(ns.run)
        print(json.dumps(report, indent=2))
        if "verdict" in report:
            print(f"verdict: {report['verdict']['line']}")
        return 0
    print(json.dumps(evaluate(ns.run, stage=command), indent=2))
    return 0


def validate(args: Sequence[str]) -> int:
    return _evaluate("validate", args)


def test(args: Sequence[str]) -> int:
    return _evaluate("test", args)
