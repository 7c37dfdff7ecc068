"""The task registry: one module per task family (LightningModule + metrics + builder).

``TASKS`` maps an experiment's ``task`` to its builder ``(experiment, data) -> Built``; ``data`` is
None (the builder reads ``experiment.data``) or the `DataParts` an application built in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rnnkit.train.tasks.base import Built, DataParts, TaskModule, WordDropout
from rnnkit.train.tasks.classify import ClassificationTask, build_classifier
from rnnkit.train.tasks.forecast import ForecastBatch, ForecastTask, build_forecaster
from rnnkit.train.tasks.lm import LanguageModelTask, SequenceLMTask, build_language_model
from rnnkit.train.tasks.seq2seq import Seq2SeqTask, build_seq2seq
from rnnkit.train.tasks.tag import TaggingTask, build_tagger

Builder = Callable[[Any, Any], Built]

TASKS: dict[str, Builder] = {
    "language_model": build_language_model,
    "classification": build_classifier,
    "tagging": build_tagger,
    "forecasting": build_forecaster,
    "seq2seq": build_seq2seq,
}

__all__ = [
    "TASKS",
    "Built",
    "ClassificationTask",
    "DataParts",
    "ForecastBatch",
    "ForecastTask",
    "LanguageModelTask",
    "Seq2SeqTask",
    "SequenceLMTask",
    "TaggingTask",
    "TaskModule",
    "WordDropout",
]
