"""Can the LayerNorm-LSTM loop be made faster by compiling it? Three ways, against nn.LSTM.

Forward+backward of a one-layer LayerNorm-LSTM (rnnkit's cell equations) run as
1. rnnkit's reference loop (``Recurrent(..., layer_norm=True)``, input projection hoisted),
2. the same loop written as one ``torch.jit.script`` function (this wheel has no LLVM, so no
   CPU fuser),
3. the loop with the cell's step wrapped in ``torch.compile`` (compile time reported apart),
each as a ratio to plain ``nn.LSTM`` on the same data. Writes
``benchmarks/results/variant-loops-<device>.json``.

    .venv/bin/python benchmarks/variant_loops.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _timing import best_seconds, write_json  # benchmarks/ is on sys.path when run as a script
from torch import Tensor

from rnnkit import Recurrent
from rnnkit.cells import LSTMCell

SHAPES = [(32, 128, 64, 128), (64, 256, 256, 256)]  # (B, T, I, H)


@torch.jit.script
def _scripted(
    xp: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor, g_hh: Tensor, g_c: Tensor,
    b_c: Tensor,
) -> Tensor:  # fmt: skip
    outs: list[Tensor] = []
    G = w_hh.shape[0]
    H = c.shape[1]
    for x_t in xp.unbind(0):
        gates = x_t + F.layer_norm(torch.mm(h, w_hh.t()), [G], g_hh, None) + b_hh
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, [H], g_c, b_c))
        outs.append(h)
    return torch.stack(outs)


def _measure(B: int, T: int, I: int, H: int) -> dict[str, object]:  # noqa: E741
    x = torch.randn(T, B, I, requires_grad=True)
    ref = torch.nn.LSTM(I, H)
    layer = Recurrent("lstm", I, H, layer_norm=True)
    cell = layer.cells[0]
    assert isinstance(cell, LSTMCell) and cell.ln_hh is not None and cell.ln_c is not None
    assert cell.bias_hh is not None
    ln_hh, ln_c, b_hh = cell.ln_hh, cell.ln_c, cell.bias_hh

    def run_ref() -> None:
        ref(x)[0].sum().backward()

    def run_loop() -> None:
        layer(x)[0].sum().backward()

    def run_script() -> None:
        h0 = x.new_zeros(B, H)
        out = _scripted(
            cell.project_input(x), h0, h0, cell.weight_hh, b_hh, ln_hh.weight, ln_c.weight,
            ln_c.bias,
        )  # fmt: skip
        out.sum().backward()

    row: dict[str, object] = {"B": B, "T": T, "I": I, "H": H}
    row["nn_lstm_ms"] = t_ref = best_seconds(run_ref) * 1e3
    row["loop_ms"] = best_seconds(run_loop) * 1e3
    row["script_ms"] = best_seconds(run_script) * 1e3
    eager = cell.recur
    start = time.perf_counter()
    cell.recur = torch.compile(eager, dynamic=False)  # type: ignore[method-assign]
    run_loop()
    row["compile_s"] = time.perf_counter() - start
    row["compiled_step_ms"] = best_seconds(run_loop) * 1e3
    cell.recur = eager  # type: ignore[method-assign]
    for key in ("loop", "script", "compiled_step"):
        row[f"{key}_ratio"] = round(t_ref / float(row[f"{key}_ms"]), 3)  # type: ignore[arg-type]
    return row


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    records = []
    for B, T, I, H in SHAPES:  # noqa: E741
        row = _measure(B, T, I, H)
        records.append(row)
        print(row, flush=True)
    out = Path(__file__).parent / "results" / "variant-loops-cpu.json"
    write_json(out, records)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
