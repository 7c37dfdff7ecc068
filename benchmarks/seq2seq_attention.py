"""What caching the attention keys saves: Seq2Seq training step with the memory projected once per
source sequence (``DecoderState.keys``) vs once per decoder step (the keys left to each call).

    python benchmarks/seq2seq_attention.py   # -> benchmarks/results/seq2seq-attention-cpu.json

Sizes are those of the dates application (char source ~30 steps, ISO target 11 steps, GRU 64,
bidirectional encoder, batch 64) and a longer case (source 100, target 50, H 128).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import best_seconds, write_json

from rnnkit.models import Seq2Seq, Seq2SeqConfig

OUT = Path(__file__).resolve().parent / "results" / "seq2seq-attention-cpu.json"


class _PerStepKeys(Seq2Seq):
    """The same model, but the attention projects the memory again at every decoder step."""

    def encode(self, x, *, lengths=None):  # type: ignore[no-untyped-def]
        return super().encode(x, lengths=lengths)._replace(keys=None)


def main() -> int:
    torch.set_num_threads(1)
    records = []
    for B, S, M, H, kind in [
        (64, 30, 11, 64, "bahdanau"),
        (32, 100, 50, 128, "bahdanau"),
        (32, 100, 50, 128, "general"),
    ]:
        cfg = Seq2SeqConfig(src_vocab_size=60, tgt_vocab_size=16, hidden_size=H, attention=kind)
        torch.manual_seed(0)
        cached = Seq2Seq(cfg)
        per_step = _PerStepKeys(cfg)
        per_step.load_state_dict(cached.state_dict())
        x = torch.randint(3, 60, (B, S))
        y = torch.randint(3, 16, (B, M))
        times = {}
        for name, model in (("cached", cached), ("per_step", per_step)):

            def step(model: Seq2Seq = model, x: torch.Tensor = x, y: torch.Tensor = y) -> None:
                out = model(x, y)
                out.logits.sum().backward()

            times[name] = best_seconds(step, repeats=5)
        torch.testing.assert_close(cached(x, y).logits, per_step(x, y).logits)
        rec = {
            "B": B,
            "S": S,
            "M": M,
            "H": H,
            "attention": kind,
            "cached_ms": times["cached"] * 1e3,
            "per_step_ms": times["per_step"] * 1e3,
            "speedup": times["per_step"] / times["cached"],
            "threads": 1,
        }
        records.append(rec)
        print(rec, flush=True)
    write_json(OUT, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
