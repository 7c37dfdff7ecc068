"""``rnnkit diagnose``: PNGs and a verdict from a run's diagnostics, or from a config untrained.

rnnkit diagnose --run runs/NAME            # reads runs/NAME/diagnostics/ (the callback's files);
                                           # a run without them (an application's, or one with
                                           # trainer.diagnostics_every: 0): its trained model
                                           # measured on test batches, into runs/NAME/diagnose/
rnnkit diagnose --config configs/X.yaml [--section.key value ...] [--out DIR]
                                           # one batch of the untrained model, no training
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnkit.cli._common import resolve_configs

USAGE = __doc__ or ""


def _from_config(args: list[str], out: Path, *, batches: int) -> Path:
    """Build the experiment, measure gradient flow on its first train batches, save like the
    callback does."""
    from rnnkit.cli._common import peek_task
    from rnnkit.train.experiment_io import parse_experiment
    from rnnkit.train.specs import EXPERIMENTS
    from rnnkit.train.trainer import build

    task = peek_task(args)
    if task not in EXPERIMENTS:
        raise ValueError(f"task must be one of {', '.join(EXPERIMENTS)}; got {task!r}")
    experiment = parse_experiment(EXPERIMENTS[task], args, prog="rnnkit diagnose")
    built = build(experiment)
    dm = built.datamodule
    dm.prepare_data()
    dm.setup("fit")
    return _measure(built.module, dm.train_dataloader(), out, batches=batches)


def _from_run(run: str, out: Path, *, batches: int) -> Path:
    """A finished run's trained model measured on its first test batches (the test split its
    config names, or the one an application's run stored), saved like the callback does."""
    from rnnkit.train.artifact import load_run
    from rnnkit.train.trainer import rebuild

    loaded = load_run(run)
    built = rebuild(loaded)
    built.module.model.load_state_dict(loaded.model.state_dict())
    dm = built.datamodule
    dm.prepare_data()
    dm.setup("test")
    return _measure(built.module, dm.test_dataloader(), out, batches=batches)


def _measure(module: Any, loader: Any, out: Path, *, batches: int) -> Path:
    """Gradient flow, gates and Jacobian spectra of ``module`` on the first ``batches`` of
    ``loader`` (the training loss, as the callback measures it); written to ``out`` in the
    callback's format."""
    import torch

    from rnnkit.diagnostics.callback import GradientDiagnostics
    from rnnkit.diagnostics.flow import gradient_flow

    cb = GradientDiagnostics(out_dir=out, verbose=False)
    module.train()
    for i, batch in enumerate(loader):
        if i >= batches:
            break

        def loss_fn(b: Any = batch) -> torch.Tensor:
            loss, _ = module._loss_and_sums(b, "train")
            return loss

        report = gradient_flow(module, loss_fn, jacobian=True, jacobian_steps=16)
        cb.norms.append((i, report.total_grad_norm))
        cb.reports.append((i, report))
        summary = report.summary()
        summary["step"] = i
        cb.records.append(summary)
        for message in report.vanishing(within=cb.vanish_within):
            cb.events.append({"step": i, "kind": "vanishing", "message": message})
    cb.write(out)
    return out


def main(argv: Sequence[str]) -> int:
    """Entry point of ``rnnkit diagnose``; returns the exit status."""
    from rnnkit.diagnostics.plots import write_plots

    parser = argparse.ArgumentParser(
        prog="rnnkit diagnose",
        description="gradient-flow heatmap, gate saturation, Jacobian spectrum and a verdict",
        epilog=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", help="a run directory trained with GradientDiagnostics")
    parser.add_argument("--config", help="a YAML recipe: diagnose the untrained model")
    parser.add_argument("--out", help="where to write (default: RUN/diagnostics or ./diagnose)")
    parser.add_argument(
        "--batches",
        type=int,
        default=1,
        help="batches to measure (--config, or a --run without recorded diagnostics)",
    )
    ns, rest = parser.parse_known_args(list(argv))
    try:
        if (ns.run is None) == (ns.config is None):
            raise ValueError("give exactly one of --run DIR or --config RECIPE.yaml")
        if ns.run is not None:
            if rest:
                raise ValueError(f"unrecognised arguments: {' '.join(rest)}")
            source = Path(ns.run) / "diagnostics"
            if not Path(ns.run).is_dir():
                raise ValueError(f"run directory {ns.run} does not exist")
            if source.is_dir():
                out = Path(ns.out) if ns.out else source
            else:  # nothing recorded while training: measure the trained model now
                out = Path(ns.out) if ns.out else Path(ns.run) / "diagnose"
                source = _from_run(ns.run, out, batches=ns.batches)
        else:
            out = Path(ns.out or "diagnose")
            args = resolve_configs(["--config", ns.config, *rest])
            source = _from_config(args, out, batches=ns.batches)
        written = write_plots(source, out)
    except ValueError as err:
        print(f"rnnkit diagnose: error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    print()
    print((out / "verdict.txt").read_text(encoding="utf-8"), end="")
    return 0
