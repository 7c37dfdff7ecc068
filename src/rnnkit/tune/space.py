"""Search spaces for `rnnkit tune`: dotted config keys -> Optuna distributions, per-family defaults.

A space is a YAML mapping from any dotted experiment key to one distribution::

    optim.lr: {type: float, low: 1.0e-4, high: 3.0e-2, log: true}   # log-uniform
    model.hidden_size: {type: int, low: 16, high: 256, log: true}
    model.num_layers: {type: int, low: 1, high: 3}
    model.cell: {type: categorical, choices: [lstm, gru]}
    model.dropout: {type: float, low: 0.0, high: 0.5, step: 0.05}

The keys are the ones ``rnnkit fit --section.key value`` accepts; `check_space` applies every
bound and choice to the experiment before the first trial, so a typo fails at once with the list of
valid keys instead of after N failed trials. The metric direction (`direction_of`) is the one the
trainer checkpoints by (``run.monitor_mode``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from rnnkit.train.config import monitor_mode
from rnnkit.train.experiment_io import experiment_from_dict

Kind = Literal["float", "int", "categorical"]


def direction_of(metric: str, mode: str = "auto") -> Literal["maximize", "minimize"]:
    """Optuna's direction for ``metric``: the same min/max `rnnkit.train.fit` checkpoints by.

    ``mode`` is the experiment's ``run.monitor_mode`` (``auto`` guesses from the name: accuracy,
    F1, exact match, AUC, ... are maximised, losses and errors minimised).
    """
    return "maximize" if monitor_mode(metric, mode) == "max" else "minimize"


@dataclass(frozen=True)
class Param:
    """One searched key: a float/int range (optionally log or stepped) or a list of choices."""

    key: str  # dotted experiment key, e.g. "optim.lr"
    kind: Kind
    low: float | None = None
    high: float | None = None
    log: bool = False  # sample uniformly in log space (low must be > 0)
    step: float | None = None  # grid spacing (not with log)
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Draw this key's value for an Optuna ``trial``."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            step = int(self.step or 1)
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=step, log=self.log
            )
        value = trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)
        return value if self.step is None else round(value, 10)  # 0.35, not 0.35000000000000003

    def extremes(self) -> list[Any]:
        """The values `check_space` tries: both bounds, or every choice."""
        if self.kind == "categorical":
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]

    def to_dict(self) -> dict[str, Any]:
        """The YAML form this param was read from."""
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.kind, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


def _param(key: str, spec: Any, source: str) -> Param:
    where = f"{source}: '{key}'"
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where} must be a mapping like {{type: float, low: 0.001, high: 0.1}}")
    kind = spec.get("type")
    allowed = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"}}
    allowed["categorical"] = {"choices"}
    if kind not in allowed:
        raise ValueError(f"{where}: type must be float, int or categorical; got {kind!r}")
    extra = set(spec) - allowed[kind] - {"type"}
    if extra:
        raise ValueError(
            f"{where}: unknown field(s) {', '.join(sorted(extra))} for type {kind} "
            f"(allowed: {', '.join(sorted(allowed[kind]))})"
        )
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}: choices must be a non-empty list")
        return Param(key, "categorical", choices=tuple(choices))
    low, high = spec.get("low"), spec.get("high")
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: {name} must be a number; got {value!r}")
    assert low is not None and high is not None
    if kind == "int" and (low != int(low) or high != int(high)):
        raise ValueError(f"{where}: low and high of an int must be whole; got {low}, {high}")
    if not low < high:
        raise ValueError(f"{where}: low must be < high; got {low} >= {high}")
    log = bool(spec.get("log", False))
    step = spec.get("step")
    if log and low <= 0:
        raise ValueError(f"{where}: a log range needs low > 0; got {low}")
    if log and step is not None:
        raise ValueError(f"{where}: log and step cannot be combined")
    if step is not None and (not isinstance(step, int | float) or step <= 0):
        raise ValueError(f"{where}: step must be a number > 0; got {step!r}")
    return Param(key, kind, float(low), float(high), log, None if step is None else float(step))


def parse_space(data: Any, *, source: str = "space") -> list[Param]:
    """A space from plain data (the YAML mapping); ``ValueError`` naming the bad key."""
    if not isinstance(data, Mapping) or not data:
        raise ValueError(f"{source} must hold a non-empty mapping of dotted keys to distributions")
    return [_param(str(key), spec, source) for key, spec in data.items()]


def load_space(path: str | Path) -> list[Param]:
    """Read a space YAML file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"space file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"space file {p} is not valid YAML: {err}") from None
    return parse_space(data, source=str(p))


def space_yaml(space: list[Param]) -> str:
    """The space as YAML (what ``--space`` reads)."""
    return yaml.safe_dump({p.key: p.to_dict() for p in space}, sort_keys=False)


