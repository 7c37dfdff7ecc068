"""Run a model's graphs by name on numpy arrays: eagerly in torch, or through ONNX Runtime.

Both runtimes take and return ``{name: array}`` with the names of the graph's ``GraphSpec``
(``x``, ``lengths``, ``h``, ``c`` in; ``logits``, ``h_n``, ``c_n`` out, ...), so the predictor, the
server and the export parity check drive either one with the same code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from rnnkit.export._graph import GraphSpec, graphs_for, spec_of

Arrays = dict[str, np.ndarray]


class Runtime(Protocol):
    """What the predictor needs from a backend."""

    specs: dict[str, GraphSpec]

    def run(self, graph: str, feeds: Arrays) -> Arrays:
        """Run graph ``graph`` on named inputs; named outputs."""
        ...


class TorchRuntime:
    """The model's graphs in eager torch (no grad, the model in eval mode)."""

    name = "torch"

    def __init__(self, model: nn.Module, *, graphs: dict[str, nn.Module] | None = None) -> None:
        self.model = model.eval()
        self.graphs = graphs if graphs is not None else graphs_for(model)
        self.specs = {k: spec_of(g) for k, g in self.graphs.items()}

    @torch.no_grad()
    def run(self, graph: str, feeds: Arrays) -> Arrays:
        g, spec = self.graphs[graph], self.specs[graph]
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()}
        outs = g(*spec.arguments(tensors))
        return {n: o.numpy() for n, o in zip(spec.outputs, outs, strict=True)}


class OnnxRuntime:
    """The exported ``.onnx`` files, one ``onnxruntime.InferenceSession`` per graph (CPU).

    ``threads`` caps intra-op threads (the server and benchmarks share the machine).
    """

    name = "onnxruntime"

    def __init__(
        self,
        files: Mapping[str, str | os.PathLike[str]],
        specs: dict[str, GraphSpec],
        *,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.specs = specs
        self.sessions: dict[str, Any] = {}
        for graph, path in files.items():
            if not Path(path).is_file():
                raise ValueError(f"{path} is missing")
            self.sessions[graph] = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )

    def run(self, graph: str, feeds: Arrays) -> Arrays:
        session = self.sessions[graph]
        names = [i.name for i in session.get_inputs()]
        outs = session.run(None, {n: feeds[n] for n in names})
        return {o.name: v for o, v in zip(session.get_outputs(), outs, strict=True)}
