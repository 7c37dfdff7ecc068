"""``rnnkit export``: a run's model as ONNX (state as inputs and outputs), parity-checked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from rnnkit.cli._common import run_parser


def main(args: Sequence[str]) -> int:
    from rnnkit.export.onnx import ATOL, RTOL

    parser = run_parser("export")
    parser.add_argument("--format", type=Literal["onnx", "torchscript"], default="onnx")
    parser.add_argument("--out", type=str | None, default=None, help="default: RUN/export/model.*")
    parser.add_argument("--quantize", type=Literal["int8"] | None, default=None)
    parser.add_argument("--atol", type=float, default=ATOL, help="parity: absolute tolerance")
    parser.add_argument("--rtol", type=float, default=RTOL, help="parity: relative tolerance")
    parser.add_argument("--rows", type=int, default=256, help="test rows scored for --quantize")
    ns = parser.parse_args(list(args))
    from rnnkit.export.run import export_run

    report = export_run(
        ns.run,
        fmt=ns.format,
        out=ns.out,
        quantize=ns.quantize,
        atol=ns.atol,
        rtol=ns.rtol,
        rows=ns.rows,
    )
    print(json.dumps(report, indent=2))
    return 0
