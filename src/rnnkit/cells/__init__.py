"""Cells: one time step each, written from their equations.

`CellName` is the one list of the names a config may give (``"elman"`` is an alias of ``"rnn"``
that `CELLS` also accepts); every config and check in rnnkit reads it from here.
"""

from typing import Literal, get_args

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

CellName = Literal["rnn", "lstm", "gru", "mingru", "minlstm"]
CELL_NAMES: tuple[str, ...] = get_args(CellName)

__all__ = [
    "CELLS",
    "CELL_NAMES",
    "CellName",
    "ElmanCell",
    "GRUCell",
    "LSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
    "RecurrentCell",
    "ScanCell",
]
