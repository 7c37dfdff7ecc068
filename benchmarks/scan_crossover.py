"""Where the parallel scan beats the step loop for minGRU on this machine.

For each (B, T, H) it times forward+backward of ``Recurrent("mingru")`` with the scan and with the
step loop, and writes ``benchmarks/results/scan-crossover-<device>.json``. The crossover in B*H
is what ``Recurrent.scan_cpu_max_width`` encodes.

    .venv/bin/python benchmarks/scan_crossover.py
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from _timing import best_seconds, write_json  # benchmarks/ is on sys.path when run as a script

from rnnkit import Recurrent

SHAPES = [(4, 4096, 64), (16, 512, 64), (16, 128, 128), (16, 512, 128), (16, 2048, 128),
          (32, 128, 128), (32, 512, 128), (64, 256, 256)]  # fmt: skip


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    records = []
    for B, T, H in SHAPES:
        x = torch.randn(T, B, H, device=device, requires_grad=True)
        row: dict[str, object] = {"B": B, "T": T, "H": H, "BH": B * H, "device": device}
        for name, force in (("scan", False), ("loop", True)):
            layer = Recurrent("mingru", H, H, force_loop=force).to(device)
            layer.scan_cpu_max_width = 1 << 30  # measure the scan even where it is not chosen

            def step(layer: Recurrent = layer, x: torch.Tensor = x) -> None:
                out, _ = layer(x)
                out.sum().backward()
                if device == "cuda":
                    torch.cuda.synchronize()

            row[f"{name}_ms"] = round(best_seconds(step) * 1e3, 2)
        row["scan_speedup"] = round(float(row["loop_ms"]) / float(row["scan_ms"]), 2)  # type: ignore[arg-type]
        records.append(row)
        print(row, flush=True)
    out = Path(__file__).parent / "results" / f"scan-crossover-{device}.json"
    write_json(out, records)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
