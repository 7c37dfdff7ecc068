"""Every model family as a graph with its recurrent state as explicit inputs and outputs.

A graph is an ``nn.Module`` whose ``forward`` takes and returns plain tensors (named by its
``GraphSpec``), batch first, so one exported file serves both uses of a recurrent model: the whole
sequence (``T`` steps) and streaming (``T = 1`` per call, the state fed back in). Its time loop has
two implementations, chosen per call:

- eager (``torch`` in Python): the model's own ``Recurrent`` layer, whatever fast path it takes;
- exporting (``torch.compiler.is_exporting()``): each cell's ``project_input`` once over all steps,
  then its ``recur`` inside ``torch._higher_order_ops.scan``, which the ONNX exporter turns into an
  ONNX ``Scan`` — one body for any ``T``, every cell (minGRU's step form, no ``logcumsumexp``;
  layer norm; zoneout's expectation), padded steps masked by ``lengths`` without any data-dependent
  branch (a row keeps its state past its length; its outputs there are 0, as in ``Recurrent``);
- scripting (inside ``scripting()``, for ``torch.jit.trace``): the same masked step, traced once per
  cell, run by a ``torch.jit.script`` loop over ``T``, so the TorchScript file is not unrolled at
  the length it was traced with. Positions come from ``cumsum`` of ones, not ``arange(T)``, so no
  size is frozen into the trace.

Parity of the two (``rnnkit.export.onnx.check_parity``) is what the export command checks before
it writes a file. Shapes follow the glossary: B batch, T steps, S source steps (seq2seq).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch._higher_order_ops.scan import scan

from rnnkit.cells import RecurrentCell
from rnnkit.export._loop import cell_loop
from rnnkit.models import Forecaster, LanguageModel, Seq2Seq, SequenceClassifier, SequenceTagger
from rnnkit.models._common import final_hidden
from rnnkit.models.ensemble import EnsembleClassifier
from rnnkit.recurrent import Recurrent
from rnnkit.types import LSTMState, State

Flat = tuple[Tensor, ...]  # a layer state as plain tensors: (h,) or (h, c), each (L*D, B, size)

EXPORT_FORMAT = "rnnkit.export/1"  # export_meta.json of an exported model


@dataclass
class GraphSpec:
    """Names of a graph's inputs and outputs (in ``forward``'s order, state tensors flattened) and
    which axes are dynamic (name -> {axis: "B" | "T" | "S"})."""

    inputs: list[str]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)
    state: list[str] = field(default_factory=list)  # the inputs that forward takes as one tuple

    def __post_init__(self) -> None:
        for name in self.state:  # (L*D, B, size), in and out
            self.dynamic.setdefault(name, {1: "B"})
            self.dynamic.setdefault(f"{name}_n", {1: "B"})

    def arguments(self, values: dict[str, Tensor]) -> tuple[object, ...]:
        """``forward``'s positional arguments from named tensors (the state grouped as a tuple)."""
        args: list[object] = []
        for name in self.inputs:
            if name not in self.state:
                args.append(values[name])
            elif name == self.state[0]:
                args.append(tuple(values[n] for n in self.state))
        return tuple(args)


_SCRIPTING = False


def _exporting() -> bool:
    return _SCRIPTING or bool(torch.compiler.is_exporting())


@contextmanager
def scripting() -> Iterator[None]:
    """Run graphs in their TorchScript form (scripted time loops) while tracing them."""
    global _SCRIPTING
    _SCRIPTING = True
    try:
        yield
    finally:
        _SCRIPTING = False


