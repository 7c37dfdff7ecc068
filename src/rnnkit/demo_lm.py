"""The main demo: a character LSTM language model learns Shakespeare in about three minutes.

``python -m rnnkit.demo_lm`` reads the shipped recipe ``configs/demo_charlm.yaml``, prints a sample
from the untrained model, trains with truncated BPTT on 2 CPU cores, prints a sample from the
trained one and the validation bits per character against a unigram baseline, and leaves a run
directory (config, metrics CSV, TensorBoard, loss curve, summary, artifact). Extra
``--section.key value`` flags override the recipe, as with ``rnnkit fit``.
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Sequence

PROMPT = "HAMLET\n"


def _show(title: str, text: str) -> None:
    print(f"\n--- {title} ---")
    print(textwrap.indent(PROMPT + text, "  | "))


def main(argv: Sequence[str] | None = None) -> int:
    from rnnkit.models import LanguageModel
    from rnnkit.recipes import recipe_path
    from rnnkit.train.experiment_io import parse_experiment
    from rnnkit.train.specs import LanguageModelExperiment
    from rnnkit.train.tasks.lm import sample_text
    from rnnkit.train.trainer import build, fit

    args = list(sys.argv[1:] if argv is None else argv)
    recipe = recipe_path("demo_charlm")
    experiment = parse_experiment(
        LanguageModelExperiment, ["--config", str(recipe), *args], prog="python -m rnnkit.demo_lm"
    )
    start = time.perf_counter()
    print(f"rnnkit demo: character LSTM language model on {experiment.data.source!r} ({recipe})")
    built = build(experiment)
    corpus = built.datamodule.corpus  # type: ignore[attr-defined]
    n_params = sum(p.numel() for p in built.module.model.parameters())
    print(
        f"corpus: {len(corpus.train):,} train / {len(corpus.val):,} validation characters, "
        f"{len(corpus.vocab)} symbols; model: {n_params:,} parameters; "
        f"unigram baseline {built.baselines['baseline_unigram_bpc']:.3f} bits/char"
    )
    model: LanguageModel = built.module.model
    vocab, seed = corpus.vocab, experiment.seed
    _show("sample before training", sample_text(model, vocab, prompt=PROMPT, chars=240, seed=seed))
    result = fit(experiment, built=built)
    _show("sample after training", sample_text(model, vocab, prompt=PROMPT, chars=400, seed=seed))
    m = result.metrics
    bpc, base = m["val_bpc"], m["baseline_unigram_bpc"]
    steps = result.summary.get("steps", "?")
    print(
        f"\nvalidation bits per character: {bpc:.3f} (unigram baseline {base:.3f}; "
        f"{100 * (1 - bpc / base):.0f}% fewer bits) after {steps} steps, "
        f"{time.perf_counter() - start:.0f} s"
    )
    print(
        f"run directory: {result.run_dir}  (loss_curve.png, metrics.csv, summary.json, artifact/)"
    )
    print(f"try: rnnkit generate --run {result.run_dir} --prompt 'ROMEO\\n' --chars 300")
    return 0 if bpc < base else 1


if __name__ == "__main__":
    raise SystemExit(main())
