"""Fit, validate and test an experiment: build the task, run Lightning, fill the run directory.

`build` picks the family's builder from `rnnkit.train.tasks.TASKS`; `make_trainer` wires the
loggers, checkpoints (best by ``run.monitor`` in ``run.monitor_mode``, ties broken by
``run.monitor_tiebreak``, none before ``early_stopping.min_steps``; `rnnkit.train.selection`),
early stopping and the practices;
`fit` trains, validates the best checkpoint and, with ``run.test``, scores the test split with it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch import nn

from rnnkit.diagnostics.guard import DivergenceGuard, stop_if_diverged
from rnnkit.integrity import clean_orphans
from rnnkit.models.ensemble import EnsembleClassifier
from rnnkit.provenance import versions
from rnnkit.train.artifact import load_run
from rnnkit.train.base_select import select_base, selects_base
from rnnkit.train.config import Common, monitor_mode, monitor_tiebreak, parse_duration
from rnnkit.train.ensemble import ENSEMBLE_FILE, member_name, write_ensemble
from rnnkit.train.in_memory import stored_parts, stored_split_files
from rnnkit.train.progress import StepProgress
from rnnkit.train.run import (
    AtomicCheckpointIO,
    RunResult,
    atomic_write_text,
    load_checkpoint,
    plot_loss_curve,
    save_artifact,
)
from rnnkit.train.selection import BestCheckpoint, ResumePoint, TieBreak, TieBreakEarlyStopping
from rnnkit.train.tasks import TASKS, Built

RUN_DIR_ENV = "RNNKIT_RUN_DIR"  # set by rank 0 so DDP worker processes write to the same run


def build(experiment: Any, *, data: Any = None) -> Built:
    """Seed everything, then build data and model for ``experiment.task``.

    ``data``: samples an application made in memory (`rnnkit.train.tasks.DataParts`, or a registry
    `DataSplits`); None reads ``experiment.data``. The config stays the typed experiment the CLI
    accepts, so the run directory records it as usual.
    """
    _setup(experiment)
    if experiment.task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}; got {experiment.task!r}")
    if data is None and getattr(experiment.data, "path", None):
        from rnnkit.train.user_data import build_user  # the user's own files (data.path)

        return build_user(experiment)  # rebuilt from its config: the files are named there
    built = TASKS[experiment.task](experiment, data)
    if data is not None and not getattr(data, "restored", False):
        # the config alone cannot rebuild this data: say so, and keep its test split
        built.artifact_json.setdefault("data", IN_MEMORY)
        built.binary_files.update(stored_split_files(data, built.artifact_json))
    return built


IN_MEMORY = "in-memory (build(data=...)); re-scoring needs the same data"


def rebuild(loaded: Any, *, data: Any = None, overrides: Any = None) -> Built:
    """`build` for a finished run. A run trained on in-memory data is rebuilt on ``data``, else on
    the test split its artifact stored (train and validation splits empty); a clear error when it
    has neither (its config would silently read some other data)."""
    if data is None and loaded.meta.get("data") == IN_MEMORY:
        data = stored_parts(loaded.meta)
        if data is None:
            raise ValueError(
                f"{loaded.run_dir} was trained on data an application built in memory and stored "
                f"no test split ({loaded.meta.get('test_split_error', 'none given')}); pass the "
                "same data (data=DataParts(...)) to re-score it"
            )
    return build(recorded_frame(overrides or loaded.experiment, loaded.meta), data=data)


def recorded_frame(experiment: Any, meta: dict[str, Any]) -> Any:
    """``experiment`` with ``data.frame`` set to the frame its run recorded in model.json (none
    recorded: 1, i.e. off), so a rebuilt run reads its data as training did, whatever the defaults
    or the frame rule are now (a run saved before framing existed was never framed)."""
    d: Any = getattr(experiment, "data", None)
    if experiment.task != "classification" or not hasattr(d, "frame"):
        return experiment
    frame = int(meta.get("frame", 1))
    return replace(experiment, data=replace(d, frame=frame if frame > 1 else None))


class ExtraMetrics(Callback):
    """Log metrics an application computes itself at each validation (``val_<name>``).

    ``fn(module)`` returns ``{name: value}``, e.g. ranking metrics over held-out items; the values
    are logged before checkpointing, so ``run.monitor: val_ndcg@10`` can select on them.
    """

    def __init__(self, fn: Callable[[Any], dict[str, float]], *, prefix: str = "val_") -> None:
        self.fn, self.prefix = fn, prefix

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            values = self.fn(pl_module)
        pl_module.train(was_training)
        for name, value in values.items():
            pl_module.log(f"{self.prefix}{name}", float(value), prog_bar=False, sync_dist=False)


class _DropTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


_NOISE = (
    ".*overridden `transfer_batch_to_device`.*",  # ours moves the Batch dataclass on purpose
    ".*LeafSpec.*",
    ".*Experiment logs directory .* exists and is not empty.*",  # config.yaml is written first
    ".*Checkpoint directory .* exists and is not empty.*",  # a resumed run's own checkpoints
    ".*does not have many workers.*",  # the data is in memory; workers would only copy it
    ".*was configured so 100% of the batches.*",
    ".*is smaller than the logging interval.*",  # steps are logged across epochs anyway
)


def _quiet() -> None:
    """No tips, advertisements or accelerator inventories: Lightning's info lines are dropped (our
    progress line and summary say what matters); its warnings still show."""
    for pattern in _NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch"):
        logging.getLogger(name).addFilter(_DropTip())
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _setup(experiment: Common) -> None:
    _quiet()
    if experiment.trainer.num_threads > 0:
        torch.set_num_threads(experiment.trainer.num_threads)
    L.seed_everything(experiment.seed, workers=True, verbose=False)


def config_yaml(experiment: Any) -> str:
    """The experiment as YAML (tuples as lists), as ``config.yaml`` stores it."""
    data = json.loads(json.dumps(asdict(experiment)))
    ordered = {"task": data.pop("task"), **data}  # the key that picks the experiment first
    return yaml.safe_dump(ordered, sort_keys=False)


def _is_rank_zero() -> bool:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def resolve_run_dir(experiment: Common, *, resume: str | None) -> Path:
    """The run directory: the resumed one, the one rank 0 chose, or a new ``root/name``."""
    if resume is not None:
        path = Path(resume)
        return path.parent.parent if path.suffix == ".ckpt" else path
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and experiment.run.name is None:
        raise ValueError(
            "under torchrun every process must write to the same run directory: set --run.name"
        )
    task = getattr(experiment, "task", "run")
    name = experiment.run.name or f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path(experiment.run.root) / name
    if any((path / "checkpoints").glob("*.ckpt")):  # killed before one: start it again
        raise ValueError(
            f"run directory {path} already holds checkpoints; pass --resume {path} to continue it "
            "or choose another --run.name"
        )
    return path


def resume_checkpoint(resume: str) -> Path:
    """The checkpoint to resume from: a ``.ckpt`` file, or ``<run>/checkpoints/last.ckpt``."""
    path = Path(resume)
    ckpt = path if path.suffix == ".ckpt" else path / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise ValueError(
            f"cannot resume: checkpoint {ckpt} does not exist (a run writes it when training "
            "ends, at a validation every trainer.last_checkpoint_every_s seconds, and every "
            "trainer.checkpoint_every_n_steps steps)"
        )
    return ckpt


def _check_compatible(ckpt_path: Path, module: nn.Module, task: str) -> None:
    ckpt = load_checkpoint(ckpt_path)
    saved = ckpt.get("hyper_parameters", {}).get("config", {})
    if saved.get("task") not in (None, task):
        raise ValueError(
            f"checkpoint {ckpt_path} was trained for task {saved.get('task')!r}, not {task!r}"
        )
    own = module.state_dict()
    theirs = ckpt["state_dict"]
    bad = [
        f"{k}: checkpoint {tuple(theirs[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in theirs and tuple(theirs[k].shape) != tuple(v.shape)
    ]
    missing = sorted(set(own) - set(theirs))
    if bad or missing:
        detail = "; ".join(bad[:3] + [f"missing {m}" for m in missing[:3]])
        raise ValueError(
            f"checkpoint {ckpt_path} does not fit this config's model ({detail}); "
            "resume with the config the run was started with"
        )


def make_trainer(
    experiment: Common,
    built: Built,
    run_dir: Path,
    *,
    monitor: str,
    mode: str = "min",
    callbacks: Sequence[Callback] = (),
) -> L.Trainer:
    """A Trainer with the run's loggers, checkpoints, early stopping and practices.

    ``monitor`` / ``mode``: the validation metric the best checkpoint and early stopping follow,
    and whether lower (``min``) or higher (``max``) is better.
    """
    t = experiment.trainer
    es = experiment.early_stopping
    ckpt_dir = run_dir / "checkpoints"
    tiebreak = monitor_tiebreak(monitor, mode, getattr(experiment.run, "monitor_tiebreak", None))

    def tie() -> TieBreak:  # one per callback: each remembers the value of its own best
        return TieBreak(tiebreak, monitor_mode(tiebreak or "val_loss"), es.min_delta)

    best = BestCheckpoint(
        tiebreak=tie(),
        min_steps=es.min_steps,
        dirpath=ckpt_dir,
        filename="best",
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        enable_version_counter=False,
    )
    last = ResumePoint(
        every_s=t.last_checkpoint_every_s,
        every_n_train_steps=t.checkpoint_every_n_steps,
        dirpath=ckpt_dir,
        filename="step",
        enable_version_counter=False,
    )
    cbs: list[Callback] = [best, last]
    if es.enabled:
        cbs.append(
            TieBreakEarlyStopping(
                tiebreak=tie(),
                min_steps=es.min_steps,
                monitor=monitor,
                mode=mode,
                patience=es.patience,
                min_delta=es.min_delta,
                check_on_train_epoch_end=False,
                strict=False,
            )
        )
    if t.diagnostics_every > 0:  # the diagnostics are the guard plus recording
        from rnnkit.diagnostics import GradientDiagnostics

        cbs.append(
            GradientDiagnostics(
                every_n_steps=t.diagnostics_every,
                out_dir=run_dir / "diagnostics",
                patience=t.nonfinite_patience,
                monitor=monitor,
            )
        )
    else:
        cbs.append(DivergenceGuard(patience=t.nonfinite_patience, monitor=monitor))
    if t.enable_progress_bar:
        cbs.append(StepProgress())
    cbs += list(callbacks)
    val_every = t.val_check_interval
    if isinstance(val_every, int) and val_every > _total_steps(t, built.train_batches):
        val_every = 1.0  # the run ends before the first check: validate at each epoch's end
    devices: Any = t.devices
    strategy = t.strategy
    if strategy == "auto" and isinstance(devices, int) and devices > 1:
        strategy = "ddp"
    return L.Trainer(
        default_root_dir=str(run_dir),
        max_steps=t.max_steps,
        max_epochs=t.max_epochs,
        max_time=parse_duration(t.max_time) if t.max_time else None,
        gradient_clip_val=t.gradient_clip_val or None,
        gradient_clip_algorithm="norm",
        val_check_interval=val_every,
        check_val_every_n_epoch=None if isinstance(val_every, int) else 1,
        limit_val_batches=t.limit_val_batches,
        limit_test_batches=t.limit_test_batches,
        log_every_n_steps=t.log_every_n_steps,
        accelerator=t.accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=t.num_nodes,
        precision=t.precision,  # type: ignore[arg-type]
        deterministic=t.deterministic,
        enable_progress_bar=t.enable_progress_bar,
        enable_model_summary=False,
        use_distributed_sampler=built.use_distributed_sampler,
        logger=[
            CSVLogger(save_dir=str(run_dir), name="", version=""),
            TensorBoardLogger(
                save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False
            ),
        ],
        callbacks=cbs,
        plugins=[AtomicCheckpointIO()],
    )


def _total_steps(t: Any, train_batches: int) -> float:
    """The optimiser steps a run may take (inf when only time bounds it).

    An integer ``val_check_interval`` counts global steps across epochs
    (``check_val_every_n_epoch=None``), so validating every 20 steps works on a training split of
    3 batches; only an interval the run never reaches falls back to once per epoch.
    """
    if t.max_steps > 0:
        return float(t.max_steps)
    return float(t.max_epochs * train_batches) if t.max_epochs > 0 else math.inf


def fit(
    experiment: Any,
    *,
    resume: str | None = None,
    built: Built | None = None,
    callbacks: Sequence[Callback] = (),
    final_eval: bool = True,
    test: bool | None = None,
    data: Any = None,
    judge: Callable[[Built, dict[str, float], Any, Path], dict[str, Any]] | None = None,
) -> RunResult:
    """Train ``experiment`` and fill its run directory; returns where it is and its metrics.

    **Arguments:**
    - ``resume``: a run directory or ``.ckpt`` to continue (optimiser, schedule, loops, data place,
      carried state and RNG are restored, so the result equals an uninterrupted run).
    - ``built``: a task from `build` (the demo samples from it before training); built here if None.
    - ``callbacks``: extra Lightning callbacks.
    - ``final_eval``: validate the best checkpoint at the end and write the artifact from it.
    - ``test``: then score the test split with the best checkpoint (``test_*`` metrics, also in
      ``summary.json``); None follows ``run.test``.
    - ``data``: in-memory samples for `build` (ignored when ``built`` is given).
    - ``judge``: scores the task's baselines on the final split and returns the verdict entries
      for ``summary.json`` — `rnnkit.evaluate.reference.judge_run`, which `rnnkit fit` and
      `rnnkit tune` pass. A parameter, not an import: ``evaluate`` sits above ``train``.

    With ``model.ensemble: K > 1`` (classifiers) K member runs are fitted with seeds ``seed`` ..
    ``seed + K - 1`` under ``<run>/members/``, and the run's metrics are the averaged
    probabilities' (`rnnkit.train.ensemble`); a given ``built`` is always one model.
    """
    if _ensemble_size(experiment) > 1 and built is None:
        return _fit_ensemble(
            experiment, resume=resume, callbacks=callbacks, test=test, data=data, judge=judge
        )
    start = time.perf_counter()
    restarts: dict[str, Any] = {}
    if experiment.trainer.restarts > 1 and resume is None:
        experiment, restarts = pick_restart(experiment, data=data, callbacks=callbacks)
        built = None  # the chosen seed builds its own (initial weights follow the seed)
    run_dir = resolve_run_dir(experiment, resume=resume)
    if _is_rank_zero():
        for orphan in clean_orphans(run_dir):
            print(f"removed {orphan}, left by an interrupted write")
    ckpt_path = resume_checkpoint(resume) if resume is not None else None
    built = built or build(experiment, data=data)
    if ckpt_path is not None:
        _check_compatible(ckpt_path, built.module, experiment.task)
    monitor = experiment.run.monitor or built.module.monitor_default
    mode = monitor_mode(monitor, experiment.run.monitor_mode)
    built.module.monitor, built.module.monitor_mode = monitor, mode
    built.module.train_transform = built.train_transform
    rank_zero = _is_rank_zero()
    if rank_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", config_yaml(experiment))
        os.environ[RUN_DIR_ENV] = str(run_dir.resolve())
    trainer = _checked_trainer(
        experiment, built, run_dir, monitor=monitor, mode=mode, callbacks=callbacks
    )
    try:
        trainer.fit(
            built.module,
            datamodule=built.datamodule,
            ckpt_path=str(ckpt_path) if ckpt_path else None,
            weights_only=True,
        )
    except MisconfigurationException as err:  # e.g. a run.monitor the task never logs
        raise ValueError(_misconfigured(str(err), monitor)) from None
    finally:
        if rank_zero:
            os.environ.pop(RUN_DIR_ENV, None)
    if trainer.interrupted:
        raise KeyboardInterrupt(f"training interrupted; resume with --resume {run_dir}")
    stop_if_diverged(experiment, trainer, run_dir, elapsed=time.perf_counter() - start)
    metrics: dict[str, float] = {
        k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1
    }
    best_path = run_dir / "checkpoints" / "best.ckpt"
    if final_eval:
        metrics.update(_final_validation(experiment, trainer, built, best_path))
    chosen: dict[str, Any] = {}
    if final_eval and selects_base(experiment):
        device = experiment.trainer.accelerator
        choice = select_base(built, metrics, monitor=monitor, mode=mode, accelerator=device)
        chosen = {"base_select": choice}
        if trainer.is_global_zero:
            print(f"base_select: {chosen['base_select']['chosen']} chosen on validation {monitor}")
    if test is None:  # runs on the user's files are always tested (beside their baselines)
        test = experiment.run.test or built.user_files is not None
    if test:
        # The base or the combination: the module's (scaled) head, not the checkpoint's.
        scaled = chosen.get("base_select", {}).get("chosen", "hybrid") != "hybrid"
        metrics.update(_test_best(trainer, built, None if scaled else best_path))
    metrics.update(built.baselines)
    wall = time.perf_counter() - start
    summary: dict[str, Any] = {}
    if trainer.is_global_zero:
        summary = _finish(
            experiment, built, trainer, run_dir, metrics, wall, best_path, {**restarts, **chosen}
        )
        if judge is not None and (final_eval or test):  # baselines and verdict beside them
            summary.update(judge(built, metrics, experiment, run_dir))
    return RunResult(run_dir=run_dir, metrics=metrics, summary=summary)


def pick_restart(
    experiment: Any, *, data: Any = None, callbacks: Sequence[Callback] = ()
) -> tuple[Any, dict[str, Any]]:
    """Random restarts selected on validation (``trainer.restarts`` = K > 1).

    Small recurrent models on small data sometimes land in a poor basin from one seed and
    train well from another; which one shows early in the validation curve. Each of K probes
    (seeds ``seed*K .. seed*K+K-1``, so the probe sets of different seeds never overlap) trains
    for ``trainer.restart_steps`` steps under ``RUN/restarts/seed-N``; the seed whose best
    checkpoint scores best on the monitored metric is returned in an experiment with
    ``restarts: 1``, which is what the run's ``config.yaml`` records, so the final run
    reproduces from it alone. Only validation is read; the probes never see the test split.
    """
    t, k = experiment.trainer, experiment.trainer.restarts
    run_dir = resolve_run_dir(experiment, resume=None)
    root = run_dir / "restarts"
    scores: dict[int, float] = {}
    monitor = mode = ""
    for i in range(k):
        seed = experiment.seed * k + i
        probe = replace(
            experiment,
            seed=seed,
            trainer=replace(t, restarts=1, max_steps=t.restart_steps, max_time=None),
            run=replace(
                experiment.run, root=str(root), name=f"seed-{seed}", test=False, plot=False
            ),
        )
        result = fit(probe, data=data, callbacks=callbacks)
        monitor, mode = result.summary.get("monitor", ""), result.summary.get("monitor_mode", "")
        value = result.metrics.get(monitor, math.nan)
        scores[seed] = value if math.isfinite(value) else (math.inf if mode == "min" else -math.inf)
    chosen = (min if mode == "min" else max)(scores, key=lambda s: scores[s])
    final = replace(
        experiment,
        seed=chosen,
        trainer=replace(t, restarts=1),
        run=replace(experiment.run, root=str(run_dir.parent), name=run_dir.name),
    )
    info = {
        "restarts": {
            "requested_seed": experiment.seed,
            "chosen_seed": chosen,
            "probe_steps": t.restart_steps,
            "monitor": monitor,
            "probe_scores": {str(s): v for s, v in scores.items()},
        }
    }
    print(f"restarts: seed {chosen} chosen on {monitor} among {sorted(scores)}")
    return final, info


def _ensemble_size(experiment: Any) -> int:
    return int(getattr(getattr(experiment, "model", None), "ensemble", 1))


def _fit_ensemble(
    experiment: Any,
    *,
    resume: str | None,
    callbacks: Sequence[Callback],
    test: bool | None,
    data: Any,
    judge: Callable[[Built, dict[str, float], Any, Path], dict[str, Any]] | None = None,
) -> RunResult:
    """Fit each member as a normal run, record them in ``ensemble.json``, then score the averaged
    probabilities on the validation (and test) split. ``resume`` skips finished members and
    resumes an interrupted one from its own ``last.ckpt``. ``judge`` scores the baselines
    against the averaged model, as for one model."""
    start = time.perf_counter()
    run_dir = Path(resume) if resume is not None else resolve_run_dir(experiment, resume=None)
    if resume is not None and not (run_dir / "members").is_dir():
        raise ValueError(f"cannot resume: {run_dir} holds no ensemble members ({run_dir}/members)")
    if resume is None and (run_dir / "members").is_dir():
        raise ValueError(
            f"run directory {run_dir} already holds ensemble members; pass --resume {run_dir} "
            "to continue it or choose another --run.name"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", config_yaml(experiment))
    seeds = [experiment.seed + i for i in range(experiment.model.ensemble)]
    members: list[dict[str, Any]] = []
    for seed in seeds:
        folder = run_dir / member_name(seed)
        if (folder / "summary.json").is_file():  # finished before an interruption
            members.append(json.loads((folder / "summary.json").read_text(encoding="utf-8")))
            continue
        member = replace(
            experiment,
            seed=seed,
            model=replace(experiment.model, ensemble=1),
            run=replace(experiment.run, root=str(folder.parent), name=folder.name),
        )
        again = str(folder) if any((folder / "checkpoints").glob("*.ckpt")) else None
        result = fit(member, resume=again, callbacks=callbacks, test=test, data=data)
        members.append(result.summary)
    task = experiment.task
    combine = (
        "mean of outputs" if experiment.model.task == "regression" else "mean of probabilities"
    )
    exp_dict = json.loads(json.dumps(asdict(experiment)))
    write_ensemble(run_dir, task=task, combine=combine, seeds=seeds, experiment=exp_dict)
    metrics = evaluate(str(run_dir), stage="validate", data=data)
    if test is None:  # as for one model: runs on the user's files are always tested
        test = experiment.run.test or bool(getattr(experiment.data, "path", None))
    if test:
        metrics.update(evaluate(str(run_dir), stage="test", data=data))
    first = members[0].get("metrics", {})
    metrics.update(
        {k: v for k, v in first.items() if not k.startswith(("val_", "test_", "train_"))}
    )
    summary = {
        "task": task,
        "run_dir": str(run_dir),
        "ensemble": len(seeds),
        "combine": combine,
        "metrics": {k: v for k, v in metrics.items() if math.isfinite(v)},
        "members": [
            {
                "run": member_name(seed),
                "seed": seed,
                "best_step": m.get("best_step"),
                "best_epoch": m.get("best_epoch"),
                "epochs": m.get("epochs"),
                "metrics": {
                    k: v for k, v in m.get("metrics", {}).items() if k[:4] in ("val_", "test")
                },
            }
            for seed, m in zip(seeds, members, strict=True)
        ],
        "parameters": sum(int(m.get("parameters", 0)) for m in members),
        "wall_time_s": round(time.perf_counter() - start, 2),
        "seed": experiment.seed,
        "versions": versions(),
        "files": {"ensemble": ENSEMBLE_FILE, "config": "config.yaml", "members": "members/"},
    }
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    if judge is not None:  # the baselines read the data as one member's build does
        loaded = load_run(run_dir)
        built = rebuild(loaded, data=data, overrides=experiment)
        built.module.model = loaded.model
        summary.update(judge(built, metrics, experiment, run_dir))
    return RunResult(run_dir=run_dir, metrics=metrics, summary=summary)


def _final_validation(
    experiment: Any, trainer: L.Trainer, built: Built, best_path: Path
) -> dict[str, float]:
    """The best checkpoint's metrics on the whole validation split, its weights in the module.

    When the checks during training already covered the whole split (``limit_val_batches:
    1.0``), the kept checkpoint's own validation is that number: its weights are loaded and its
    recorded metrics returned, with no second pass (the same weights on the same data give the
    same values). Otherwise — part of the split per check, no candidate yet, several processes —
    the checkpoint (or the last weights) is validated again.
    """
    best = next((c for c in trainer.callbacks if isinstance(c, BestCheckpoint)), None)  # type: ignore[attr-defined]
    whole = experiment.trainer.limit_val_batches == 1.0 and isinstance(
        experiment.trainer.limit_val_batches, float
    )
    if whole and trainer.world_size == 1 and best is not None and best.best_metrics:
        if best_path.is_file():  # restored as trainer.validate(ckpt_path=...) restores it
            ckpt = load_checkpoint(best_path)
            built.module.on_load_checkpoint(ckpt)
            built.module.load_state_dict(ckpt["state_dict"])
            return dict(best.best_metrics)
    trainer.limit_val_batches = 1.0  # the final numbers cover the whole validation split
    results = trainer.validate(
        built.module,
        datamodule=built.datamodule,
        ckpt_path=str(best_path) if best_path.is_file() else None,
        verbose=False,
        weights_only=True,
    )
    return {k: float(v) for k, v in (results[0] if results else {}).items()}


def _test_best(trainer: L.Trainer, built: Built, best_path: Path | None) -> dict[str, float]:
    """Score the whole test split with the best checkpoint (the module's weights if there is none,
    or with ``best_path`` None)."""
    trainer.limit_test_batches = 1.0
    results = trainer.test(
        built.module,
        datamodule=built.datamodule,
        ckpt_path=str(best_path) if best_path is not None and best_path.is_file() else None,
        verbose=False,
        weights_only=True,
    )
    return {k: float(v) for k, v in (results[0] if results else {}).items()}


def _checked_trainer(*args: Any, **kwargs: Any) -> L.Trainer:
    """`make_trainer`, with Lightning's own argument checks as one line naming the section."""
    try:
        return make_trainer(*args, **kwargs)
    except (MisconfigurationException, ValueError) as err:
        raise ValueError(f"trainer: {(str(err).strip().splitlines() or ['invalid'])[0]}") from None