def _positions(like: Tensor, dim: int) -> Tensor:
    """``0, 1, 2, ...`` along ``dim`` of an integer tensor shaped like ``like`` (no size read)."""
    return torch.ones_like(like, dtype=torch.long).cumsum(dim) - 1


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """``x[index[t, b], b]`` for time-major ``x`` ``(T, B, F)`` and ``index`` ``(T, B)``."""
    return x.gather(0, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def state_names(layer: Recurrent, suffix: str = "") -> list[str]:
    """``["h", "c"]`` for an LSTM layer, else ``["h"]`` (with ``suffix`` appended)."""
    is_lstm = isinstance(layer.init_state(1, device=torch.device("meta")), LSTMState)
    return [f"h{suffix}", f"c{suffix}"] if is_lstm else [f"h{suffix}"]


def _pack(flat: Flat) -> State:
    return LSTMState(flat[0], flat[1]) if len(flat) == 2 else flat[0]


def _flat(state: State) -> Flat:
    return (state.h, state.c) if isinstance(state, LSTMState) else (state,)


def _scan_cell(cell: RecurrentCell, x: Tensor, mask: Tensor, state: Flat) -> tuple[Tensor, Flat]:
    """One direction of one layer as a scan: ``x`` ``(T, B, I)``, ``mask`` ``(T, B, 1)`` bool."""
    xp = cell.project_input(x)  # (T, B, G*H), all steps in one product

    def body(carry: Flat, inputs: tuple[Tensor, Tensor]) -> tuple[Flat, Tensor]:
        xp_t, m = inputs
        y, new = cell.recur(xp_t, _pack(carry))
        kept = tuple(torch.where(m, n, o) for n, o in zip(_flat(new), carry, strict=True))
        return kept, torch.where(m, y, 0.0)

    final, ys = scan(body, state, (xp, mask))
    return ys, tuple(final)


class StatefulRecurrent(nn.Module):
    """A model's batch-first ``Recurrent`` with its state as a tuple of tensors."""

    def __init__(self, layer: Recurrent) -> None:
        super().__init__()
        self.layer = layer
        self.names = state_names(layer)
        self._loops = nn.ModuleList()  # TorchScript time loops, one per cell (``script_loops``)

    def script_loops(self) -> None:
        """Build the scripted per-cell time loops that ``scripting()`` mode runs."""
        self._loops = nn.ModuleList(cell_loop(c, len(self.names)) for c in self.layer._cell_list)

    def zeros(self, batch: int) -> Flat:
        return _flat(self.layer.init_state(batch))

    def forward(self, x: Tensor, lengths: Tensor, state: Flat) -> tuple[Tensor, Flat]:
        """``x`` ``(B, T, I)``, ``lengths`` ``(B,)`` -> outputs ``(B, T, D*O)`` and final state."""
        if not _exporting():
            out, final = self.layer(x, _pack(state), lengths=lengths)
            return out, _flat(final)
        layer = self.layer
        x = x.transpose(0, 1)  # (T, B, I)
        t = _positions(x[..., 0], 0)  # (T, B)
        n = lengths[None, :]  # (1, B)
        mask = (t < n)[..., None]  # (T, B, 1)
        D = layer.num_directions
        reverse = torch.where(t < n, n - 1 - t, t)  # each row reversed within its own length
        finals: list[Flat] = []
        for i_layer in range(layer.num_layers):
            outs = []
            for d in range(D):
                i = i_layer * D + d
                xs = x if d == 0 else _gather(x, reverse)
                cell, s_i = layer._cell_list[i], tuple(s[i] for s in state)
                if _SCRIPTING:
                    out, final = self._loops[i](cell.project_input(xs), mask, s_i)
                else:
                    out, final = _scan_cell(cell, xs, mask, s_i)
                outs.append(out if d == 0 else _gather(out, reverse))
                finals.append(final)
            x = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # (T, B, D*O)
        stacked = tuple(torch.stack([f[k] for f in finals]) for k in range(len(state)))
        return x.transpose(0, 1), stacked

    def step(self, x: Tensor, state: Flat) -> tuple[Tensor, Flat]:
        """One step of a unidirectional layer: ``x`` ``(B, I)`` -> ``(y (B, O), state)``."""
        if not _exporting():
            y, new = self.layer.step(x, _pack(state))
            return y, _flat(new)
        finals: list[Flat] = []
        for i, cell in enumerate(self.layer._cell_list):
            x, new = cell.recur(cell.project_input(x), _pack(tuple(s[i] for s in state)))
            finals.append(_flat(new))
        return x, tuple(torch.stack([f[k] for f in finals]) for k in range(len(state)))


def _attend(attention: nn.Module | None, query: Tensor, memory: Tensor, mask: Tensor, keys: Tensor):
    """Attention without the eager module's data-dependent checks: ``(context (B, K), weights
    (B, S))``, padded source positions weighted exactly 0."""
    assert attention is not None
    scores = attention.score(query, keys).masked_fill(~mask, float("-inf"))  # type: ignore[operator]
    weights = torch.softmax(scores, dim=-1)
    return torch.bmm(weights.unsqueeze(1), memory).squeeze(1), weights


def _features(inputs: nn.Module, x: Tensor) -> Tensor:
    """Token ids through the embedding (no range check: the predictor checks ids), or features."""
    embedding = getattr(inputs, "embedding", None)
    return embedding(x) if embedding is not None else x


def _mask(lengths: Tensor, like: Tensor) -> Tensor:
    """``(B, T)`` True at real steps, for batch-first ``like`` ``(B, T, ...)``."""
    return _positions(like[..., 0], 1) < lengths[:, None]


class Graph(nn.Module):
    """One exportable graph of a model; ``spec`` names its inputs and outputs."""

    spec: GraphSpec
    rnn: StatefulRecurrent

    def zeros(self, batch: int) -> Flat:
        """The zero state of ``batch`` rows, as the state inputs of ``spec``."""
        return self.rnn.zeros(batch)

    def script_loops(self) -> None:
        """Build the scripted time loops that ``scripting()`` mode runs."""
        self.rnn.script_loops()


class LanguageModelGraph(Graph):
    """``ids (B, T), lengths (B,), state`` -> ``logits (B, T, V), state``."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model
        self.rnn = StatefulRecurrent(model.rnn)
        names = self.rnn.names
        self.spec = GraphSpec(
            ["x", "lengths", *names],
            ["logits", *[f"{n}_n" for n in names]],
            {"x": {0: "B", 1: "T"}, "lengths": {0: "B"}, "logits": {0: "B", 1: "T"}},
            names,
        )

    def forward(self, x: Tensor, lengths: Tensor, state: Flat) -> tuple[Tensor, ...]:
        out, final = self.rnn(_features(self.model.inputs, x), lengths, state)
        return (self.model._logits(out), *final)


class ClassifierGraph(Graph):
    """``x, lengths, state`` -> ``logits (B, C), state``; ``x`` ``(B, T, I)`` or ``(B, T)`` ids."""

    def __init__(self, model: SequenceClassifier) -> None:
        super().__init__()
        self.model = model
        self.rnn = StatefulRecurrent(model.rnn)
        names = self.rnn.names
        x_axes = {0: "B", 1: "T"}
        self.spec = GraphSpec(
            ["x", "lengths", *names],
            ["logits", *[f"{n}_n" for n in names]],
            {"x": x_axes, "lengths": {0: "B"}, "logits": {0: "B"}},
            names,
        )

    def forward(self, x: Tensor, lengths: Tensor, state: Flat) -> tuple[Tensor, ...]:
        m = self.model
        out, final = self.rnn(_features(m.inputs, x), lengths, state)  # (B, T, D*P)
        pooling = m.config.pooling
        if pooling == "last":
            features = final_hidden(_pack(final), directions=m.rnn.num_directions)
        else:
            mask = _mask(lengths, out)[..., None]  # (B, T, 1)
            if pooling == "mean":
                total = out.masked_fill(~mask, 0.0).sum(dim=1)
                features = total / lengths[:, None].to(out.dtype)
            elif pooling == "max":
                features = out.masked_fill(~mask, float("-inf")).amax(dim=1)
            else:
                assert m.attention is not None and m.query is not None
                query = m.query.expand(out.shape[0], -1)
                keys = m.attention.keys(out)
                features, _ = _attend(m.attention, query, out, mask[..., 0], keys)
        return (m.head(features), *final)


class EnsembleClassifierGraph(Graph):
    """K classifier graphs answering as one `EnsembleClassifier`: each state tensor holds the
    members' states stacked along its first axis ``(K*L*D, B, size)``, so a stream steps every
    member and the state travels (server sessions, signed tokens) as one model's does."""

    def __init__(self, model: EnsembleClassifier) -> None:
        super().__init__()
        self.model = model
        graphs = [ClassifierGraph(m) for m in model.members]  # type: ignore[arg-type]
        self.members = nn.ModuleList(graphs)
        self._graphs = graphs  # the same modules, typed
        spec = graphs[0].spec
        self.spec = GraphSpec(spec.inputs, spec.outputs, dict(spec.dynamic), spec.state)
        self.rows = int(graphs[0].zeros(1)[0].shape[0])  # L*D of one member

    def zeros(self, batch: int) -> Flat:
        parts = [g.zeros(batch) for g in self._graphs]
        return tuple(torch.cat([p[k] for p in parts]) for k in range(len(parts[0])))

    def script_loops(self) -> None:
        for g in self._graphs:
            g.script_loops()

    def forward(self, x: Tensor, lengths: Tensor, state: Flat) -> tuple[Tensor, ...]:
        logits, finals = [], []
        for i, g in enumerate(self._graphs):
            own = tuple(s[i * self.rows : (i + 1) * self.rows] for s in state)  # (L*D, B, size)
            out = g(x, lengths, own)
            logits.append(out[0])
            finals.append(out[1:])
        joined = (torch.cat([f[k] for f in finals]) for k in range(len(state)))
        return (self.model.combine(torch.stack(logits)), *joined)  # (B, C), state


class TaggerGraph(Graph):
    """``x, lengths, state`` -> ``logits (B, T, C)`` (0 past each length), ``state``."""

    def __init__(self, model: SequenceTagger) -> None:
        super().__init__()
        self.model = model
        self.rnn = StatefulRecurrent(model.rnn)
        names = self.rnn.names
        self.spec = GraphSpec(
            ["x", "lengths", *names],
            ["logits", *[f"{n}_n" for n in names]],
            {"x": {0: "B", 1: "T"}, "lengths": {0: "B"}, "logits": {0: "B", 1: "T"}},
            names,
        )

    def forward(self, x: Tensor, lengths: Tensor, state: Flat) -> tuple[Tensor, ...]:
        out, final = self.rnn(_features(self.model.inputs, x), lengths, state)
        logits = self.model.head(out)  # (B, T, C)
        return (logits.masked_fill(~_mask(lengths, out)[..., None], 0.0), *final)


class ForecasterGraph(Graph):
    """``x (B, T, Y), lengths, state`` -> ``mean (B, H, Y)`` [, ``log_var``], state after ``x``.

    Covariates are not part of the graph: the trainer does not fit them yet (``build_forecaster``).
    """

    def __init__(self, model: Forecaster) -> None:
        super().__init__()
        if model.config.covariate_size:
            raise ValueError("export of a forecaster with covariates is not supported")
        if model.config.base != "none":
            raise ValueError(
                f"export of a hybrid forecaster (base {model.config.base!r}) is not supported; "
                "serve it with rnnkit.Predictor or rnnkit predict"
            )
        self.model = model
        self.rnn = StatefulRecurrent(model.rnn)
        names = self.rnn.names
        heads = ["mean", "log_var"] if model.config.distribution == "gaussian" else ["mean"]
        self.spec = GraphSpec(
            ["x", "lengths", *names],
            [*heads, *[f"{n}_n" for n in names]],
            {"x": {0: "B", 1: "T"}, "lengths": {0: "B"}, **{h: {0: "B"} for h in heads}},
            names,
        )

    def forward(self, x: Tensor, lengths: Tensor, state: Flat) -> tuple[Tensor, ...]:
        m, c = self.model, self.model.config
        out, final = self.rnn(x, lengths, state)  # (B, T, P)
        if c.strategy == "direct":
            raw = m.head(final_hidden(_pack(final), directions=1))
            f = m._split(raw.view(x.shape[0], c.horizon, -1))
            return (*_forecast(f.mean, f.log_var), *final)
        last = out.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, out.shape[-1]))[:, 0]
        pred = m._split(m.head(last))  # (B, Y) each
        means, log_vars = [pred.mean], [pred.log_var]
        rolled = final
        for _ in range(c.horizon - 1):
            y_t, rolled = self.rnn.step(means[-1], rolled)
            pred = m._split(m.head(y_t))
            means.append(pred.mean)
            log_vars.append(pred.log_var)
        mean = torch.stack(means, dim=1)  # (B, H, Y)
        log_var = None
        if pred.log_var is not None:
            log_var = torch.stack([v for v in log_vars if v is not None], dim=1)
        return (*_forecast(mean, log_var), *final)


