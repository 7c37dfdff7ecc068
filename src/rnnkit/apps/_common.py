"""What every application shares: the registry, recipe loading, seeds, records and timing."""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import numpy as np
import torch
import yaml

from rnnkit.recipes import recipe_path
from rnnkit.train.experiment_io import (
    experiment_from_dict,
    experiment_parser,
    explain_error,
    to_experiment,
)

T = TypeVar("T")

# app name -> module under rnnkit.apps; the recipe is configs/<name>.yaml
APPS: dict[str, str] = {
    "language_model": "rnnkit.apps.language_model",
    "sentiment": "rnnkit.apps.sentiment",
    "forecasting": "rnnkit.apps.forecasting",
    "sequence_classification": "rnnkit.apps.sequence_classification",
    "digits": "rnnkit.apps.digits",
    "music": "rnnkit.apps.music",
    "dates": "rnnkit.apps.dates",
    "anomaly": "rnnkit.apps.anomaly",
    "recommendation": "rnnkit.apps.recommendation",
}

REQUIRED_FIELDS = (
    "app",
    "dataset",
    "model",
    "metric",
    "higher_is_better",
    "value",
    "baseline",
    "baseline_value",
    "seeds",
    "wall_s",
)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``, mappings recursively (how ``quick:`` applies)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def app_config(name: str, path: str | Path | None = None, *, quick: bool = False) -> dict[str, Any]:
    """The application's recipe as a dict; ``quick`` merges its ``quick:`` section over the rest."""
    if name not in APPS:
        raise ValueError(f"unknown application {name!r}; choose one of {sorted(APPS)}")
    file = recipe_path(path if path is not None else name)
    data = yaml.safe_load(file.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{file}: a recipe must be a mapping, got {type(data).__name__}")
    if data.get("app", name) != name:
        raise ValueError(f"{file}: field 'app' is {data['app']!r}, expected {name!r}")
    over = data.pop("quick", {}) or {}
    return merge(data, over) if quick else data


def settings_from_dict(cls: type[Any], data: dict[str, Any], *, where: str) -> Any:
    """An application's own recipe keys as its typed dataclass ``cls``, parsed by the same
    jsonargparse machinery as `rnnkit fit` parses an experiment (types, unknown keys, the valid
    keys listed); a bad value raises ``ValueError`` starting with ``where`` (e.g. ``"forecasting
    recipe, datasets.airline"``)."""
    parser = experiment_parser(cls, prog=where)
    try:
        return to_experiment(cls, parser, parser.parse_object(data))
    except argparse.ArgumentError as err:
        message = " ".join(explain_error(cls, str(err)).split())  # one line
        raise ValueError(f"{where}: {message}") from None
    except ValueError as err:  # a dataclass's own range check (__post_init__)
        raise ValueError(f"{where}: {err}") from None


# Recipe keys that are not the application's own settings: the name, the torch threads
# (`run_app`) and the typed experiment every seed trains with.
NOT_SETTINGS = ("app", "threads", "experiment")


def app_settings(cls: type[T], config: dict[str, Any], *, app: str) -> T:
    """The recipe's application keys (data sets, splits, baselines) as the app's dataclass ``cls``.

    Parsed by the parser `rnnkit fit` uses (jsonargparse over the dataclass), so a wrong type or
    an unknown key is a ``ValueError`` naming it, and the app needs no validator of its own.
    """
    # a copy: jsonargparse replaces a list's mappings by its Namespaces in place
    own = copy.deepcopy({k: v for k, v in config.items() if k not in NOT_SETTINGS})
    settings: T = settings_from_dict(cls, own, where=f"{app} recipe")
    return settings


def app_experiment(
    app: str, section: dict[str, Any], fixed: dict[str, Any], *, where: str = "experiment"
) -> Any:
    """One run's typed experiment: the recipe's ``experiment:`` mapping with ``fixed`` (task,
    seed, run name...) merged over it, checked exactly as `rnnkit fit` checks a recipe."""
    if not isinstance(section, dict):
        raise ValueError(f"{app} recipe: field {where!r} must be a mapping, got {section!r}")
    try:
        return experiment_from_dict(merge(section, fixed))
    except ValueError as err:
        raise ValueError(f"{app} recipe, field {where!r}: {err}") from None


class ValidationCurve(L.Callback):
    """``metric`` after each validation of fitting (sanity checks and the final re-validation of
    the best checkpoint are left out), for an application's learning-curve plot.

    ``values``/``steps`` run on across fits; ``fits`` holds one curve per fit, since a seed
    ensemble (``model.ensemble: K``) fits its K members in turn with the same callbacks."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.values: list[float] = []
        self.steps: list[int] = []  # the optimiser step of each value
        self.fits: list[list[float]] = []  # values of each fit, in order

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fits.append([])

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            value = float(trainer.callback_metrics[self.metric])
            self.values.append(value)
            self.steps.append(int(trainer.global_step))
            self.fits[-1].append(value)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads (None: as set), restoring the setting after."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_app(
    name: str,
    *,
    config: str | Path | dict[str, Any] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    out_dir: str | Path | None = None,
    quick: bool = False,
) -> list[dict[str, Any]]:
    """Run one application over ``seeds``; returns its records and writes ``OUT/records.json``.

    A recipe's top-level ``threads`` (torch threads while the application runs) is applied here
    and restored afterwards; small models run fastest on one.
    """
    cfg = config if isinstance(config, dict) else app_config(name, config, quick=quick)
    out = Path(out_dir) if out_dir is not None else Path("runs") / "apps" / name
    out.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(APPS[name])
    run: Callable[..., list[dict[str, Any]]] = module.run
    threads = cfg.get("threads")
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"{name} recipe: field 'threads' must be an integer >= 1, got {threads!r}")
    start, cpu_start = time.perf_counter(), time.process_time()
    with torch_threads(threads):
        records = run(cfg, seeds=list(seeds), out_dir=out, quick=quick)
        where = machine()
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu_start  # comparable across loads, unlike the wall time
    for rec in records:
        missing = [f for f in REQUIRED_FIELDS if f not in rec]
        if missing:
            raise AssertionError(f"{name}: record {rec.get('model')!r} lacks {missing}")
        rec.setdefault("quick", quick)
        rec.setdefault("app_wall_s", round(total, 1))
        rec.setdefault("app_cpu_s", round(cpu, 1))
        rec.setdefault("machine", where)
    (out / "records.json").write_text(json.dumps(records, indent=1))
    return records


def machine() -> dict[str, Any]:
    """Where a result was measured: CPU count, torch threads, load, versions."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        load = float("nan")
    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1min": round(load, 2),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.is_available(),
    }


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (what every per-seed run starts with)."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """``with timer() as t: ...`` then ``t["s"]`` is the wall time in seconds."""
    box = {"s": 0.0}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - start


def spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value) of per-seed results."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no values to summarise")
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std


def record(
    *,
    app: str,
    dataset: str,
    model: str,
    metric: str,
    higher_is_better: bool,
    values: Sequence[float],
    baseline: str,
    baseline_values: Sequence[float] | float,
    seeds: Sequence[int],
    wall_s: float,
    split: str = "test",
    **extra: Any,
) -> dict[str, Any]:
    """One model/baseline pair: per-seed values summarised as mean ± standard deviation.

    ``wall_s`` is the model's training and evaluation time per seed (mean), on this machine.
    """
    value, std = spread(values)
    base_list = (
        [float(baseline_values)]
        if isinstance(baseline_values, (int, float))
        else [float(v) for v in baseline_values]
    )
    base, base_std = spread(base_list)
    better = value > base if higher_is_better else value < base
    return {
        "app": app,
        "dataset": dataset,
        "model": model,
        "metric": metric,
        "higher_is_better": higher_is_better,
        "value": value,
        "spread": std,
        "values": [float(v) for v in values],
        "baseline": baseline,
        "baseline_value": base,
        "baseline_spread": base_std,
        "beats_baseline": bool(better),
        "seeds": list(seeds),
        "wall_s": round(float(wall_s), 1),
        "split": split,
        **extra,
    }
