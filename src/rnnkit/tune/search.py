"""Hyperparameter search with Optuna over any experiment; the test split is never read by it.

```
<root>/                      (default: <run.root>/<study>)
  study.db                   the Optuna study (SQLite; rerunning the command continues it)
  space.yaml                 the search space used (the family default unless --space)
  trials/<n>[-fold<k>]/      one run directory per trial (and fold), checkpoints removed
  trials.csv                 every trial: number, state, value, params, fold values, seconds
  history.png importances.png parallel.png   optuna.visualization.matplotlib plots
  best.yaml                  the best experiment as a recipe ``rnnkit fit --config`` accepts
  refit/  recipe/            best.yaml and the untuned recipe fitted, then scored on the test split
  report.json                metric, direction, trial counts, best params, test metrics, baselines
```

Each trial samples the space with TPE, applies the values to the experiment with the parser
``rnnkit fit`` uses, and trains through `rnnkit.train.fit` (never with ``test=True``). The
objective is the best value the monitored validation metric reached (the value the best
checkpoint holds), either on the experiment's own validation split or, with ``cv=K``, averaged
over K folds carved from the training and validation splits (stratified by class for
classifiers, walk-forward for forecasters). During the search the data module's test loader is
replaced by one that raises, so a search that reached for the test split would fail rather than
peek. A pruner sees the metric at every validation (or the running fold mean after every fold)
and stops poor trials early.

A recipe with ``model.ensemble: K`` searches the single model's hyperparameters: each trial fits
one member (seed ``seed``), K times cheaper, and the refit fits all K as ``rnnkit fit`` would.
``trial_ensemble="full"`` makes every trial fit its K members on the same split (or fold) and
score their averaged probabilities instead (no pruning inside a trial then: a member's curve is
not the ensemble's), which a space that searches ``model.ensemble`` itself needs.

The refit trains ``best.yaml`` exactly as ``rnnkit fit --config best.yaml`` would: on the training
split, with the validation split choosing the checkpoint. Training on train+validation was left out
on purpose: the recipe could then not reproduce the refit, checkpoint selection and early stopping
would have nothing held out to watch, and a language model's contiguous splits would lose their
order. Tune ``trainer.max_steps`` (and ``early_stopping.enabled``) in the space to tune the length.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import socket
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback
from torch.utils.data import ConcatDataset, DataLoader, Subset

from rnnkit.evaluate.reference import judge_run
from rnnkit.evaluate.splits import kfold, walk_forward
from rnnkit.integrity import atomic_write_text
from rnnkit.models.ensemble import EnsembleClassifier
from rnnkit.provenance import versions
from rnnkit.train import Built, build, fit
from rnnkit.tune.space import Param, check_space, direction_of, space_yaml, with_params

Pruner = Literal["median", "hyperband", "none"]
TrialEnsemble = Literal["one", "full"]


@dataclass
class TuneOptions:
    """How a search runs; the CLI flags of ``rnnkit tune``."""

    trials: int = 20  # finished (complete + pruned) trials the study should hold in all
    timeout: float | None = None  # stop starting trials after this many seconds
    cv: int = 0  # K folds of the training + validation splits (0: the validation split)
    storage: str | None = None  # Optuna RDB URL or "journal:PATH" (None: sqlite in the root)
    study: str | None = None  # study name (None: "tune-<task>")
    root: str | None = None  # output folder (None: <run.root>/<study>)
    pruner: Pruner = "median"  # stops trials whose metric trails the median of earlier ones
    search_only: bool = False  # run trials only (extra workers); no refit, plots or report
    compare: bool = True  # also fit the untuned recipe and test it beside the tuned one
    trial_ensemble: TrialEnsemble = "one"  # model.ensemble K: trials fit 1 member, or all K


@dataclass
class TuneResult:
    """Where the outputs are and what the search found."""

    root: Path
    study_name: str
    best_value: float | None
    best_params: dict[str, Any]
    report: dict[str, Any]


# ---- storage -------------------------------------------------------------------------------


def open_storage(spec: str | None, root: Path) -> Any:
    """An Optuna storage: SQLite in ``root`` by default, ``journal:PATH``, or an RDB URL.

    RDB storages get a heartbeat, so a trial whose process was killed is marked failed when the
    study is next opened and a rerun tops the study back up to its trial count.
    """
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError

    if spec is None:
        root.mkdir(parents=True, exist_ok=True)
        spec = f"sqlite:///{(root / 'study.db').resolve()}"
    if spec.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(spec.removeprefix("journal:"))
        if not path.name:
            raise ValueError("--storage journal:PATH needs a file path, e.g. journal:study.log")
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if "://" not in spec:
        raise ValueError(
            f"--storage {spec!r} is neither an Optuna RDB URL (sqlite:///FILE, "
            "postgresql://USER@HOST/DB, ...) nor journal:PATH"
        )
    # SQLite: wait for a busy writer instead of failing (several workers on one file).
    engine = {"connect_args": {"timeout": 60}} if spec.startswith("sqlite") else None
    for attempt in range(4):
        try:
            return _rdb(spec, engine)
        except (IntegrityError, OperationalError):
            # Two workers creating one fresh database race on its schema; the loser retries.
            time.sleep(0.5 * (attempt + 1))
    return _rdb(spec, engine)


def _rdb(url: str, engine: dict[str, Any] | None) -> Any:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine, heartbeat_interval=60, grace_period=180
        )


def _storage_name(spec: str | None, root: Path) -> str:
    """The storage as a report may show it (no password)."""
    if spec is None:
        return f"sqlite:///{(root / 'study.db').resolve()}"
    if "://" in spec:
        from sqlalchemy.engine import make_url

        return make_url(spec).render_as_string(hide_password=True)
    return spec


# ---- what a trial sees ---------------------------------------------------------------------


class WatchMetric(Callback):
    """Tracks the best value of ``monitor``; optionally reports each validation to a trial.

    With a trial, the value at each validation goes to ``trial.report(value, step)`` and a pruned
    trial stops training (``trainer.should_stop``); the objective then raises ``TrialPruned``.
    """

    def __init__(self, monitor: str, *, maximize: bool, trial: Any = None) -> None:
        self.monitor, self.maximize, self.trial = monitor, maximize, trial
        self.best: float | None = None
        self.best_step = 0
        self.pruned = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if not math.isfinite(value):
            return
        better = self.best is None or (value > self.best if self.maximize else value < self.best)
        if better:
            self.best, self.best_step = value, int(trainer.global_step)
        if self.trial is not None:
            self.trial.report(value, step=int(trainer.global_step))
            if self.trial.should_prune():
                self.pruned = True
                trainer.should_stop = True


def _refuse_test(*_: Any, **__: Any) -> Any:
    raise RuntimeError("rnnkit tune: the search must not read the test split")


def seal_test(datamodule: Any) -> Any:
    """Make ``datamodule``'s test and predict loaders raise (the search never needs them)."""
    datamodule.test_dataloader = _refuse_test
    datamodule.predict_dataloader = _refuse_test
    return datamodule


