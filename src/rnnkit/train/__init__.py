"""Training on Lightning: one task module per family, typed experiment configs, run directories.

- `specs`: ``LanguageModelExperiment``, ``ClassificationExperiment``, ``TaggingExperiment``,
  ``ForecastingExperiment``, ``Seq2SeqExperiment`` (YAML recipes map onto these).
- `trainer`: ``fit(experiment, resume=..., data=..., test=...)`` trains and fills ``runs/<name>/``;
  ``build(experiment, data=...)``, ``make_trainer``, ``evaluate`` (re-score a run).
- `tasks/`: the registry ``TASKS`` and one module per family (lm, classify, tag, forecast,
  seq2seq): LightningModule + metrics + builder; `Built` and `DataParts` in ``tasks/base.py``.
- `artifact.load_run(run_dir)`: the trained model from its safetensors artifact, for prediction.

Names are imported on first use (PEP 562), so the config dataclasses (`rnnkit.train.config`,
`rnnkit.train.specs`) load without torch or Lightning and the CLI checks a recipe fast.
See ``docs/training.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_LAZY = {
    "EarlyStoppingConfig": "rnnkit.train.config",
    "OptimConfig": "rnnkit.train.config",
    "RunConfig": "rnnkit.train.config",
    "SchedulerConfig": "rnnkit.train.config",
    "SequenceDataConfig": "rnnkit.train.config",
    "TBPTTConfig": "rnnkit.train.config",
    "TextDataConfig": "rnnkit.train.config",
    "TrainerConfig": "rnnkit.train.config",
    "monitor_mode": "rnnkit.train.config",
    "ExtraMetrics": "rnnkit.train.trainer",
    "build": "rnnkit.train.trainer",
    "evaluate": "rnnkit.train.trainer",
    "fit": "rnnkit.train.trainer",
    "make_trainer": "rnnkit.train.trainer",
    "LoadedRun": "rnnkit.train.artifact",
    "load_run": "rnnkit.train.artifact",
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
    "TASKS": "rnnkit.train.tasks",
    "Built": "rnnkit.train.tasks",
    "DataParts": "rnnkit.train.tasks",
    "LanguageModelTask": "rnnkit.train.tasks",
    "SequenceLMTask": "rnnkit.train.tasks",
    "TaskModule": "rnnkit.train.tasks",
    "WordDropout": "rnnkit.train.tasks",
}

if TYPE_CHECKING:
    from rnnkit.train.artifact import (
        LoadedRun,
        load_run,
    )
    from rnnkit.train.config import (
        EarlyStoppingConfig,
        OptimConfig,
        RunConfig,
        SchedulerConfig,
        SequenceDataConfig,
        TBPTTConfig,
        TextDataConfig,
        TrainerConfig,
        monitor_mode,
    )
    from rnnkit.train.run import (
        RunResult,
    )
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
    from rnnkit.train.tasks import (
        TASKS,
        Built,
        DataParts,
        LanguageModelTask,
        SequenceLMTask,
        TaskModule,
        WordDropout,
    )
    from rnnkit.train.trainer import (
        ExtraMetrics,
        build,
        evaluate,
        fit,
        make_trainer,
    )


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rnnkit.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "TASKS",
    "Built",
    "ClassificationExperiment",
    "ClassifierSpec",
    "DataParts",
    "EarlyStoppingConfig",
    "ExtraMetrics",
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
    "SequenceLMTask",
    "TBPTTConfig",
    "TaggerSpec",
    "TaggingExperiment",
    "TaskModule",
    "TextDataConfig",
    "TrainerConfig",
    "WordDropout",
    "build",
    "evaluate",
    "fit",
    "load_run",
    "make_trainer",
    "monitor_mode",
]
