"""Experiments from YAML and flags (jsonargparse); unknown keys name the valid ones."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import textwrap
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace

from rnnkit.train.specs import EXPERIMENTS


def experiment_parser(cls: type[Any], *, prog: str = "rnnkit fit", **kwargs: Any) -> ArgumentParser:
    """A parser whose options are the fields of the experiment dataclass ``cls``."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(prog=prog, exit_on_error=False, **kwargs)
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML recipe (configs/*.yaml)")
    parser.add_class_arguments(cls, None, as_group=False)
    for action in parser._actions:
        comment = field_comment(cls, action.dest)
        if comment and not action.help:
            action.help = comment
    return parser


def help_text(cls: type[Any], args: Sequence[str]) -> str:
    """``--help`` for ``cls``: every option as ``--key  type = value  # comment``, the comment from
    the field's source, the value from the ``--config`` recipes in ``args`` when they set it (what
    the recipe will run) else the default. Built without jsonargparse, so it prints at once."""
    import yaml

    recipe: dict[str, Any] = {}
    for i, a in enumerate(args):
        path = args[i + 1] if a == "--config" and i + 1 < len(args) else None
        path = a.split("=", 1)[1] if a.startswith("--config=") else path
        if path is not None:
            with open(path, encoding="utf-8-sig") as f:
                _merge(recipe, yaml.safe_load(f) or {})
    lines = [f"{cls.__name__}: {(cls.__doc__ or '').strip().splitlines()[0]}"]
    lines.append("  --config RECIPE.yaml  a YAML recipe (configs/*.yaml); --print_config shows all")
    section = None
    for name, ftype, default in _leaves(cls):
        head = name.rpartition(".")[0]
        if head != section and head:
            lines.append(f"{head}:")
        section = head
        value = _lookup(recipe, name, default)
        comment = field_comment(cls, name)
        shown = f"  --{name}  {ftype} = {json.dumps(value)}"
        lines.append(shown + (f"  # {comment}" if comment else ""))
    return "\n".join(lines)


def _leaves(cls: type[Any], prefix: str = "") -> list[tuple[str, str, Any]]:
    """``(dotted name, type text, default)`` of every leaf field of a config dataclass."""
    out = []
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            if dataclasses.is_dataclass(value):
                out += _leaves(type(value), prefix + f.name + ".")
                continue
            out.append((prefix + f.name, str(f.type), value))
        else:
            out.append((prefix + f.name, str(f.type), f.default))
    return out


def _merge(into: dict[str, Any], data: Any) -> None:
    for key, value in data.items() if isinstance(data, dict) else ():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _lookup(data: dict[str, Any], dotted: str, default: Any) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return list(default) if isinstance(default, tuple) else default
        node = node[part]
    return node


@cache
def _class_comments(cls: type[Any]) -> dict[str, str]:
    """``name -> comment`` for a dataclass's fields, from the ``# ...`` after each field (and the
    comment lines just above it), read from the source; empty when the source is unavailable."""
    out: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(base):
            continue
        try:
            lines = textwrap.dedent(inspect.getsource(base)).splitlines()[1:]
        except (OSError, TypeError):
            continue
        above: list[str] = []
        for line in lines:
            if not line.startswith("    ") or line.startswith("     "):
                above = []
                continue
            text = line.strip()
            if text.startswith("#"):
                above.append(text.lstrip("# "))
                continue
            m = re.match(r"(\w+)\s*:[^#]*(?:#\s*(.*))?$", text)
            if m and not text.startswith(("def ", "return ")):
                words = " ".join([*above, *([m.group(2)] if m.group(2) else [])])
                if words:
                    out[m.group(1)] = words
            above = []
    return out


def field_comment(cls: type[Any], dotted: str) -> str | None:
    """The source comment of the field at ``dotted`` (``trainer.max_steps``) of ``cls``."""
    target: Any = cls
    parts = dotted.split(".")
    for part in parts[:-1]:
        fields = (
            {f.name: f for f in dataclasses.fields(target)}
            if dataclasses.is_dataclass(target)
            else {}
        )
        if part not in fields:
            return None
        f = fields[part]
        target = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.type
        if isinstance(target, list) and target:  # a list of sections: the keys of one item
            target = target[0]
        target = type(target) if dataclasses.is_dataclass(target) else target
    if not isinstance(target, type) or not dataclasses.is_dataclass(target):
        return None
    return _class_comments(target).get(parts[-1])


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
        if isinstance(target, list) and target:  # a list of sections: the keys of one item
            target = target[0]
        target = type(target) if dataclasses.is_dataclass(target) else target
    return [f.name for f in dataclasses.fields(target)] if dataclasses.is_dataclass(target) else []


_GROUP_RE = re.compile(r"Group '([\w.]+)' does not accept (?:option|nested key) '([\w.]+)'")
_VALUE_RE = re.compile(r'Parser key "([\w.]+)":\s*(.+)', re.S)
# A section typed by a dataclass reached through a lazy module: jsonargparse names its class path.
_CLASS_RE = re.compile(
    r'(?:Parser key "([\w.]+)"|([\w.]+)):\s*Problem with given class_path \'[\w.]+\':\s*'
    r"Option '([\w.]+)' is not accepted"
)
_CLASS_VALUE_RE = re.compile(
    r'(?:Parser key "([\w.]+)"|([\w.]+)):\s*Problem with given class_path \'[\w.]+\':\s*'
    r'Parser key "([\w.]+)":\s*(.+)',
    re.S,
)
# Unknown keys: in a YAML file / on the command line, and in a mapping (``experiment_from_dict``).
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
    m = _CLASS_RE.search(message)
    if m:
        return _unknown(cls, f"{m.group(1) or m.group(2)}.{m.group(3)}")
    m = _CLASS_VALUE_RE.search(message)
    if m:  # a wrong value inside such a section: name it by its dotted key
        detail = re.sub(r"<class '([\w.]+)'>", r"\1", " ".join(m.group(4).split()))
        return f"{m.group(1) or m.group(2)}.{m.group(3)}: {detail[:300]}"
    m = _KEY_RE.search(message)
    if m:
        return _unknown(cls, (m.group(1) or m.group(2) or m.group(3)).lstrip("-"))
    m = _VALUE_RE.search(message)
    if m:  # a value of the wrong type: one line naming the key
        detail = re.sub(r"<class '([\w.]+)'>", r"\1", " ".join(m.group(2).split()))
        return f"{m.group(1)}: {detail[:300]}"
    return " ".join(message.split())[:500]
