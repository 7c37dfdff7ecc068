"""``rnnkit datasets``: the offline data set registry."""

from __future__ import annotations

from collections.abc import Sequence


def main(args: Sequence[str]) -> int:
    from rnnkit.cli import COMMANDS
    from rnnkit.data import list_datasets

    if any(a in ("-h", "--help") for a in args):
        print("rnnkit datasets: " + COMMANDS["datasets"][1])
        return 0
    for info in list_datasets():
        print(f"{info.name:<20} {info.task:<15} {info.size}")
        print(f"{'':<20} {info.description}  [{info.source}; {info.licence}]")
    return 0