class FoldData(L.LightningDataModule):
    """One cross-validation fold: two index subsets of the training split, and no test loader."""

    def __init__(self, train: Any, val: Any, *, batch_size: int, collate_fn: Any) -> None:
        super().__init__()
        self.train, self.val = train, val
        self.batch_size, self.collate_fn = batch_size, collate_fn

    def _loader(self, data: Any, shuffle: bool) -> DataLoader[Any]:
        world = self.trainer.world_size if self.trainer is not None else 1
        size = max(1, self.batch_size // world)
        return DataLoader(data, batch_size=size, shuffle=shuffle, collate_fn=self.collate_fn)

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.train, True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.val, False)

    def test_dataloader(self) -> DataLoader[Any]:
        return _refuse_test()


def fold_indices(experiment: Any, train: Any, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K (train, validation) index pairs into ``train`` (the `cv_pool`: never the test split).

    Classifiers: stratified shuffled folds. Forecasters: walk-forward blocks in time order, the
    last ``horizon`` windows before each block left out so no training target overlaps a
    validation target. Taggers and seq2seq: shuffled folds.
    """
    n = len(train)
    task = experiment.task
    if task == "forecasting":
        block = n // (k + 1)
        gap = experiment.data.horizon
        if block < 1 or block <= gap:
            raise ValueError(
                f"--cv {k}: the training split has {n} windows; walk-forward needs more than "
                f"{(gap + 1) * (k + 1)} (k+1 blocks longer than the horizon {gap}); use fewer folds"
            )
        origins = walk_forward(n, horizon=block, folds=k, min_train=block)
        return [(np.arange(o.train_end - gap), np.arange(o.train_end, o.test_end)) for o in origins]
    if k > n:
        raise ValueError(f"--cv {k}: the training split has only {n} sequences")
    labels = None
    if task == "classification" and experiment.model.task == "classification":
        labels = np.asarray([int(train[i][1]) for i in range(n)])
        present = np.bincount(labels)
        smallest = int(present[present > 0].min())
        if smallest < k:
            raise ValueError(
                f"--cv {k}: the rarest class has {smallest} training sequences; "
                f"stratified folds need at least {k}"
            )
    return list(kfold(n, k, seed=experiment.seed, labels=labels))


def cv_pool(built: Built) -> Any:
    """What the folds are carved from: the training and validation splits, in that order.

    Everything but the test split: on a small set the validation carve is a fifth of the data the
    folds would otherwise lose. For series the validation windows follow the training ones, so
    the order stays the order of time.
    """
    data: Any = built.datamodule
    parts = getattr(data, "parts", None)
    if parts is None or not hasattr(data, "collate_fn"):
        raise ValueError(
            "--cv needs a data set of separate sequences or windows (classification, tagging, "
            "forecasting, seq2seq, data.mode: sequences); a language model's text stream tunes "
            "on its validation split"
        )
    return ConcatDataset([parts[0], parts[1]])


def _fold_built(built: Built, pool: Any, train_idx: np.ndarray, val_idx: np.ndarray) -> Built:
    data: Any = built.datamodule
    train = Subset(pool, train_idx.tolist())
    val = Subset(pool, val_idx.tolist())
    fold = FoldData(train, val, batch_size=data.batch_size, collate_fn=data.collate_fn)
    batches = max(1, math.ceil(len(train) / data.batch_size))
    return dataclasses.replace(built, datamodule=fold, train_batches=batches)


# ---- the search ----------------------------------------------------------------------------


class _Objective:
    """One trial: sample, apply, train (per fold), return the best monitored validation value."""

    def __init__(
        self,
        base: Any,
        space: list[Param],
        *,
        monitor: str,
        maximize: bool,
        cv: int,
        root: Path,
        full_ensemble: bool = False,
    ) -> None:
        self.base, self.space, self.monitor, self.maximize = base, space, monitor, maximize
        self.cv, self.trials_dir, self.full_ensemble = cv, root / "trials", full_ensemble

    def _experiment(self, params: dict[str, Any], name: str) -> Any:
        run = {
            "run.root": str(self.trials_dir),
            "run.name": name,
            "run.plot": False,
            "trainer.enable_progress_bar": False,
        }
        return with_params(self.base, {**params, **run})

    def _fit(self, experiment: Any, built: Built, watch: WatchMetric) -> None:
        result = fit(experiment, built=built, callbacks=[watch], final_eval=False, test=False)
        shutil.rmtree(result.run_dir / "checkpoints", ignore_errors=True)

    def _built(self, experiment: Any, fold: int | None, folds_of: Any) -> Built:
        """``experiment``'s data with the test split sealed, or fold ``fold`` of it (the folds
        of ``folds_of``, the trial's experiment: an ensemble's members share them)."""
        built = build(experiment)
        seal_test(built.datamodule)
        if fold is None:
            return built
        pool = cv_pool(built)
        train_idx, val_idx = fold_indices(folds_of, pool, self.cv)[fold]
        return _fold_built(built, pool, train_idx, val_idx)

    def _ensemble_value(self, experiment: Any, fold: int | None) -> tuple[float, list[int]]:
        """Fit the trial's K members (seeds ``seed`` ..) on one split or fold, each keeping its
        best checkpoint, and validate their averaged probabilities on that split: the monitored
        value and each member's best step."""
        k, models, steps = experiment.model.ensemble, [], []
        built: Built | None = None
        for seed in range(experiment.seed, experiment.seed + k):
            name = f"{experiment.run.name}-seed{seed}"
            member = with_params(experiment, {"seed": seed, "model.ensemble": 1, "run.name": name})
            built = self._built(member, fold, experiment)
            watch = WatchMetric(self.monitor, maximize=self.maximize)
            # final_eval validates the best checkpoint, which loads it into built.module.
            result = fit(member, built=built, callbacks=[watch], final_eval=True, test=False)
            shutil.rmtree(result.run_dir / "checkpoints", ignore_errors=True)
            models.append(built.module.model)
            steps.append(watch.best_step)
        assert built is not None
        built.module.model = EnsembleClassifier(models)
        trainer = built.scoring_trainer(experiment.trainer.accelerator)
        results = trainer.validate(built.module, datamodule=built.datamodule, verbose=False)
        value = float(results[0].get(self.monitor, math.nan)) if results else math.nan
        if not math.isfinite(value):
            raise RuntimeError(f"{self.monitor} of the averaged members is not a finite number")
        return value, steps

    def __call__(self, trial: Any) -> float:
        import optuna

        params = {p.key: p.suggest(trial) for p in self.space}
        trial.set_user_attr("values", params)  # as applied (stepped floats rounded)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        members = _ensemble_size(self._experiment(params, "probe")) if self.full_ensemble else 1
        trial.set_user_attr("members", members)
        if members > 1:
            return self._ensemble_trial(trial, params)
        one = {"model.ensemble": 1} if _ensemble_size(self.base) > 1 else {}
        params = {**params, **one}
        if self.cv == 0:
            experiment = self._experiment(params, f"{trial.number:04d}")
            built = self._built(experiment, None, experiment)
            watch = WatchMetric(self.monitor, maximize=self.maximize, trial=trial)
            self._fit(experiment, built, watch)
            trial.set_user_attr("best_step", watch.best_step)
            if watch.pruned:
                raise optuna.TrialPruned()
            return _value(watch)
        values: list[float] = []
        steps: list[int] = []
        for k in range(self.cv):
            experiment = self._experiment(params, f"{trial.number:04d}-fold{k}")
            watch = WatchMetric(self.monitor, maximize=self.maximize)
            self._fit(experiment, self._built(experiment, k, experiment), watch)
            values.append(_value(watch))
            steps.append(watch.best_step)
            trial.set_user_attr("fold_values", values)
            trial.set_user_attr("fold_best_steps", steps)
            trial.report(statistics.fmean(values), step=k)
            if k < self.cv - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return statistics.fmean(values)

    def _ensemble_trial(self, trial: Any, params: dict[str, Any]) -> float:
        """A trial of K members per split or fold (``trial_ensemble="full"``); pruned only
        between folds."""
        import optuna

        if self.cv == 0:
            experiment = self._experiment(params, f"{trial.number:04d}")
            value, steps = self._ensemble_value(experiment, None)
            trial.set_user_attr("member_best_steps", steps)
            return value
        values: list[float] = []
        for k in range(self.cv):
            experiment = self._experiment(params, f"{trial.number:04d}-fold{k}")
            values.append(self._ensemble_value(experiment, k)[0])
            trial.set_user_attr("fold_values", values)
            trial.report(statistics.fmean(values), step=k)
            if k < self.cv - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return statistics.fmean(values)


