"""Cells: one time step each, written from their equations."""

from rnnkit.cells.base import RecurrentCell, ScanCell
from rnnkit.cells.elman import ElmanCell
from rnnkit.cells.gru import GRUCell
from rnnkit.cells.lstm import LSTMCell
from rnnkit.cells.minimal import MinGRUCell, MinLSTMCell

CELLS: dict[str, type[RecurrentCell]] = {
    "rnn": ElmanCell,
    "elman": ElmanCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "mingru": MinGRUCell,
    "minlstm": MinLSTMCell,
}

__all__ = [
    "CELLS",
    "ElmanCell",
    "GRUCell",
    "LSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
    "RecurrentCell",
    "ScanCell",
]
