"""TorchScript export: the same graphs, traced, with each cell's time loop scripted.

``torch.jit.trace`` alone unrolls a Python loop at the length it sees, so a traced LayerNorm-LSTM
(or any cell without a fused kernel) would only run at that ``T``. Here each cell's masked step is
traced once (``_MaskedStep``, shapes free), a ``torch.jit.script`` loop runs it over however many
steps arrive (``_Loop``), and the graph around it is traced in ``scripting()`` mode, where it calls
those loops; the file then runs at any ``B`` and ``T`` from Python or C++ (``torch::jit::load``).

TorchScript archives are code and pickled constants: load only files you exported. The server
loads safetensors runs or ONNX files, never these.
"""

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.cells import RecurrentCell
from rnnkit.types import LSTMState


class _MaskedStep(nn.Module):
    """One step of one cell where ``m`` ``(B, 1)`` holds; elsewhere the state is kept, y = 0.
    Non-LSTM cells carry a dummy ``c`` (a copy of ``h``) so every loop has one signature."""

    def __init__(self, cell: RecurrentCell, lstm: bool) -> None:
        super().__init__()
        self.cell, self.lstm = cell, lstm

    def forward(self, xp: Tensor, m: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        y, new = self.cell.recur(xp, LSTMState(h, c) if self.lstm else h)
        nh, nc = (new.h, new.c) if isinstance(new, LSTMState) else (new, c)
        return torch.where(m, y, 0.0), torch.where(m, nh, h), torch.where(m, nc, c)


class _Loop(nn.Module):
    """The scripted time loop over a traced ``_MaskedStep``: ``xp`` ``(T, B, G*H)``."""

    def __init__(self, step: Any) -> None:
        super().__init__()
        self.step = step

    def forward(
        self, xp: Tensor, mask: Tensor, h: Tensor, c: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        ys: list[Tensor] = []
        for t in range(xp.size(0)):
            y, h, c = self.step(xp[t], mask[t], h, c)
            ys.append(y)
        return torch.stack(ys), h, c


class _LoopCall(nn.Module):
    """Adapts the scripted loop to the graph's state tuples ``(h,)`` or ``(h, c)``."""

    def __init__(self, loop: Any, n_state: int) -> None:
        super().__init__()
        self.loop, self.n_state = loop, n_state

    def forward(self, xp: Tensor, mask: Tensor, state: tuple[Tensor, ...]) -> Any:
        c = state[1] if self.n_state == 2 else state[0]
        ys, h, c = self.loop(xp, mask, state[0], c)
        return ys, ((h, c) if self.n_state == 2 else (h,))


def cell_loop(cell: RecurrentCell, n_state: int) -> nn.Module:
    """The scripted time loop of ``cell`` (see the module docstring)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = next(cell.parameters())
        xp = cell.project_input(torch.zeros(2, cell.input_size, dtype=p.dtype))
        s = cell.init_state(2, dtype=p.dtype)
        h, c = (s.h, s.c) if isinstance(s, LSTMState) else (s, s)
        m = torch.ones(2, 1, dtype=torch.bool)
        step = torch.jit.trace(_MaskedStep(cell, n_state == 2), (xp, m, h, c), check_trace=False)
        return _LoopCall(torch.jit.script(_Loop(step)), n_state)


class ScriptRuntime:
    """Exported TorchScript graphs by name, on numpy arrays (see ``rnnkit.export.runtime``)."""

    name = "torchscript"

    def __init__(self, files: "dict[str, Path]", specs: "dict[str, Any]") -> None:
        self.specs = specs
        self.modules = {g: torch.jit.load(str(p)) for g, p in files.items()}

    @torch.no_grad()
    def run(self, graph: str, feeds: "dict[str, np.ndarray]") -> "dict[str, np.ndarray]":
        spec = self.specs[graph]
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()}
        outs = self.modules[graph](*spec.arguments(tensors))
        return {n: o.numpy() for n, o in zip(spec.outputs, outs, strict=True)}


def export_torchscript(
    model: nn.Module,
    out: Path,
    example: "dict[str, dict[str, np.ndarray]]",
    feeds: "dict[str, dict[str, np.ndarray]]",
    *,
    streams: bool,
    atol: float,
    rtol: float,
) -> "tuple[dict[str, Path], dict[str, Any]]":
    """Trace every graph at ``example`` shapes, check parity on ``feeds`` (other shapes), and move
    the files into place only if it holds (``ValueError`` otherwise, nothing written)."""
    from rnnkit.export._graph import graph_specs, graphs_for, scripting
    from rnnkit.export.onnx import check_parity, graph_files
    from rnnkit.export.runtime import TorchRuntime

    graphs = graphs_for(model.eval())
    final = graph_files(out, graphs)
    tmp = Path(tempfile.mkdtemp(prefix=".rnnkit-export-", dir=out.parent))
    try:
        staged = {g: tmp / p.name for g, p in final.items()}
        specs = graph_specs(model)
        for name, graph in graphs.items():
            graph.rnn.script_loops()  # type: ignore[operator, union-attr]
            args = specs[name].arguments({k: torch.from_numpy(v) for k, v in example[name].items()})
            with scripting(), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(graph, args, check_trace=False, strict=False)
            traced.save(str(staged[name]))
        parity = check_parity(
            TorchRuntime(model),
            ScriptRuntime(staged, specs),
            feeds,
            streams=streams,
            atol=atol,
            rtol=rtol,
        )
        if not parity["ok"]:
            raise ValueError(
                f"TorchScript disagrees with eager torch beyond atol={atol}, rtol={rtol} "
                f"({'; '.join(parity['failures'])}); nothing was written to {out}"
            )
        for g, p in staged.items():
            os.replace(p, final[g])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final, parity
