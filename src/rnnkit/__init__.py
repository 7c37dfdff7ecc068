"""rnnkit: recurrent neural networks from their equations to deployment, on PyTorch."""

from rnnkit.cells import (
    ElmanCell,
    GRUCell,
    LSTMCell,
    MinGRUCell,
    MinLSTMCell,
    RecurrentCell,
    ScanCell,
)
from rnnkit.recurrent import Recurrent
from rnnkit.types import Batch, LSTMState, State

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Predictor is imported on first use: `import rnnkit` stays as light as it was.
    if name == "Predictor":
        from rnnkit.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")


__all__ = [
    "Batch",
    "ElmanCell",
    "GRUCell",
    "LSTMCell",
    "LSTMState",
    "MinGRUCell",
    "MinLSTMCell",
    "Predictor",
    "Recurrent",
    "RecurrentCell",
    "ScanCell",
    "State",
    "__version__",
]
