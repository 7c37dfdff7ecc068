"""Gradient flow through time for any model built on ``rnnkit.Recurrent``, on one batch.

``gradient_flow(model, loss_fn)`` runs ``loss_fn()`` (which calls the model) once with every step
recorded and returns a `FlowReport`:

- ``hidden_grad_norms[name]``: ``‖∂L/∂h_t‖`` for every step ``t`` of every layer (and direction),
  the Frobenius norm over the batch: how far back the learning signal reaches;
- per-parameter and per-group gradient norms (recurrent, input, bias, ... weights);
- gate saturation per gate type and histograms of gate values (`rnnkit.diagnostics.gates`);
- the spectrum of the recurrent Jacobian ``∂s_t/∂s_{t-1}`` (`rnnkit.diagnostics.jacobian`).

The gradients come from ``torch.autograd.grad``: the parameters' ``.grad`` are left as they were.
Backward-direction profiles are in processing order (their step 0 is the last input).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.diagnostics._record import CellTrace, record_steps
from rnnkit.diagnostics.gates import histogram, saturation
from rnnkit.diagnostics.jacobian import JacobianSpectrum, spectrum

VANISH_THRESHOLD = 1e-3  # the signal has vanished where it is below this fraction of its peak


@dataclass
class FlowReport:
    """Everything `gradient_flow` measured on one batch. Arrays are numpy, numbers floats."""

    loss: float
    hidden_grad_norms: dict[str, np.ndarray]  # layer name -> (T,) ‖∂L/∂h_t‖
    param_grad_norms: dict[str, float]  # parameter name -> ‖∂L/∂θ‖
    group_grad_norms: dict[str, float]  # parameter group -> norm of its gradients together
    total_grad_norm: float  # all parameters together (what norm clipping looks at)
    saturation: dict[str, dict[str, float]]  # layer name -> gate -> saturated fraction
    gate_histograms: dict[str, dict[str, np.ndarray]]  # layer -> gate -> (bins,) counts on [0, 1]
    jacobian: dict[str, JacobianSpectrum] = field(default_factory=dict)

    def reach(self, threshold: float = VANISH_THRESHOLD) -> dict[str, int | None]:
        """Per layer: steps back from the gradient's peak until it falls below ``threshold`` of
        the peak (None when it never does within the sequence)."""
        return {k: signal_reach(v, threshold) for k, v in self.hidden_grad_norms.items()}

    def vanishing(self, *, within: int, threshold: float = VANISH_THRESHOLD) -> list[str]:
        """Plain-words warnings for layers whose signal falls below ``threshold`` of its peak
        within ``within`` steps back; empty when none does."""
        out = []
        for name, k in self.reach(threshold).items():
            norms = self.hidden_grad_norms[name]
            if k is not None and k <= within:
                out.append(
                    f"vanishing gradient in {name}: the learning signal ‖∂L/∂h_t‖ falls below "
                    f"{threshold:g} of its peak only {k} steps back (sequence of {len(norms)} "
                    f"steps), so this layer cannot learn dependencies longer than about {k} "
                    "steps. Gated cells (LSTM, GRU), orthogonal or identity recurrent init, or "
                    "shorter sequences help."
                )
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-able numbers (no per-step arrays)."""
        return {
            "loss": self.loss,
            "total_grad_norm": self.total_grad_norm,
            "group_grad_norms": self.group_grad_norms,
            "saturation": self.saturation,
            "reach": self.reach(),
            "first_last_ratio": {k: first_last_ratio(v) for k, v in self.hidden_grad_norms.items()},
            "jacobian": {k: v.summary() for k, v in self.jacobian.items()},
        }


def signal_reach(norms: np.ndarray, threshold: float = VANISH_THRESHOLD) -> int | None:
    """Steps back from the peak of ``norms`` until it first drops below ``threshold`` × peak."""
    norms = np.nan_to_num(np.asarray(norms, dtype=float), nan=0.0)
    if norms.size == 0:
        return None
    peak = int(np.argmax(norms))
    if norms[peak] <= 0.0:
        return 0
    below = np.nonzero(norms[: peak + 1][::-1] < threshold * norms[peak])[0]
    return int(below[0]) if below.size else None


def first_last_ratio(norms: np.ndarray) -> float:
    """``‖∂L/∂h_0‖ / ‖∂L/∂h_{T-1}‖``: how much of the last step's signal reaches the first."""
    norms = np.asarray(norms, dtype=float)
    if norms.size == 0 or not norms[-1] > 0:
        return float("nan")
    return float(norms[0] / norms[-1])