_LR = {"type": "float", "low": 3e-4, "high": 3e-2, "log": True}
_CELL = {"type": "categorical", "choices": ["lstm", "gru"]}
_LAYERS = {"type": "int", "low": 1, "high": 2}
_DROPOUT = {"type": "float", "low": 0.0, "high": 0.5, "step": 0.05}
_CLIP = {"type": "float", "low": 0.25, "high": 5.0, "log": True}
_DECAY = {"type": "float", "low": 1e-5, "high": 0.1, "log": True}

# What matters most for recurrent nets, per family (learning rate first, then capacity and
# regularisation), in ranges that train on a CPU. Every key exists in that family's experiment.
DEFAULT_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "classification": {
        "optim.lr": _LR,
        "model.cell": _CELL,
        "model.hidden_size": {"type": "int", "low": 16, "high": 128, "log": True},
        "model.num_layers": _LAYERS,
        "model.bidirectional": {"type": "categorical", "choices": [False, True]},
        "model.pooling": {"type": "categorical", "choices": ["last", "mean", "max", "attention"]},
        "model.dropout": _DROPOUT,
        "optim.weight_decay": _DECAY,
        "trainer.gradient_clip_val": _CLIP,
    },
    "tagging": {
        "optim.lr": _LR,
        "model.cell": _CELL,
        "model.hidden_size": {"type": "int", "low": 16, "high": 128, "log": True},
        "model.embedding_dim": {"type": "int", "low": 8, "high": 64, "log": True},
        "model.num_layers": _LAYERS,
        "model.dropout": _DROPOUT,
        "trainer.gradient_clip_val": _CLIP,
    },
    "forecasting": {
        "optim.lr": _LR,
        "model.cell": _CELL,
        "model.hidden_size": {"type": "int", "low": 8, "high": 128, "log": True},
        "model.num_layers": _LAYERS,
        "model.dropout": _DROPOUT,
        "optim.weight_decay": _DECAY,
        "trainer.gradient_clip_val": _CLIP,
    },
    "seq2seq": {
        "optim.lr": _LR,
        "model.cell": _CELL,
        "model.hidden_size": {"type": "int", "low": 16, "high": 256, "log": True},
        "model.embedding_dim": {"type": "int", "low": 8, "high": 128, "log": True},
        "model.attention": {"type": "categorical", "choices": ["bahdanau", "dot", "general"]},
        "model.dropout": _DROPOUT,
        "model.teacher_forcing": {"type": "float", "low": 0.5, "high": 1.0, "step": 0.1},
        "trainer.gradient_clip_val": _CLIP,
    },
    "language_model": {
        "optim.lr": _LR,
        "model.cell": _CELL,
        "model.hidden_size": {"type": "int", "low": 32, "high": 512, "log": True},
        "model.embedding_dim": {"type": "int", "low": 16, "high": 128, "log": True},
        "model.num_layers": _LAYERS,
        "model.dropout": _DROPOUT,
        "tbptt.k1": {"type": "categorical", "choices": [32, 64, 128]},
        "trainer.gradient_clip_val": _CLIP,
    },
}


def default_space(task: str) -> list[Param]:
    """The default space of a task family."""
    if task not in DEFAULT_SPACES:
        raise ValueError(f"no default search space for task {task!r}; pass --space")
    return parse_space(DEFAULT_SPACES[task], source=f"default space of {task}")


def with_params(experiment: Any, params: Mapping[str, Any]) -> Any:
    """``experiment`` with dotted ``params`` set, re-checked by the parser ``rnnkit fit`` uses."""
    data = json.loads(json.dumps(asdict(experiment)))
    for key, value in params.items():
        node = data
        *path, last = key.split(".")
        for part in path:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}  # an unknown section: the parser names it
            node = child
        node[last] = value
    return experiment_from_dict(data)


def check_space(experiment: Any, space: list[Param]) -> None:
    """Apply every bound and choice of ``space`` to ``experiment``; the first bad one raises.

    The values are tried together (all lows, all highs, the i-th choice of each key), which takes
    a few parses; only when a combination fails is each key tried alone to name the culprit.
    """
    values = [p.extremes() for p in space]
    for i in range(max(len(v) for v in values)):
        combo = {p.key: v[min(i, len(v) - 1)] for p, v in zip(space, values, strict=True)}
        try:
            with_params(experiment, combo)
            continue
        except ValueError:
            pass
        for key, value in combo.items():
            try:
                with_params(experiment, {key: value})
            except ValueError as err:
                raise ValueError(f"search space key '{key}' = {value!r}: {err}") from None
        with_params(experiment, combo)  # only the combination fails: its own message
