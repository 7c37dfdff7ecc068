"""Training on Lightning: one task module per family, typed experiment configs, run directories.

- `specs`: ``LanguageModelExperiment``, ``ClassificationExperiment``, ``TaggingExperiment``,
  ``ForecastingExperiment``, ``Seq2SeqExperiment`` (YAML recipes map onto these).
- `fit.fit(experiment, resume=...)`: train and fill ``runs/<name>/``; `evaluate` re-scores a run.
- `tasks` / `seq_tasks`: the LightningModules with one ``_common_step(batch, stage)``.
- `predict.load_run(run_dir)`: the trained model from its safetensors artifact, for prediction.

See ``docs/training.md``.
"""

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
