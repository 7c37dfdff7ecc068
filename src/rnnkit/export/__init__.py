"""Deployment: every model family as graphs with explicit recurrent state, run eagerly or exported.

- `_graph`: the graphs (``GraphSpec`` names their inputs and outputs) and the scan that exports
  every cell at any ``T``;
- `runtime`: ``TorchRuntime`` and ``OnnxRuntime``, the same named-array interface over both;
- `onnx`: ``export_run`` (ONNX or TorchScript), its parity check and optional int8 quantisation.

This package imports nothing from ``rnnkit.train`` at import time: the predictor and the server use
`runtime` without Lightning.
"""