def param_group(name: str) -> str:
    """The group of a parameter by name: recurrent/input/projection weights, biases, layer norm,
    else the top-level module (``head``, ``inputs``...)."""
    leaf = name.rsplit(".", 1)[-1]
    if ".ln_" in f".{name}":
        return "layer_norm"
    if leaf == "weight_hh":
        return "recurrent_weights"
    if leaf == "weight_ih":
        return "input_weights"
    if leaf == "weight_hr":
        return "projection_weights"
    if leaf.startswith("bias") and ".cells." in f".{name}":
        return "recurrent_biases"
    return "other:" + name.split(".", 1)[0]


def grad_norms(
    named_grads: Iterable[tuple[str, Tensor | None]],
) -> tuple[dict[str, float], dict[str, float], float]:
    """Per-parameter norms, per-group norms and the total norm of ``(name, grad)`` pairs."""
    per: dict[str, float] = {}
    groups: dict[str, float] = {}
    total = 0.0
    for name, g in named_grads:
        if g is None:
            continue
        sq = float(g.detach().double().pow(2).sum())
        per[name] = math.sqrt(sq)
        group = param_group(name)
        groups[group] = groups.get(group, 0.0) + sq
        total += sq
    return per, {k: math.sqrt(v) for k, v in groups.items()}, math.sqrt(total)


def trace_norms(trace: CellTrace, grads: list[Tensor | None]) -> np.ndarray:
    """``‖∂L/∂h_t‖`` per step from the gradients of ``trace.h`` (None = no path to the loss)."""
    return np.asarray(
        [0.0 if g is None else float(g.detach().double().norm()) for g in grads], dtype=float
    )


def summarize_traces(
    traces: list[CellTrace],
    grads: list[list[Tensor | None]],
    *,
    jacobian: bool,
    jacobian_steps: int,
    jacobian_samples: int,
    bins: int = 20,
) -> tuple[
    dict[str, np.ndarray],
    dict[str, dict[str, float]],
    dict[str, dict[str, np.ndarray]],
    dict[str, JacobianSpectrum],
]:
    """Hidden-gradient norms, saturation, gate histograms and Jacobian spectra per trace."""
    norms: dict[str, np.ndarray] = {}
    sat: dict[str, dict[str, float]] = {}
    hist: dict[str, dict[str, np.ndarray]] = {}
    jac: dict[str, JacobianSpectrum] = {}
    for trace, g in zip(traces, grads, strict=True):
        norms[trace.name] = trace_norms(trace, g)
        sat[trace.name] = {}
        hist[trace.name] = {}
        for gate, values in trace.gates.items():
            allv = torch.cat([v.reshape(-1) for v in values])
            sat[trace.name][gate] = saturation(allv)
            hist[trace.name][gate] = histogram(allv, bins=bins).cpu().numpy()
        if jacobian and trace.steps:
            jac[trace.name] = spectrum(
                trace.cell,
                trace.xp,
                trace.state_in,
                trace.noise,
                max_steps=jacobian_steps,
                samples=jacobian_samples,
            )
    return norms, sat, hist, jac


def gradient_flow(
    model: nn.Module,
    loss_fn: Callable[[], Tensor],
    *,
    jacobian: bool = True,
    jacobian_steps: int = 32,
    jacobian_samples: int = 2,
    bins: int = 20,
) -> FlowReport:
    """Measure gradient flow through time on one batch.

    **Arguments:**
    - ``model``: any module holding ``rnnkit.Recurrent`` layers (a bare layer too).
    - ``loss_fn``: runs the model on the batch and returns the scalar loss, e.g.
      ``lambda: F.mse_loss(model(x), y)``.
    - ``jacobian``: also compute the recurrent Jacobian spectrum at up to ``jacobian_steps``
      steps for the first ``jacobian_samples`` sequences.
    """
    with torch.enable_grad(), record_steps(model) as traces:
        loss = loss_fn()
    if loss.dim() != 0:
        raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    hs = [h for t in traces for h in t.h]
    wrt = [p for _, p in named] + hs
    got = torch.autograd.grad(loss, wrt, allow_unused=True)
    param_grads = got[: len(named)]
    h_grads: list[Tensor | None] = list(got[len(named) :])
    per, groups, total = grad_norms((n, g) for (n, _), g in zip(named, param_grads, strict=True))
    grads: list[list[Tensor | None]] = []
    for t in traces:
        grads.append(h_grads[: t.steps])
        h_grads = h_grads[t.steps :]
    norms, sat, hist, jac = summarize_traces(
        traces,
        grads,
        jacobian=jacobian,
        jacobian_steps=jacobian_steps,
        jacobian_samples=jacobian_samples,
        bins=bins,
    )
    return FlowReport(float(loss.detach()), norms, per, groups, total, sat, hist, jac)
