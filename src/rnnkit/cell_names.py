"""The one list of cell names a config may give; stdlib only, so configs load without torch.

``"elman"`` is an alias of ``"rnn"`` that `rnnkit.cells.CELLS` also accepts.
"""

from typing import Literal, get_args

CellName = Literal["rnn", "lstm", "gru", "mingru", "minlstm"]
CELL_NAMES: tuple[str, ...] = get_args(CellName)
