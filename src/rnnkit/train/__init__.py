"""Training on Lightning: one task module per family, typed experiment configs, run directories.

- `specs`: ``LanguageModelExperiment``, ``ClassificationExperiment``, ``TaggingExperiment``,
  ``ForecastingExperiment``, ``Seq2SeqExperiment`` (YAML recipes map onto these).
- `trainer`: ``fit(experiment, resume=..., data=..., test=...)`` trains and fills ``runs/<name>/``;
  ``build(experiment, data=...)``, ``make_trainer``, ``evaluate`` (re-score a run).
- `tasks/`: the registry ``TASKS`` and one module per family (lm, classify, tag, forecast,
  seq2seq): LightningModule + metrics + builder; `Built` and `DataParts` in ``tasks/base.py``.
- `artifact.load_run(run_dir)`: the trained model from its safetensors artifact, for prediction.

See ``docs/training.md``.
"""

from rnnkit.train.artifact import LoadedRun, load_run
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
from rnnkit.train.tasks import (
    TASKS,
    Built,
    DataParts,
    LanguageModelTask,
    SequenceLMTask,
    TaskModule,
    WordDropout,
)
from rnnkit.train.trainer import ExtraMetrics, build, evaluate, fit, make_trainer

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