def _misconfigured(text: str, monitor: str) -> str:
    """Lightning's configuration error as one line naming our key."""
    found = re.search(r"returned metrics: (\[[^\]]*\])", text)
    if "monitor" in text and found:
        return f"run.monitor {monitor!r} is not a metric this task logs; it logs {found.group(1)}"
    return "trainer: " + (text.strip().splitlines() or ["misconfigured"])[0]


def _finish(
    experiment: Any,
    built: Built,
    trainer: L.Trainer,
    run_dir: Path,
    metrics: dict[str, float],
    wall: float,
    best_path: Path,
    recorded: dict[str, Any],
) -> dict[str, Any]:
    """Write the artifact and ``summary.json``; ``recorded``: choices made on the way (restarts,
    base_select) for the summary (and ``base_select`` for ``model.json`` too)."""
    module = built.module
    model = module.model
    save_artifact(
        run_dir / "artifact",
        model,
        task=experiment.task,
        model_config=built.model_config,
        extra_json={
            "experiment": json.loads(json.dumps(asdict(experiment))),
            **built.artifact_json,
            **({"base_select": recorded["base_select"]} if "base_select" in recorded else {}),
        },
        files={**built.files, **built.binary_files},
    )
    extras = built.after_fit(built) if built.after_fit is not None else {}
    plotted = experiment.run.plot and plot_loss_curve(
        run_dir / "metrics.csv", run_dir / "loss_curve.png", title=f"{experiment.task}: loss"
    )
    clean = {k: v for k, v in metrics.items() if math.isfinite(v)}
    summary = {
        "task": experiment.task,
        "run_dir": str(run_dir),
        "metrics": clean,
        "monitor": module.monitor or module.monitor_default,
        "monitor_mode": module.monitor_mode,
        "best_checkpoint": str(best_path) if best_path.is_file() else None,
        **_best_at(trainer),
        "steps": int(trainer.global_step),
        "epochs": int(trainer.current_epoch),
        "wall_time_s": round(wall, 2),
        "seed": experiment.seed,
        "world_size": trainer.world_size,
        "device": str(module.device),
        "parameters": sum(p.numel() for p in model.parameters()),
        "layer_path": module.layer_path,
        "versions": versions(),
        "files": {
            "config": "config.yaml",
            "metrics_csv": "metrics.csv",
            "tensorboard": "tensorboard/",
            "loss_curve": "loss_curve.png" if plotted else None,
            "artifact": "artifact/",
        },
        **extras,
        **recorded,
    }
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


