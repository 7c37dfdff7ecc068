"""The ``Recurrent`` layer: runs any cell over time.

It owns everything a cell does not: the time axis, ``batch_first``, stacking, both directions,
dropout between layers, initial state, ``lengths`` of padded batches — and the choice of how to run:

- ``native``: the plain Elman/LSTM/GRU cells go to torch's fused kernels (``torch.lstm`` & co.,
  oneDNN on CPU, cuDNN on GPU) with the cells' own parameter tensors;
- ``fused``: on the CPU, LSTM and GRU with layer norm, per-sequence recurrent dropout or zoneout
  run their whole time loop in rnnkit's C++ extension (``rnnkit.fused``), when it is built;
- ``scan``: cells whose gates read ``x_t`` only (minGRU, minLSTM): on the CPU the C++ linear
  recurrence (``scan:cpp``), on CUDA (or without the extension) one log-space parallel scan;
- ``loop``: everything else (custom cells, projection with a variant, no extension), and any cell
  when ``force_loop=True`` — the reference every fast path is tested against. The input half of
  every step (``W_ih x_t``) still runs as one product over all steps.

``last_path`` records which one ran and why, so a user who asked for a variant can see whether the
fused kernel was kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit import fused
from rnnkit.cells import CELLS, ElmanCell, GRUCell, LSTMCell, RecurrentCell, ScanCell
from rnnkit.types import LSTMState, State, map_state

# torch.nn.RNNBase.mode -> (rnnkit cell name, cell options that mode implies)
_TORCH_MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "LSTM": ("lstm", {}),
    "GRU": ("gru", {}),
    "RNN_TANH": ("rnn", {"nonlinearity": "tanh"}),
    "RNN_RELU": ("rnn", {"nonlinearity": "relu"}),
}
_TORCH_KEY = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?")

_UNPLANNED = object()  # marks a training mode whose step plan is not made yet

_NATIVE_OPS: dict[str, Callable[..., Any]] = {
    "lstm": torch.lstm,
    "gru": torch.gru,
    "rnn_tanh": torch.rnn_tanh,
    "rnn_relu": torch.rnn_relu,
}


class Recurrent(nn.Module):
    r"""Run a cell over time, stacked and in both directions, like ``torch.nn.LSTM``.

    **Arguments:**
    - ``cell``: a cell family name (``"rnn"``/``"elman"``, ``"lstm"``, ``"gru"``, ``"mingru"``,
      ``"minlstm"``) or a factory ``(input_size) -> RecurrentCell`` for custom cells.
    - ``input_size`` I, ``hidden_size`` H.
    - keyword-only: ``num_layers`` L, ``bidirectional`` (D = 2), ``dropout`` between layers,
      ``batch_first``, ``force_loop`` (run the reference Python loop whatever the cell), and every
      cell option (``bias``, ``proj_size``, ``nonlinearity``, ``layer_norm``, ``recurrent_dropout``,
      ``recurrent_dropout_shared``, ``zoneout``, ``forget_bias``, ``recurrent_init``,
      ``input_init``), passed to each cell.

    **Shapes** (O = proj_size or H):
    - ``x``: ``(T, B, I)``, ``(B, T, I)`` when ``batch_first``, or unbatched ``(T, I)``.
    - ``lengths``: ``(B,)`` integers in ``[1, T]``; steps past a length are padding.
    - ``state`` and the returned final state: ``(L*D, B, H)``, or ``LSTMState(h (L*D, B, O),
      c (L*D, B, H))``, index ``layer * D + direction``, each taken at its sequence's own last step.
    - output: ``(T, B, D*O)`` (``(B, T, D*O)`` when ``batch_first``), zero past each length.
    """

    scan_cpu_max_width: int = 1024
    """On the CPU, scan cells run the parallel scan only while ``B * H`` is at most this; wider
    batches run the step loop, whose per-step cost is then the same elementwise work without the
    scan's extra passes (measured on 2 cores: ``benchmarks/scan_crossover.py``). On CUDA the scan
    always runs."""

    def __init__(
        self,
        cell: str | Callable[[int], RecurrentCell],
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = False,
        force_loop: bool = False,
        **cell_options: Any,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        factory = _cell_factory(cell, hidden_size, cell_options)
        directions = 2 if bidirectional else 1
        cells: list[RecurrentCell] = []
        size = input_size
        for _ in range(num_layers):
            layer_cells = [factory(size) for _ in range(directions)]
            cells += layer_cells
            size = directions * layer_cells[0].output_size
        self.cells = nn.ModuleList(cells)
        # The same modules as a plain list: indexing a ModuleList costs microseconds per step.
        self._cell_list = cells
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.num_directions = directions
        self.dropout = dropout
        self.batch_first = batch_first
        self.force_loop = force_loop
        self.last_path: str = "not run yet"
        self._widths: tuple[bool, list[int]] | None = None
        self._step_plans: dict[bool, Any] = {}
        self._step_cache: tuple[State, Any] | None = None
        self._register_load_state_dict_pre_hook(self._rename_torch_keys)

    @classmethod
    def from_torch(cls, module: nn.RNNBase, **options: Any) -> Recurrent:
        """A layer equal to ``module`` (``torch.nn.RNN``, ``LSTM`` or ``GRU``), weights copied.

        Layers, directions, ``proj_size``, ``bias``, ``batch_first``, inter-layer ``dropout`` and
        the Elman nonlinearity follow the module; ``options`` adds rnnkit-only cell options (e.g.
        ``recurrent_dropout``) or overrides.
        """
        if not isinstance(module, nn.RNNBase) or module.mode not in _TORCH_MODES:
            raise ValueError(
                f"from_torch expects torch.nn.RNN, LSTM or GRU, got {type(module).__name__}"
            )
        cell, extra = _TORCH_MODES[module.mode]
        kwargs: dict[str, Any] = {
            "num_layers": module.num_layers,
            "bidirectional": module.bidirectional,
            "dropout": module.dropout,
            "batch_first": module.batch_first,
            "bias": module.bias,
            **extra,
        }
        if module.proj_size:
            kwargs["proj_size"] = module.proj_size
        layer = cls(cell, module.input_size, module.hidden_size, **{**kwargs, **options})
        ref = next(module.parameters())
        layer.to(device=ref.device, dtype=ref.dtype)
        layer.load_state_dict(module.state_dict())
        return layer

    def torch_state_dict(self) -> dict[str, Tensor]:
        """The parameters under ``torch.nn.LSTM``/``GRU``/``RNN``'s names (``weight_ih_l0``,
        ``weight_hh_l1_reverse``, ...), for loading into the equivalent torch module."""
        D = self.num_directions
        return {
            f"{name}_l{i // D}{'_reverse' if i % D else ''}": p.detach()
            for i, cell in enumerate(self._cell_list)
            for name, p in cell.named_parameters(recurse=False)
        }

    def _rename_torch_keys(self, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
        """Accept torch.nn's parameter names: ``weight_ih_l{k}[_reverse]`` -> ``cells.{k*D+d}.``."""
        D = self.num_directions
        for key in [k for k in state_dict if k.startswith(prefix)]:
            match = _TORCH_KEY.fullmatch(key[len(prefix) :])
            if match is None:
                continue
            name, k, reverse = match.group(1), int(match.group(2)), match.group(3) is not None
            if reverse and D == 1:
                raise ValueError(
                    f"state dict key {key!r} is for a bidirectional layer; this one is not"
                )
            state_dict[f"{prefix}cells.{k * D + int(reverse)}.{name}"] = state_dict.pop(key)

    @property
    def output_size(self) -> int:
        """The feature size of the output, ``D * O``."""
        return self.num_directions * self._cell_list[0].output_size

    def _first_param(self) -> Tensor:
        """The first cell's input weight (or any parameter): the layer's dtype and device."""
        w = getattr(self._cell_list[0], "weight_ih", None)
        return w if isinstance(w, Tensor) else next(self.parameters())

    def _dtype(self) -> torch.dtype:
        return self._first_param().dtype

    def init_state(
        self,
        batch_size: int,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> State:
        """Zeros in the layer's state layout for ``batch_size`` sequences (on the layer's device
        and in its dtype unless given)."""
        is_lstm, widths = self._state_widths()
        if dtype is None or device is None:
            p = self._first_param()
            dtype, device = dtype or p.dtype, device or p.device
        n = len(self._cell_list)
        parts = [torch.zeros(n, batch_size, w, device=device, dtype=dtype) for w in widths]
        return LSTMState(parts[0], parts[1]) if is_lstm else parts[0]

    def plan(self, batch_size: int | None = None) -> tuple[str, str]:
        """The path the next ``forward`` will take in the current mode, and why.

        ``batch_size`` matters only for scan cells on the CPU (see ``scan_cpu_max_width``).
        """
        cells = self._cell_list
        if self.force_loop:
            return "loop", "force_loop=True"
        param = self._first_param()
        if all(isinstance(c, ScanCell) for c in cells):
            cpp = [fused.fusable(c, param) for c in cells]
            if not any(cpp):
                return "scan:cpp", "gates read x_t only: C++ linear recurrence (fwd + reverse pass)"
            width = (batch_size or 1) * self.hidden_size
            if not param.is_cuda and width > self.scan_cpu_max_width:
                return "loop", (
                    f"scan cell on CPU with B*H = {width} > scan_cpu_max_width = "
                    f"{self.scan_cpu_max_width}: the step loop is faster here ({cpp[0]})"
                )
            return "scan", "gates read x_t only: parallel scan (log space, chunked)"
        blockers = [b for b in (c.native_blocker() for c in cells) if b]
        if not blockers:
            op = getattr(cells[0], "native_op", None)
            same = all(getattr(c, "native_op", None) == op for c in cells)
            if same and op in _NATIVE_OPS:
                kernel = "cuDNN" if self._on_cuda() else "oneDNN/ATen"
                return f"native:{op}", f"plain cell: torch.{op} fused kernel ({kernel})"
            blockers = ["cells of different kinds have no single fused kernel"]
        why_not = next((w for w in (fused.fusable(c, param) for c in cells) if w), None)
        if why_not is None:
            kind = "lstm" if isinstance(cells[0], LSTMCell) else "gru"
            return f"fused:{kind}", f"{blockers[0]}: C++ fused time loop (rnnkit.fused)"
        return "loop", f"{blockers[0]}; no fused C++ loop: {why_not}"

    def _on_cuda(self) -> bool:
        return self._first_param().is_cuda

    def forward(
        self, x: Tensor, state: State | None = None, *, lengths: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """Run the whole sequence. See the class docstring for shapes."""
        x = self._check_input(x)
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)  # (T, 1, I)
        elif self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        T, B = x.shape[0], x.shape[1]
        if T == 0:
            raise ValueError(f"x has no time steps: shape {tuple(x.shape)}")
        if unbatched and state is not None:
            state = map_state(state, lambda s: s.unsqueeze(1))
        mask = None
        if lengths is not None:
            lengths = self._check_lengths(lengths, T, B)
            if bool((lengths < T).any()):
                mask = torch.arange(T, device=x.device)[:, None] < lengths.to(x.device)[None, :]
                # Padding may hold anything (NaN included); zero it so it can reach neither
                # outputs nor gradients of real steps, whatever path runs.
                x = torch.where(mask[..., None], x, 0.0)
            else:
                lengths = None
        if state is None:
            state = self.init_state(B, device=x.device, dtype=x.dtype)
        else:
            self._check_state(state, B)
        path, reason = self.plan(B)
        if path.startswith("native"):
            out, final = self._run_native(x, state, lengths)
        else:
            out, final = self._run_layers(x, state, lengths, mask, path=path)
        self.last_path = f"{path} ({reason})"
        if unbatched:
            return out.squeeze(1), map_state(final, lambda s: s.squeeze(1))
        if self.batch_first:
            out = out.transpose(0, 1)  # (B, T, D*O)
        return out, final

    def step(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Advance one time step for streaming: ``x`` ``(B, I)`` -> ``(y (B, O), state)``.

        Stepping through a sequence equals ``forward`` on it. Unidirectional layers only: a
        backward direction needs the future.

        A one-layer plain Elman/LSTM/GRU (no mask to draw) takes a fast path costing little more
        than torch's cell kernel itself: the state this method returned last is recognised by
        identity and its kernel-shaped ``(B, H)`` tensors reused (no indexing, no checks); any other
        state is checked once. A bad ``x`` is diagnosed after the kernel rejects it.
        """
        plan = self._step_plans.get(self.training, _UNPLANNED)
        if plan is _UNPLANNED:
            plan = self._step_plans[self.training] = self._plan_step()
        if plan is None:
            return self._step_general(x, state)
        cache = self._step_cache
        if state is not None and cache is not None and state is cache[0]:
            inner = cache[1]
        else:
            self._check_step_input(x)
            if state is None:
                state = self.init_state(x.shape[0], device=x.device, dtype=x.dtype)
            else:
                self._check_state(state, x.shape[0])
            inner = (state.h[0], state.c[0]) if isinstance(state, LSTMState) else state[0]
        kernel, cell, is_lstm = plan
        # Read at each call from the cell's own table: load_state_dict(assign=True),
        # functional_call and .to() with swapped parameters all go through it.
        p = cell._parameters
        try:
            w = (p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
            if is_lstm:
                h, c = kernel(x, inner, *w)
                new: State = LSTMState(h.unsqueeze(0), c.unsqueeze(0))
                inner = (h, c)
            else:
                h = inner = kernel(x, inner, *w)
                new = h.unsqueeze(0)
        except (RuntimeError, IndexError, TypeError):  # what torch's cell kernels raise
            self._check_step_input(x)
            if cache is not None and state is cache[0]:
                self._check_state(cache[0], x.shape[0])
            raise
        # A state with a graph is not kept: it would hold the graph alive past the caller's use.
        self._step_cache = None if h.requires_grad else (new, inner)
        return h, new

    def train(self, mode: bool = True) -> Recurrent:
        self._step_plans = {}  # the step plan depends on the mode (masks are drawn in training)
        self._step_cache = None
        return super().train(mode)

    def _plan_step(self) -> tuple[Callable[..., Any], RecurrentCell, bool] | None:
        """The fused cell kernel and its parameters for ``step``, or None for the general path."""
        if len(self._cell_list) != 1:
            return None
        cell = self._cell_list[0]
        if cell.native_blocker() is not None or (
            cell.training and getattr(cell, "recurrent_dropout", 0.0) > 0
        ):
            return None
        if isinstance(cell, LSTMCell):
            if cell.proj_size:
                return None
            kernel: Callable[..., Any] = torch.lstm_cell
        elif isinstance(cell, GRUCell):
            kernel = torch.gru_cell
        elif isinstance(cell, ElmanCell):
            kernel = torch.rnn_tanh_cell if cell.nonlinearity == "tanh" else torch.rnn_relu_cell
        else:
            return None
        return kernel, cell, isinstance(cell, LSTMCell)

    def _check_step_input(self, x: Tensor) -> None:
        if self.bidirectional:
            raise ValueError(
                "step() needs a unidirectional layer: the backward direction reads the future"
            )
        if not isinstance(x, Tensor) or x.dim() != 2:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"step() expects x of shape (B, I), got {shape}")
        if x.shape[1] != self.input_size or x.dtype != self._dtype():
            self._check_input(x)  # raises with the exact reason

    def _step_general(self, x: Tensor, state: State | None) -> tuple[Tensor, State]:
        self._check_step_input(x)
        cells = self._cell_list
        B = x.shape[0]
        if state is None:
            state = self.init_state(B, device=x.device, dtype=x.dtype)
        else:
            self._check_state(state, B)
        if len(cells) == 1:  # no stacking copies
            y, s = cells[0](x, _index(state, 0))
            return y, map_state(s, lambda t: t.unsqueeze(0))
        new_states = []
        y = x
        for layer, cell in enumerate(cells):
            if layer > 0 and self.dropout > 0:
                y = F.dropout(y, self.dropout, self.training)
            y, s = cell(y, _index(state, layer))
            new_states.append(s)
        return y, _stack(new_states)

    # --- paths -------------------------------------------------------------------------------

    def _run_native(self, x: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
        cells = self._cell_list
        op = str(getattr(cells[0], "native_op", ""))
        params: list[Tensor] = []
        for c in cells:
            noise = c.sample_noise(1, device=x.device, dtype=x.dtype) if self.training else None
            params += c.native_params(noise)
        has_bias = bool(getattr(cells[0], "bias", True))
        hx: Any = [state.h, state.c] if isinstance(state, LSTMState) else state
        common = (has_bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        if lengths is None:
            result = _NATIVE_OPS[op](x, hx, params, *common, False)
            out, final = result[0], result[1:]
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
            order, unorder = packed.sorted_indices, packed.unsorted_indices
            assert order is not None and unorder is not None
            hx = _map_hx(hx, lambda s: s.index_select(1, order))
            result = _NATIVE_OPS[op](packed.data, packed.batch_sizes, hx, params, *common)
            out_packed = PackedSequence(
                result[0], packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
            )
            out, _ = pad_packed_sequence(out_packed, total_length=x.shape[0])
            final = tuple(s.index_select(1, unorder) for s in result[1:])
        if isinstance(state, LSTMState):
            return out, LSTMState(final[0], final[1])
        return out, final[0]

    def _run_layers(
        self, x: Tensor, state: State, lengths: Tensor | None, mask: Tensor | None, *, path: str
    ) -> tuple[Tensor, State]:
        run = _RUNNERS[path.split(":")[0] if path.startswith("fused") else path]
        D = self.num_directions
        reverse_index = _reverse_index(x.shape[0], lengths, x.device) if D == 2 else None
        finals: list[State] = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            outs = []
            for d in range(D):
                i = layer * D + d
                cell = self._cell_list[i]
                xs = x if d == 0 else _gather_time(x, reverse_index)
                out, final = run(cell, xs, _index(state, i), mask, lengths, self.training)
                outs.append(out if d == 0 else _gather_time(out, reverse_index))
                finals.append(final)
            x = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # (T, B, D*O)
        return x, _stack(finals)

    # --- checks at the boundary ----------------------------------------------------------------

    def _check_input(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(
                f"x must be floating point, got {x.dtype}; "
                "embed token ids first (e.g. torch.nn.Embedding)"
            )
        if x.dim() not in (2, 3):
            layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
            raise ValueError(
                f"x must have rank 3 {layout} or 2 (T, I), got rank {x.dim()} {tuple(x.shape)}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"x has {x.shape[-1]} features in its last dimension, "
                f"the layer expects input_size={self.input_size}"
            )
        dtype = self._dtype()
        if x.dtype != dtype:
            raise ValueError(
                f"x is {x.dtype} but the layer's parameters are {dtype}; convert one of them"
            )
        return x

    def _check_lengths(self, lengths: Tensor, T: int, B: int) -> Tensor:
        if not isinstance(lengths, Tensor):
            lengths = torch.as_tensor(lengths)
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise ValueError(f"lengths must be integers, got {lengths.dtype}")
        if lengths.dim() != 1 or lengths.shape[0] != B:
            raise ValueError(
                f"lengths must have shape (B,) = ({B},) to match the batch, "
                f"got {tuple(lengths.shape)}"
            )
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > T:
            raise ValueError(f"lengths must be in [1, T={T}], got values from {lo} to {hi}")
        return lengths.long()

    def _state_widths(self) -> tuple[bool, list[int]]:
        """Whether the state is an LSTMState, and the last-dimension size of each of its parts;
        read once from a meta-device state, so checking a streaming step allocates nothing."""
        if self._widths is None:
            s = self._cell_list[0].init_state(1, device=torch.device("meta"))
            parts = [s.h, s.c] if isinstance(s, LSTMState) else [s]
            self._widths = (isinstance(s, LSTMState), [int(p.shape[-1]) for p in parts])
        return self._widths

    def _check_state(self, state: State, B: int) -> None:
        is_lstm, widths = self._state_widths()
        n, dtype = len(self._cell_list), self._dtype()
        # Fast exit for a well-formed state (every streaming step comes here).
        if is_lstm and isinstance(state, LSTMState):
            h, c = state
            if (
                isinstance(h, Tensor)
                and isinstance(c, Tensor)
                and h.shape == (n, B, widths[0])
                and c.shape == (n, B, widths[1])
                and h.dtype == dtype
                and c.dtype == dtype
            ):
                return
        elif (
            not is_lstm
            and isinstance(state, Tensor)
            and state.shape == (n, B, widths[0])
            and state.dtype == dtype
        ):
            return
        if is_lstm != isinstance(state, LSTMState):
            kind = "LSTMState(h, c)" if is_lstm else "a single tensor"
            raise ValueError(f"state must be {kind} for this layer, got {type(state).__name__}")
        names, parts = (
            (("h", "c"), state) if isinstance(state, LSTMState) else (("state",), [state])
        )
        for name, got, width in zip(names, parts, widths, strict=True):
            want = (n, B, width)
            if not isinstance(got, Tensor) or tuple(got.shape) != want:
                shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
                raise ValueError(f"{name} must have shape (L*D, B, size) = {want}, got {shape}")
            if got.dtype != dtype:
                raise ValueError(f"{name} is {got.dtype} but the layer's parameters are {dtype}")

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"num_layers={self.num_layers}, bidirectional={self.bidirectional}, "
            f"dropout={self.dropout}, batch_first={self.batch_first}"
        )


# --- per-direction runners ---------------------------------------------------------------------


def _run_loop(
    cell: RecurrentCell,
    x: Tensor,
    state: State,
    mask: Tensor | None,
    lengths: Tensor | None,
    training: bool,
) -> tuple[Tensor, State]:
    """The reference: one ``cell.recur`` per step; masked steps keep the previous state."""
    xp = cell.project_input(x)  # (T, B, G*H), all steps in one product
    noise = cell.sample_noise(x.shape[1], device=x.device, dtype=x.dtype) if training else None
    outs = []
    # unbind, not xp[t]: indexing would give each step's backward a full-size zero gradient.
    for t, xp_t in enumerate(xp.unbind(0)):
        y, new = cell.recur(xp_t, state, noise)
        if mask is not None:
            m = mask[t][:, None]  # (B, 1)
            new = _where_state(m, new, state)
            y = torch.where(m, y, 0.0)
        state = new
        outs.append(y)
    return torch.stack(outs), state


def _run_scan(
    cell: RecurrentCell,
    x: Tensor,
    state: State,
    mask: Tensor | None,
    lengths: Tensor | None,
    training: bool,
) -> tuple[Tensor, State]:
    assert isinstance(cell, ScanCell) and isinstance(state, Tensor)
    return _masked_scan_output(cell.scan(cell.project_input(x), state), mask, lengths)


def _run_fused(
    cell: RecurrentCell,
    x: Tensor,
    state: State,
    mask: Tensor | None,
    lengths: Tensor | None,
    training: bool,
) -> tuple[Tensor, State]:
    return fused.run_cell(cell, x, state, lengths, training)


def _run_scan_cpp(
    cell: RecurrentCell,
    x: Tensor,
    state: State,
    mask: Tensor | None,
    lengths: Tensor | None,
    training: bool,
) -> tuple[Tensor, State]:
    assert isinstance(state, Tensor)
    return _masked_scan_output(fused.run_scan(cell, x, state), mask, lengths)


def _masked_scan_output(
    h: Tensor, mask: Tensor | None, lengths: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Outputs zero past each length and the state at each length, from all states ``h``."""
    if mask is None or lengths is None:
        return h, h[-1]
    last = (lengths.to(h.device) - 1)[None, :, None].expand(1, *h.shape[1:])
    final = h.gather(0, last).squeeze(0)
    return torch.where(mask[..., None], h, 0.0), final


_RUNNERS = {"loop": _run_loop, "scan": _run_scan, "scan:cpp": _run_scan_cpp, "fused": _run_fused}


# --- helpers ----------------------------------------------------------------------------------


def _cell_factory(
    cell: str | Callable[[int], RecurrentCell], hidden_size: int, options: dict[str, Any]
) -> Callable[[int], RecurrentCell]:
    if not isinstance(cell, str):
        if options:
            raise ValueError(f"cell options {sorted(options)} apply to named cells only")
        return cell
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(CELLS)}")
    cls = CELLS[cell]

    def make(input_size: int) -> RecurrentCell:
        try:
            return cls(input_size, hidden_size, **options)
        except TypeError as err:
            import inspect

            valid = [
                p
                for p in inspect.signature(cls).parameters
                if p not in ("input_size", "hidden_size")
            ]
            raise ValueError(f"{cell!r} cell: {err}; its options are {valid}") from None

    return make


def _reverse_index(T: int, lengths: Tensor | None, device: torch.device) -> Tensor:
    """``(T, B)`` or ``(T, 1)`` time index that reverses each sequence within its own length."""
    t = torch.arange(T, device=device)[:, None]  # (T, 1)
    if lengths is None:
        return T - 1 - t
    n = lengths.to(device)[None, :]  # (1, B)
    return torch.where(t < n, n - 1 - t, t)


def _gather_time(x: Tensor, index: Tensor | None) -> Tensor:
    assert index is not None
    # Not "index.shape[1] == 1 -> flip": a batch of one with a length < T also has one column.
    return x.gather(0, index[..., None].expand(-1, x.shape[1], x.shape[-1]))


def _index(state: State, i: int) -> State:
    if isinstance(state, LSTMState):
        return LSTMState(state.h[i], state.c[i])
    return state[i]


def _stack(states: Sequence[State]) -> State:
    if isinstance(states[0], LSTMState):
        return LSTMState(
            torch.stack([s.h for s in states]),  # type: ignore[union-attr]
            torch.stack([s.c for s in states]),  # type: ignore[union-attr]
        )
    return torch.stack(states)  # type: ignore[arg-type]


def _map_hx(hx: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    return [fn(s) for s in hx] if isinstance(hx, list) else fn(hx)


def _where_state(m: Tensor, new: State, old: State) -> State:
    if isinstance(new, LSTMState) and isinstance(old, LSTMState):
        return LSTMState(torch.where(m, new.h, old.h), torch.where(m, new.c, old.c))
    assert isinstance(new, Tensor) and isinstance(old, Tensor)
    return torch.where(m, new, old)
