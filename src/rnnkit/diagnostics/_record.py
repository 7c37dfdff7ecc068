"""Record every step of every ``Recurrent`` layer in a model, without touching the layer's code.

``record_steps(model)`` switches each layer to its reference loop (``force_loop``) and wraps each
cell's ``recur`` on the instance, so one forward pass leaves, per cell (layer and direction):

- ``h``: the new hidden state ``h_t`` ``(B, P)`` of every step, still in the graph, so
  ``∂L/∂h_t`` can be read after a backward pass (``retain_grad``) or asked for with
  ``torch.autograd.grad``;
- ``xp``, ``state_in``: the step's projected input and previous state, detached, to recompute the
  recurrent Jacobian ``∂s_t/∂s_{t-1}`` later;
- ``gates``: the sigmoid gate activations of the step, detached (see `rnnkit.diagnostics.gates`).

Leaving the context restores the layers' own paths. Streaming ``Recurrent.step`` calls are
recorded too: a plain cell's ``native_step`` (torch's fused cell kernel, which would bypass
``recur``) is replaced on the instance by the exact ``recur(project_input(x), state)``. Several
forward calls append in call order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from rnnkit.cells import RecurrentCell
from rnnkit.diagnostics.gates import gate_values
from rnnkit.recurrent import Recurrent
from rnnkit.types import LSTMState, State, detach_state


@dataclass
class CellTrace:
    """What one cell (one layer, one direction) did at each step of a forward pass."""

    name: str  # "<module>.layer<l>", with ".reverse" for the backward direction
    cell: RecurrentCell
    h: list[Tensor] = field(default_factory=list)  # live h_t (B, P), one per step
    xp: list[Tensor] = field(default_factory=list)  # detached projected inputs (B, G*H)
    state_in: list[State] = field(default_factory=list)  # detached s_{t-1}
    noise: list[Tensor | None] = field(default_factory=list)  # recurrent-dropout masks
    gates: dict[str, list[Tensor]] = field(default_factory=dict)  # gate -> [(B, H)] per step

    @property
    def steps(self) -> int:
        return len(self.h)


def find_layers(model: nn.Module) -> list[tuple[str, Recurrent]]:
    """Every ``Recurrent`` layer of ``model`` with its module name (``"rnn"`` for a bare layer)."""
    return [(name or "rnn", m) for name, m in model.named_modules() if isinstance(m, Recurrent)]


def _wrap(trace: CellTrace, retain: bool) -> Callable[..., Any]:
    original = type(trace.cell).recur.__get__(trace.cell)

    def recur(xp: Tensor, state: State, noise: Tensor | None = None) -> tuple[Tensor, State]:
        y, new = original(xp, state, noise)
        h = new.h if isinstance(new, LSTMState) else new
        if retain and h.requires_grad:
            h.retain_grad()
        trace.h.append(h)
        trace.xp.append(xp.detach())
        trace.state_in.append(detach_state(state))
        trace.noise.append(None if noise is None else noise.detach())
        for gate, value in gate_values(trace.cell, xp, state, noise, h).items():
            trace.gates.setdefault(gate, []).append(value)
        return y, new

    return recur


def _reference_step(cell: RecurrentCell) -> Callable[[Tensor, State], tuple[Tensor, State]]:
    """The step through the (wrapped) ``recur``: what ``native_step`` computes, but recorded."""

    def step(x: Tensor, state: State) -> tuple[Tensor, State]:
        return cell.recur(cell.project_input(x), state)

    return step


@contextmanager
def record_steps(model: nn.Module, *, retain_grad: bool = False) -> Iterator[list[CellTrace]]:
    """Record each step of each ``Recurrent`` layer of ``model`` while the context is open.

    With ``retain_grad`` each ``h_t`` keeps its ``.grad`` after ``loss.backward()``.
    Raises ``ValueError`` when ``model`` holds no ``Recurrent`` layer.
    """
    layers = find_layers(model)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} holds no rnnkit.Recurrent layer; diagnostics trace those"
        )
    traces: list[CellTrace] = []
    saved: list[tuple[Recurrent, bool]] = []
    cells: list[RecurrentCell] = []
    try:
        for name, layer in layers:
            saved.append((layer, layer.force_loop))
            layer.force_loop = True
            D = layer.num_directions
            for i, cell in enumerate(layer.cells):
                assert isinstance(cell, RecurrentCell)
                suffix = ".reverse" if i % D == 1 else ""
                trace = CellTrace(f"{name}.layer{i // D}{suffix}", cell)
                cell.__dict__["recur"] = _wrap(trace, retain_grad)
                cell.__dict__["native_step"] = _reference_step(cell)
                cells.append(cell)
                traces.append(trace)
        yield traces
    finally:
        for cell in cells:
            cell.__dict__.pop("recur", None)
            cell.__dict__.pop("native_step", None)
        for layer, force in saved:
            layer.force_loop = force
