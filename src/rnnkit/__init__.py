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

__all__ = [
    "Batch",
    "ElmanCell",
    "GRUCell",
    "LSTMCell",
    "LSTMState",
    "MinGRUCell",
    "MinLSTMCell",
    "Recurrent",
    "RecurrentCell",
    "ScanCell",
    "State",
    "__version__",
]
