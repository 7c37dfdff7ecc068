"""Experiments from YAML and flags (jsonargparse); unknown keys name the valid ones."""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from rnnkit.train.specs import EXPERIMENTS


def experiment_parser(cls: type[Any], *, prog: str = "rnnkit fit", **kwargs: Any) -> ArgumentParser:
    """A parser whose options are the fields of the experiment dataclass ``cls``."""
    parser = ArgumentParser(prog=prog, exit_on_error=False, **kwargs)
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML recipe (configs/*.yaml)")
    parser.add_class_arguments(cls, None, as_group=False)
    return parser


def to_experiment(cls: type[Any], parser: ArgumentParser, cfg: Namespace) -> Any:
    """Instantiate the parsed namespace as ``cls``."""
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    init = instantiate(cfg)
    return cls(**{f.name: init.get(f.name) for f in dataclasses.fields(cls)})


def experiment_from_dict(data: dict[str, Any]) -> Any:
    """An experiment from plain data (``config.yaml`` / ``model.json``), checked like the CLI."""
    task = data.get("task", "language_model")
    if task not in EXPERIMENTS:
        raise ValueError(f"task must be one of {sorted(EXPERIMENTS)}; got {task!r}")
    cls = EXPERIMENTS[task]
    parser = experiment_parser(cls)
    try:
        cfg = parser.parse_object(data)
    except argparse.ArgumentError as err:
        raise ValueError(explain_error(cls, str(err))) from None
    return to_experiment(cls, parser, cfg)


def parse_experiment(cls: type[Any], args: Sequence[str], *, prog: str = "rnnkit fit") -> Any:
    parser = experiment_parser(cls, prog=prog)
    try:
        cfg = parser.parse_args(list(args))
    except argparse.ArgumentError as err:
        raise ValueError(explain_error(cls, str(err))) from None
    return to_experiment(cls, parser, cfg)


def valid_keys(cls: type[Any], group: str | None = None) -> list[str]:
    """Field names of the experiment, or of one of its sections (``model``, ``trainer``...)."""
    if group is None:
        return [f.name for f in dataclasses.fields(cls)]
    target: Any = cls
    for part in group.split("."):
        fields = {f.name: f for f in dataclasses.fields(target)}
        if part not in fields:
            return []
        f = fields[part]
        target = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.type
        target = type(target) if dataclasses.is_dataclass(target) else target
    return [f.name for f in dataclasses.fields(target)] if dataclasses.is_dataclass(target) else []


_GROUP_RE = re.compile(r"Group '([\w.]+)' does not accept (?:option|nested key) '([\w.]+)'")
_KEY_RE = re.compile(
    r"(?:Key|key) '([\w.]+)' is not expected|unrecognized arguments: (\S+)"
    r"|Option '([\w.]+)' is not accepted"
)


def _unknown(cls: type[Any], key: str) -> str:
    """Name the first unknown part of a dotted ``key`` and list what its section accepts."""
    parts = key.split(".")
    for i in range(len(parts)):
        head = ".".join(parts[:i]) or None
        keys = valid_keys(cls, head)
        if parts[i] not in keys or i == len(parts) - 1:
            where = f"of '{head}'" if head else "at the top level"
            return f"unknown key '{key}'; valid keys {where}: {', '.join(keys)}"
    return f"unknown key '{key}'"


def explain_error(cls: type[Any], message: str) -> str:
    """Add the list of valid keys to jsonargparse's message about an unknown key."""
    m = _GROUP_RE.search(message)
    if m:
        return _unknown(cls, f"{m.group(1)}.{m.group(2)}")
    m = _KEY_RE.search(message)
    if m:
        return _unknown(cls, (m.group(1) or m.group(2) or m.group(3)).lstrip("-"))
    return message
