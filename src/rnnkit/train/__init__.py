"""Training on Lightning: one task module per family, typed experiment configs, run directories.

- `specs`: ``LanguageModelExperiment``, ``ClassificationExperiment``, ``TaggingExperiment``,
  ``ForecastingExperiment``, ``Seq2SeqExperiment`` (YAML recipes map onto these).
- `fit.fit(experiment, resume=...)`: train and fill ``runs/<name>/``; `evaluate` re-scores a run.
- `tasks` / `seq_tasks`: the LightningModules with one ``_common_step(batch, stage)``.
- `predict.load_run(run_dir)`: the trained model from its safetensors artifact, for prediction.

See ``docs/training.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it; imported on first use (PEP 562) so that the config
# dataclasses (`rnnkit.train.config`, `rnnkit.train.specs`) load without torch or Lightning
_LAZY = {
    "EarlyStoppingConfig": "rnnkit.train.config",
    "OptimConfig": "rnnkit.train.config",
    "RunConfig": "rnnkit.train.config",
    "SchedulerConfig": "rnnkit.train.config",
    "SequenceDataConfig": "rnnkit.train.config",
    "TBPTTConfig": "rnnkit.train.config",
    "TextDataConfig": "rnnkit.train.config",
    "TrainerConfig": "rnnkit.train.config",
    "build": "rnnkit.train.fit",
    "evaluate": "rnnkit.train.fit",
    "fit": "rnnkit.train.fit",
    "LoadedRun": "rnnkit.train.predict",
    "load_run": "rnnkit.train.predict",
    "RunResult": "rnnkit.train.run",
    "ClassificationExperiment": "rnnkit.train.specs",
    "ClassifierSpec": "rnnkit.train.specs",
    "ForecasterSpec": "rnnkit.train.specs",
    "ForecastingExperiment": "rnnkit.train.specs",
    "LanguageModelExperiment": "rnnkit.train.specs",
    "LanguageModelSpec": "rnnkit.train.specs",
    "Seq2SeqExperiment": "rnnkit.train.specs",
    "Seq2SeqSpec": "rnnkit.train.specs",
    "TaggerSpec": "rnnkit.train.specs",
    "TaggingExperiment": "rnnkit.train.specs",
    "LanguageModelTask": "rnnkit.train.tasks",
    "TaskModule": "rnnkit.train.tasks",
}

if TYPE_CHECKING:
    from rnnkit.train.config import (
        EarlyStoppingConfig,
        OptimConfig,
        RunConfig,
        SchedulerConfig,
        SequenceDataConfig,
        TBPTTConfig,
        TextDataConfig,
        TrainerConfig,
    )
    from rnnkit.train.fit import build, evaluate, fit
    from rnnkit.train.predict import LoadedRun, load_run
    from rnnkit.train.run import RunResult
    from rnnkit.train.specs import (
        ClassificationExperiment,
        ClassifierSpec,
        ForecasterSpec,
        ForecastingExperiment,
        LanguageModelExperiment,
        LanguageModelSpec,
        Seq2SeqExperiment,
        Seq2SeqSpec,
        TaggerSpec,
        TaggingExperiment,
    )
    from rnnkit.train.tasks import LanguageModelTask, TaskModule


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnnkit.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "ClassificationExperiment",
    "ClassifierSpec",
    "EarlyStoppingConfig",
    "ForecasterSpec",
    "ForecastingExperiment",
    "LanguageModelExperiment",
    "LanguageModelSpec",
    "LanguageModelTask",
    "LoadedRun",
    "OptimConfig",
    "RunConfig",
    "RunResult",
    "SchedulerConfig",
    "Seq2SeqExperiment",
    "Seq2SeqSpec",
    "SequenceDataConfig",
    "TBPTTConfig",
    "TaggerSpec",
    "TaggingExperiment",
    "TaskModule",
    "TextDataConfig",
    "TrainerConfig",
    "build",
    "evaluate",
    "fit",
    "load_run",
]
