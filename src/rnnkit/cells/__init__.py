"""Cells: one time step each, written from their equations.

`CellName` (defined in `rnnkit.cell_names`, which needs no torch) is the one list of the names a
config may give; `CELLS` maps each, and the alias ``"elman"``, to its class.
"""

from rnnkit.cell_names import CELL_NAMES, CellName
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
