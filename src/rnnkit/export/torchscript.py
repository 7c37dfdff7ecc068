"""TorchScript export: the same graphs, traced, with each cell's time loop scripted.

``torch.jit.trace`` alone unrolls a Python loop at the length it sees, so a traced LayerNorm-LSTM
(or any cell without a fused kernel) would only run at that ``T``. Here each cell's time loop is
the scripted one of ``rnnkit.export._loop``, and the graph around it is traced in ``scripting()``
mode, where it calls those loops; the file then runs at any ``B`` and ``T`` from Python or C++
(``torch::jit::load``).

TorchScript archives are code and pickled constants: load only files you exported. The server
loads safetensors runs or ONNX files, never these.
"""

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.export._graph import graph_specs, graphs_for, scripting
from rnnkit.export.onnx import graph_files, write_checked


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

    graphs = graphs_for(model.eval())
    final = graph_files(out, graphs)
    specs = graph_specs(model)

    def write(staged: dict[str, Path]) -> ScriptRuntime:
        for name, graph in graphs.items():
            graph.script_loops()
            args = specs[name].arguments({k: torch.from_numpy(v) for k, v in example[name].items()})
            with scripting(), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(graph, args, check_trace=False, strict=False)
            traced.save(str(staged[name]))
        return ScriptRuntime(staged, specs)

    parity = write_checked(
        model, out, final, write, "TorchScript", feeds, streams=streams, atol=atol, rtol=rtol
    )
    return final, parity
