"""Model specs and one experiment config per task family.

A spec is a model's config without the sizes the data decides (vocabulary, classes, inputs):
``LanguageModelSpec`` + vocabulary -> `rnnkit.models.LanguageModelConfig`. A test checks each spec
against its model config so the two cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rnnkit.cell_names import CellName
from rnnkit.train.config import Common, SequenceDataConfig, TBPTTConfig, TextDataConfig

Cell = CellName

_SIZES = ("embedding_dim", "hidden_size", "num_layers")
_SHARES = {"dropout": "in [0, 1)", "teacher_forcing": "in [0, 1]"}


class _Checked:
    """The model configs' own rules, checked when the recipe is parsed (before torch loads), with
    the recipe's key (``model.hidden_size``) in the message."""

    def __post_init__(self) -> None:
        for name in _SIZES:
            value = getattr(self, name, 1)
            if value < 1:
                raise ValueError(f"model.{name} must be >= 1, got {value}")
        for name, rule in _SHARES.items():
            value = getattr(self, name, 0.0)
            top_ok = value <= 1.0 if name == "teacher_forcing" else value < 1.0
            if not (math.isfinite(value) and 0.0 <= value and top_ok):
                raise ValueError(f"model.{name} must be {rule}, got {value}")


@dataclass
class LanguageModelSpec(_Checked):
    """`rnnkit.models.LanguageModelConfig` without ``vocab_size``."""

    embedding_dim: int = 64  # E, embedding width
    cell: Cell = "lstm"  # recurrent cell
    hidden_size: int = 128  # H, the recurrent state size
    num_layers: int = 1  # L, stacked recurrent layers
    dropout: float = 0.0  # on embeddings, between layers, and before the output layer
    tie_weights: bool = False  # share the embedding matrix with the output layer


@dataclass
class ClassifierSpec(_Checked):
    """`rnnkit.models.SequenceClassifierConfig` minus ``num_outputs``, ``input_size``, vocab."""

    embedding_dim: int = 32  # embedding width (token input only)
    cell: Cell = "lstm"  # recurrent cell
    hidden_size: int = 64  # H
    num_layers: int = 1  # L
    bidirectional: bool = False  # D = 2
    dropout: float = 0.0  # between layers and before the head
    pooling: Literal["last", "mean", "max", "attention"] = "last"  # steps -> one vector
    task: Literal["classification", "regression"] = "classification"  # picks the loss
    ensemble: int = 1  # K members trained with seeds seed..seed+K-1; probabilities averaged

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.ensemble, bool) or self.ensemble < 1:
            raise ValueError(f"model.ensemble must be an integer >= 1, got {self.ensemble!r}")


@dataclass
class TaggerSpec(_Checked):
    """`rnnkit.models.SequenceTaggerConfig` without ``num_tags``/``input_size``/``vocab_size``."""

    embedding_dim: int = 32  # embedding width (token input only)
    cell: Cell = "lstm"  # recurrent cell
    hidden_size: int = 64  # H
    num_layers: int = 1  # L
    bidirectional: bool = True  # D = 2
    dropout: float = 0.0  # between layers and before the head


@dataclass
class ForecasterSpec(_Checked):
    """`rnnkit.models.ForecasterConfig` without ``target_size``/``covariate_size``/``horizon``."""

    strategy: Literal["direct", "autoregressive"] = "direct"  # one-shot head or roll-out
    distribution: Literal["point", "gaussian"] = "point"  # MSE or Gaussian NLL
    cell: Cell = "lstm"  # recurrent cell
    hidden_size: int = 64  # H
    num_layers: int = 1  # L
    dropout: float = 0.0  # between layers
    # Hybrid: the head learns a correction to this statistical base, computed from each input
    # window (`rnnkit.models._base`); it starts exactly at the base. "ets" fits its four
    # coefficients on the training windows.
    # "given": the last known covariate's future steps (an app computes them; see the model).
    base: Literal["none", "naive", "seasonal_naive", "ets", "given"] = "none"
    season: int = 0  # the base's period; 0: from the data (its frequency, or the app's season)
    # "validation": at the end of the run the bare base (head zeroed) and the equal-weight
    # combination of base and hybrid (head halved) compete with the best checkpoint on the
    # validation split (the run's monitor); ties keep the simpler: base, then combined
    # (`rnnkit.train.base_select`). "never": always the trained hybrid.
    base_select: Literal["validation", "never"] = "validation"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.season < 0:
            raise ValueError(f"model.season must be >= 0 (0: from the data), got {self.season}")
        if self.base != "none" and self.strategy != "direct":
            raise ValueError(
                f"model.base {self.base!r} needs model.strategy: direct, got {self.strategy!r}"
            )