def _best_at(trainer: L.Trainer) -> dict[str, int | None]:
    """The optimiser step and epoch of the validation kept as best (None: no candidate, e.g. the
    run ended inside the warm-up and its last weights were used)."""
    best = next((c for c in trainer.callbacks if isinstance(c, BestCheckpoint)), None)  # type: ignore[attr-defined]
    if best is None:
        return {"best_step": None, "best_epoch": None}
    return {"best_step": best.best_step, "best_epoch": best.best_epoch}


def evaluate(
    run_dir: str, *, stage: str, overrides: Any = None, data: Any = None
) -> dict[str, float]:
    """Validate or test the artifact of a finished run on its whole split; returns the metrics.

    ``data``: the in-memory samples the run was trained on, for runs an application built.
    """
    loaded = load_run(run_dir)
    experiment = overrides or loaded.experiment
    if stage == "validate" and data is None and loaded.meta.get("data") == IN_MEMORY:
        raise ValueError(
            f"{run_dir} was trained on in-memory data and stores only its test split; pass the "
            "same data (data=DataParts(...)) to validate it"
        )
    built = rebuild(loaded, data=data, overrides=overrides)
    if isinstance(loaded.model, EnsembleClassifier):
        built.module.model = loaded.model  # the members, averaged
    else:
        built.module.model.load_state_dict(loaded.model.state_dict())
    _quiet()
    trainer = built.scoring_trainer(experiment.trainer.accelerator)  # whole splits, as fit's
    run = trainer.validate if stage == "validate" else trainer.test
    results = run(built.module, datamodule=built.datamodule, verbose=False)
    return {k: float(v) for k, v in (results[0] if results else {}).items()}