def _forecast(mean: Tensor, log_var: Tensor | None) -> tuple[Tensor, ...]:
    return (mean,) if log_var is None else (mean, log_var)


class Seq2SeqEncoderGraph(Graph):
    """``src (B, S), lengths`` -> the decoder's start: ``h [, c], feed`` and, with attention,
    ``memory (B, S, D*H), mask (B, S), keys (B, S, A)``."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model
        self.rnn = StatefulRecurrent(model.encoder)
        dec = state_names(model.decoder)
        memory = ["memory", "mask", "keys"] if model.attention is not None else []
        self.spec = GraphSpec(
            ["x", "lengths"],
            [*dec, "feed", *memory],
            {
                "x": {0: "B", 1: "S"},
                "lengths": {0: "B"},
                **{n: {1: "B"} for n in dec},
                "feed": {0: "B"},
                **{n: {0: "B", 1: "S"} for n in memory},
            },
        )

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        m = self.model
        embedded = _features(m.src, x)  # (B, S, E)
        memory, final = self.rnn(embedded, lengths, self.rnn.zeros(x.shape[0]))  # (B, S, D*H)
        start = _flat(m._bridge(_pack(final)))
        feed = memory.new_zeros(x.shape[0], m.feed_size)
        if m.attention is None:
            return (*start, feed)
        return (*start, feed, memory, _mask(lengths, memory), m.attention.keys(memory))


class Seq2SeqDecoderGraph(Graph):
    """One decoder step: ``token (B,), h [, c], feed [, memory, mask, keys]`` -> ``logits (B, V),
    h_n [, c_n], feed_n [, weights (B, S)]`` (as ``Seq2Seq.step``)."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model
        self.rnn = StatefulRecurrent(model.decoder)
        names = self.rnn.names
        memory = ["memory", "mask", "keys"] if model.attention is not None else []
        self.spec = GraphSpec(
            ["token", *names, "feed", *memory],
            ["logits", *[f"{n}_n" for n in names], "feed_n"] + (["weights"] if memory else []),
            {
                "token": {0: "B"},
                "feed": {0: "B"},
                **{n: {0: "B", 1: "S"} for n in memory},
                "logits": {0: "B"},
                "feed_n": {0: "B"},
                "weights": {0: "B", 1: "S"},
            },
            names,
        )

    def forward(
        self,
        token: Tensor,
        state: Flat,
        feed: Tensor,
        memory: Tensor | None = None,
        mask: Tensor | None = None,
        keys: Tensor | None = None,
    ) -> tuple[Tensor, ...]:
        m = self.model
        embedded = _features(m.tgt, token[:, None])[:, 0]  # (B, E)
        kind = m.config.attention
        if kind == "bahdanau":
            assert memory is not None and mask is not None and keys is not None
            query = state[0][-1]  # (B, H), top layer s_{t-1}
            context, weights = _attend(m.attention, query, memory, mask, keys)
            y, new = self.rnn.step(torch.cat([embedded, context], dim=-1), state)
            assert m.combine is not None
            hidden = torch.tanh(m.combine(torch.cat([y, context], dim=-1)))
            return (m.out(hidden), *new, context, weights)
        if kind != "none":
            assert memory is not None and mask is not None and keys is not None
            y, new = self.rnn.step(torch.cat([embedded, feed], dim=-1), state)
            context, weights = _attend(m.attention, y, memory, mask, keys)
            assert m.combine is not None
            hidden = torch.tanh(m.combine(torch.cat([context, y], dim=-1)))
            return (m.out(hidden), *new, hidden, weights)
        y, new = self.rnn.step(embedded, state)
        return (m.out(y), *new, feed)