@dataclass
class Seq2SeqSpec(_Checked):
    """`rnnkit.models.Seq2SeqConfig` without vocabulary sizes and special ids."""

    embedding_dim: int = 64  # source and target embedding width
    cell: Cell = "gru"  # encoder and decoder cell
    hidden_size: int = 128  # H
    num_layers: int = 1  # L
    bidirectional_encoder: bool = True  # memory is 2H wide
    attention: Literal["none", "bahdanau", "dot", "general"] = "bahdanau"  # decoder attention
    dropout: float = 0.0  # on embeddings, between layers, before the output
    teacher_forcing: float = 1.0  # probability of feeding the true previous token while training


@dataclass
class LanguageModelExperiment(Common):
    """Train a `LanguageModel` on a text stream with truncated BPTT."""

    task: Literal["language_model"] = "language_model"
    data: TextDataConfig = field(default_factory=TextDataConfig)
    model: LanguageModelSpec = field(default_factory=LanguageModelSpec)
    tbptt: TBPTTConfig = field(default_factory=TBPTTConfig)
    sample_chars: int = 300  # characters generated into the summary after training


@dataclass
class ClassificationExperiment(Common):
    """Train a `SequenceClassifier` (many-to-one)."""

    task: Literal["classification"] = "classification"
    data: SequenceDataConfig = field(default_factory=SequenceDataConfig)
    model: ClassifierSpec = field(default_factory=ClassifierSpec)


@dataclass
class TaggingExperiment(Common):
    """Train a `SequenceTagger` (many-to-many, aligned)."""

    task: Literal["tagging"] = "tagging"
    data: SequenceDataConfig = field(
        default_factory=lambda: SequenceDataConfig(source="synthetic_tags")
    )
    model: TaggerSpec = field(default_factory=TaggerSpec)


@dataclass
class ForecastingExperiment(Common):
    """Train a `Forecaster` (many-to-many, aligned, real-valued)."""

    task: Literal["forecasting"] = "forecasting"
    data: SequenceDataConfig = field(
        default_factory=lambda: SequenceDataConfig(source="synthetic_sine", seq_len=32)
    )
    model: ForecasterSpec = field(default_factory=ForecasterSpec)


@dataclass
class Seq2SeqExperiment(Common):
    """Train a `Seq2Seq` with attention (many-to-many, different lengths)."""

    task: Literal["seq2seq"] = "seq2seq"
    data: SequenceDataConfig = field(
        default_factory=lambda: SequenceDataConfig(source="synthetic_reverse", seq_len=8)
    )
    model: Seq2SeqSpec = field(default_factory=Seq2SeqSpec)


Experiment = (
    LanguageModelExperiment
    | ClassificationExperiment
    | TaggingExperiment
    | ForecastingExperiment
    | Seq2SeqExperiment
)

EXPERIMENTS: dict[str, type[Any]] = {
    "language_model": LanguageModelExperiment,
    "classification": ClassificationExperiment,
    "tagging": TaggingExperiment,
    "forecasting": ForecastingExperiment,
    "seq2seq": Seq2SeqExperiment,
}


def spec_dict(spec: Any, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A spec's fields as keyword arguments for its model config."""
    return {k: v for k, v in asdict(spec).items() if k not in drop}
