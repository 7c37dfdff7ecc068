"""Task models, one per input/output pattern, all built on :class:`rnnkit.recurrent.Recurrent`.

- many-to-one: :class:`SequenceClassifier` (``task="classification"`` or ``"regression"``)
- many-to-many, aligned: :class:`SequenceTagger`, :class:`Forecaster`
- one-to-many: :class:`LanguageModel` with :meth:`LanguageModel.generate`
- many-to-many, different lengths: :class:`Seq2Seq` with Bahdanau or Luong attention
- one-to-one: a :class:`SequenceClassifier` on length-1 sequences

Each model takes a typed ``@dataclass`` config and named tensors (the fields of
:class:`rnnkit.types.Batch`: ``x``, ``lengths``, ``y``), and has a ``loss`` for training.
"""

from rnnkit.models._decoding import Decoded, filter_logits, sample_next
from rnnkit.models.classifier import Pooled, SequenceClassifier, SequenceClassifierConfig
from rnnkit.models.forecaster import Forecast, Forecaster, ForecasterConfig
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig, LMOutput
from rnnkit.models.seq2seq import DecoderState, Seq2Seq, Seq2SeqConfig, Seq2SeqOutput
from rnnkit.models.tagger import SequenceTagger, SequenceTaggerConfig

__all__ = [
    "Decoded",
    "DecoderState",
    "Forecast",
    "Forecaster",
    "ForecasterConfig",
    "LMOutput",
    "LanguageModel",
    "LanguageModelConfig",
    "Pooled",
    "Seq2Seq",
    "Seq2SeqConfig",
    "Seq2SeqOutput",
    "SequenceClassifier",
    "SequenceClassifierConfig",
    "SequenceTagger",
    "SequenceTaggerConfig",
    "filter_logits",
    "sample_next",
]