def graphs_for(model: nn.Module) -> dict[str, Graph]:
    """The graphs of a model: ``{"main": ...}``, or ``{"encoder": ..., "decoder": ...}``."""
    if isinstance(model, LanguageModel):
        return {"main": LanguageModelGraph(model)}
    if isinstance(model, SequenceClassifier):
        return {"main": ClassifierGraph(model)}
    if isinstance(model, EnsembleClassifier):
        return {"main": EnsembleClassifierGraph(model)}
    if isinstance(model, SequenceTagger):
        return {"main": TaggerGraph(model)}
    if isinstance(model, Forecaster):
        return {"main": ForecasterGraph(model)}
    if isinstance(model, Seq2Seq):
        return {"encoder": Seq2SeqEncoderGraph(model), "decoder": Seq2SeqDecoderGraph(model)}
    raise ValueError(f"no export graph for {type(model).__name__}")


def graph_specs(model: nn.Module) -> dict[str, GraphSpec]:
    """The ``GraphSpec`` of each graph of ``model``."""
    return {name: graph.spec for name, graph in graphs_for(model).items()}


def state_shapes(model: nn.Module) -> dict[str, list[int]]:
    """The state the main graph (a seq2seq model's decoder) carries: name -> ``[L*D, size]``
    (an ensemble's K members stacked: ``[K*L*D, size]``)."""
    if isinstance(model, EnsembleClassifier):
        one = state_shapes(model.members[0])
        return {n: [len(model.members) * rows, size] for n, (rows, size) in one.items()}
    layer = model.decoder if isinstance(model, Seq2Seq) else model.rnn
    assert isinstance(layer, Recurrent)
    zeros = _flat(layer.init_state(1, device=torch.device("meta")))
    return {
        n: [int(t.shape[0]), int(t.shape[2])]
        for n, t in zip(state_names(layer), zeros, strict=True)
    }


def streaming_blocker(model: nn.Module) -> str | None:
    """None when the main graph can run one step at a time with its state fed back; else why not.

    Streaming at ``T = 1`` equals the whole sequence only when nothing reads the future (a
    bidirectional layer does) and nothing pools over all steps (mean, max, attention pooling).
    """
    if isinstance(model, EnsembleClassifier):
        return streaming_blocker(model.members[0])  # members share one config
    rnn = getattr(model, "rnn", None)
    if isinstance(model, Seq2Seq):
        return "a seq2seq model reads the whole source first; use translate"
    if isinstance(rnn, Recurrent) and rnn.bidirectional:
        return "a bidirectional layer reads the future of every step"
    if isinstance(model, SequenceClassifier) and model.config.pooling != "last":
        return f"pooling={model.config.pooling!r} reads every step; only 'last' streams"
    return None
