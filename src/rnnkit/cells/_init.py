"""Weight initialisation shared by the cells: per-gate blocks, so each gate's square block is
orthogonal (or Xavier) on its own, as if it were a separate matrix."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

INIT_SCHEMES = ("orthogonal", "xavier_uniform", "xavier_normal", "uniform", "identity")


def init_blocks(weight: Tensor, gates: int, scheme: str, *, field: str) -> None:
    """Initialise ``weight`` ``(G*H, ·)`` in place, one ``(H, ·)`` block per gate.

    ``uniform`` is torch.nn's default U(-1/sqrt(H), 1/sqrt(H)); ``identity`` is the IRNN choice
    (Le et al. 2015) for square recurrent blocks.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"{field}={scheme!r} is not an init scheme; choose one of {INIT_SCHEMES}")
    rows = weight.shape[0] // gates
    with torch.no_grad():
        for block in weight.split(rows, dim=0):
            if scheme == "orthogonal":
                nn.init.orthogonal_(block)
            elif scheme == "xavier_uniform":
                nn.init.xavier_uniform_(block)
            elif scheme == "xavier_normal":
                nn.init.xavier_normal_(block)
            elif scheme == "uniform":
                bound = 1.0 / math.sqrt(rows)
                nn.init.uniform_(block, -bound, bound)
            else:
                if block.shape[0] != block.shape[1]:
                    raise ValueError(
                        f"{field}='identity' needs square blocks, got {tuple(block.shape)}"
                    )
                block.copy_(torch.eye(block.shape[0], dtype=block.dtype))