def _ensemble_size(experiment: Any) -> int:
    return int(getattr(experiment.model, "ensemble", 1))


def _value(watch: WatchMetric) -> float:
    if watch.best is None:
        raise RuntimeError(f"{watch.monitor} was never a finite number at a validation")
    return watch.best


def _pruner(name: Pruner, max_resource: int, *, cv: int = 0) -> Any:
    """``max_resource``: the last step a trial reports (max_steps, or the last fold with --cv).

    Under --cv the median pruner waits for two folds: one small fold ranks trials too noisily (on
    ItalyPowerDemand it pruned 8 of 12 trials, some better than the median after every fold).
    """
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1 if cv else 0)
    if name == "hyperband":
        top: Any = max_resource if max_resource > 0 else "auto"
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=top)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"--pruner must be median, hyperband or none; got {name!r}")


def _finished(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


# Keys that change where or how visibly a run is written, not what it trains.
_IGNORED = ("run.", "trainer.enable_progress_bar", "trainer.num_threads")


def _searched_base(base: Any) -> dict[str, Any]:
    """The experiment a study searches around, flat (``optim.lr``), without run-place keys."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif not f"{prefix}{key}".startswith(_IGNORED):
                flat[f"{prefix}{key}"] = value

    walk(json.loads(json.dumps(dataclasses.asdict(base))), "")
    return flat


def _open_study(
    base: Any,
    space: list[Param],
    options: TuneOptions,
    root: Path,
    *,
    metric: str,
    direction: Literal["maximize", "minimize"],
) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = options.study or f"tune-{base.task}"
    sampler = optuna.samplers.TPESampler(
        seed=base.seed, n_startup_trials=max(3, min(10, options.trials // 3))
    )
    study = optuna.create_study(
        storage=open_storage(options.storage, root),
        sampler=sampler,
        pruner=_pruner(
            options.pruner, options.cv - 1 if options.cv else base.trainer.max_steps, cv=options.cv
        ),
        study_name=name,
        direction=direction,
        load_if_exists=True,
    )
    wanted = {
        "metric": metric,
        "cv": options.cv,
        "trial_ensemble": options.trial_ensemble,
        "experiment": _searched_base(base),
    }
    held = study.user_attrs
    diffs = [
        f"{k} {held[k]!r} (now {wanted[k]!r})"
        for k in ("metric", "cv", "trial_ensemble")
        if k in held and held[k] != wanted[k]
    ]
    if "experiment" in held and held["experiment"] != wanted["experiment"]:
        old: dict[str, Any] = held["experiment"]
        new: dict[str, Any] = _searched_base(base)
        keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        diffs.append(f"other recipe values ({', '.join(keys)})")
    if diffs:
        raise ValueError(
            f"study {name!r} was started with {'; '.join(diffs)}; rerun the same command to "
            "continue it, or pass another --study"
        )
    if study.direction.name.lower() != direction:
        held_direction = study.direction.name.lower()
        raise ValueError(f"study {name!r} is set to {held_direction}, not {direction}")
    for key, value in wanted.items():
        study.set_user_attr(key, value)
    recipe = recipe_params(base, space)
    if not study.trials and recipe:
        # The recipe's own values are trial 0: the search is then measured against the untuned
        # recipe under the same objective, and cannot end worse than it by that objective.
        study.enqueue_trial(recipe, user_attrs={"recipe": True}, skip_if_exists=True)
    return study


def recipe_params(base: Any, space: list[Param]) -> dict[str, Any]:
    """The values ``base`` already has for the keys of ``space`` that lie inside their ranges."""
    flat = _searched_base(base)
    out: dict[str, Any] = {}
    for p in space:
        value = flat.get(p.key)
        if p.kind == "categorical":
            if value in p.choices:
                out[p.key] = value
            continue
        assert p.low is not None and p.high is not None
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        step = p.step or (1.0 if p.kind == "int" else None)
        on_grid = step is None or abs(round((value - p.low) / step) * step + p.low - value) < 1e-9
        if p.low <= value <= p.high and on_grid:
            out[p.key] = value
    return out


def tune(base: Any, space: list[Param], options: TuneOptions) -> TuneResult:
    """Search ``space`` around the experiment ``base``; then refit, test and report.

    Finished trials already in the study count toward ``options.trials``, so rerunning the same
    command resumes a study, and several processes given one storage share the work.
    """
    import optuna

    start = time.perf_counter()
    if options.trials < 1:
        raise ValueError(f"--trials must be >= 1, got {options.trials}")
    if options.cv == 1 or options.cv < 0:
        raise ValueError(f"--cv must be 0 (the validation split) or >= 2 folds, got {options.cv}")
    if options.trial_ensemble not in ("one", "full"):
        raise ValueError(f"--trial-ensemble must be one or full, got {options.trial_ensemble!r}")
    if options.trial_ensemble == "one" and any(p.key == "model.ensemble" for p in space):
        raise ValueError(
            "the space searches model.ensemble, but each trial fits one member "
            "(--trial-ensemble one); pass --trial-ensemble full"
        )
    check_space(base, space)
    probe = build(base)  # the recipe builds, and the data decides the monitor and the folds
    metric = base.run.monitor or probe.module.monitor_default
    direction = direction_of(metric, base.run.monitor_mode)
    if options.cv:
        fold_indices(base, cv_pool(probe), options.cv)  # too few items or classes fail here
    del probe
    name = options.study or f"tune-{base.task}"
    root = Path(options.root or Path(base.run.root) / name)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "space.yaml", space_yaml(space))
    study = _open_study(base, space, options, root, metric=metric, direction=direction)
    objective = _Objective(
        base,
        space,
        monitor=metric,
        maximize=direction == "maximize",
        cv=options.cv,
        root=root,
        full_ensemble=options.trial_ensemble == "full",
    )
    remaining = options.trials - _finished(study)
    if remaining > 0:
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=options.timeout,
            catch=(RuntimeError, ArithmeticError),
            callbacks=[optuna.study.MaxTrialsCallback(options.trials, states=states)],
            gc_after_trial=True,
        )
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial if completed else None
    if options.search_only:
        return TuneResult(root, name, best and best.value, dict(best.params) if best else {}, {})
    if best is None:
        raise ValueError(
            f"study {name!r}: no trial completed ({_counts(study)}); see {root / 'trials.csv'}"
        )
    from rnnkit.tune.report import write_outputs

    report = write_outputs(
        study,
        base,
        best,
        root=root,
        metric=metric,
        options=options,
        storage=_storage_name(options.storage, root),
        refit=_refit,
    )
    report["wall_time_s"] = round(time.perf_counter() - start, 2)
    report["versions"] = {**versions(), "optuna": optuna.__version__}
    atomic_write_text(root / "report.json", json.dumps(report, indent=2))
    return TuneResult(root, name, best.value, dict(best.params), report)


def _counts(study: Any) -> str:
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "no trials"


def _refit(experiment: Any, root: Path, name: str) -> dict[str, Any]:
    """Fit ``experiment`` into ``root/name`` (a previous one there is replaced); test its best."""
    target = root / name
    if target.exists():
        shutil.rmtree(target)
    run = {"run.root": str(root), "run.name": name}
    result = fit(with_params(experiment, run), test=True, judge=judge_run)
    test = {k: v for k, v in result.metrics.items() if k.startswith("test_")}
    verdict = result.summary.get("verdict") or {}
    return {
        "run_dir": str(result.run_dir),
        "fit": result.metrics,
        "test": test,
        "baselines": result.summary.get("baselines") or {},  # judged on the same test split
        "verdict": verdict.get("line"),
    }


__all__ = [
    "FoldData",
    "TuneOptions",
    "TuneResult",
    "WatchMetric",
    "cv_pool",
    "fold_indices",
    "open_storage",
    "recipe_params",
    "seal_test",
    "tune",
]
