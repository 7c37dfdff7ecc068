"""Diagnostics: gradient flow through time, gate saturation, recurrent Jacobian spectra.

- `gradient_flow(model, loss_fn)`: ‖∂L/∂h_t‖ per step and layer, gradient norms per parameter
  group, gate saturation and the spectrum of ∂s_t/∂s_{t-1}, on one batch.
- `GradientDiagnostics`: a Lightning callback that records these every N steps, warns in plain
  words when gradients explode or vanish, skips updates with non-finite (or exploding) gradients,
  and writes ``<run>/diagnostics/``.
- `diagnose_main(argv)`: ``rnnkit diagnose --run DIR`` — PNGs and a text verdict.
"""

from rnnkit.diagnostics._record import CellTrace, find_layers, record_steps
from rnnkit.diagnostics.callback import GradientDiagnostics, GradientWarning
from rnnkit.diagnostics.flow import FlowReport, gradient_flow, signal_reach
from rnnkit.diagnostics.gates import gate_values, saturation
from rnnkit.diagnostics.jacobian import JacobianSpectrum, spectrum, step_jacobians

__all__ = [
    "CellTrace",
    "FlowReport",
    "GradientDiagnostics",
    "GradientWarning",
    "JacobianSpectrum",
    "find_layers",
    "gate_values",
    "gradient_flow",
    "record_steps",
    "saturation",
    "signal_reach",
    "spectrum",
    "step_jacobians",
]
