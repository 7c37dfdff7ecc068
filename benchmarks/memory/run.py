"""Long-range memory benchmark: which cells learn dependencies T steps long, and how fast.

    python benchmarks/memory/run.py --quick --budget-minutes 25     # reduced grid (2 CPU cores)
    python benchmarks/memory/run.py --budget-minutes 600            # the full grid
    python benchmarks/memory/report.py                              # docs/long-range-memory.md

Each job trains one cell on one task with Adam (fresh samples every step for adding/copy),
evaluates every ``eval_every`` steps on a fixed held-out set, and stops at the first evaluation
that meets the task's "solved" criterion, at ``max_steps``, at its time cap, or on a non-finite
loss. Jobs run in priority order on ``--workers`` processes; jobs not started before the budget
ends are listed under ``not_run``. Results: ``benchmarks/results/memory.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.memory.tasks import (
    ADDING_BASELINE,
    COPY_SYMBOLS,
    adding_batch,
    copy_baseline,
    copy_batch,
    load_digits_sequences,
)
from rnnkit import Recurrent
from rnnkit.diagnostics import gradient_flow

OUT = Path(__file__).resolve().parents[1] / "results" / "memory.json"

# label -> (Recurrent cell name, options)
CELLS: dict[str, tuple[str, dict[str, Any]]] = {
    "rnn-tanh": ("rnn", {"nonlinearity": "tanh"}),
    "irnn": ("rnn", {"nonlinearity": "relu", "recurrent_init": "identity"}),
    "lstm": ("lstm", {}),
    "ln-lstm": ("lstm", {"layer_norm": True}),
    "gru": ("gru", {}),
    "mingru": ("mingru", {}),
    "minlstm": ("minlstm", {}),
}
METRICS = {"adding": "mse", "copy": "xent", "digits": "accuracy", "pdigits": "accuracy"}
ADDING_SOLVED = 0.01  # MSE; ~6% of the baseline's
COPY_SOLVED_FRACTION = 0.1  # cross-entropy below 10% of the memoryless baseline
DIGITS_SOLVED = 0.9  # test accuracy


@dataclass(frozen=True)
class Job:
    task: str  # adding | copy | digits | pdigits
    T: int  # sequence length (adding, digits) or delay (copy)
    cell: str  # a key of CELLS
    clip: float = 1.0  # gradient-norm clipping; 0 = none
    init: str = "orthogonal"  # recurrent init: orthogonal | uniform (torch.nn's default)
    seed: int = 0
    hidden: int = 64
    batch: int = 64
    lr: float = 1e-3
    max_steps: int = 3000
    eval_every: int = 100
    time_cap_s: float = 300.0
    flow_every: int = 0  # record the gradient-flow profile every N steps (0 = never)


def _recurrent_options(job: Job) -> dict[str, Any]:
    name, opts = CELLS[job.cell]
    opts = dict(opts)
    if job.init != "orthogonal" and name != "mingru" and name != "minlstm":
        opts["recurrent_init"] = job.init
    # On CPU the reference loop beats the parallel scan at these sizes (measured: ~4x at T=200,
    # B=64, H=64); the numbers are the same, only the path differs.
    if name in ("mingru", "minlstm") and not torch.cuda.is_available():
        opts["force_loop"] = True
    return opts


class Net(nn.Module):
    """Recurrent layer + linear head; ``per_step`` heads read every step (copy), else the last."""

    def __init__(self, job: Job, input_size: int, outputs: int, *, per_step: bool) -> None:
        super().__init__()
        name, _ = CELLS[job.cell]
        self.rnn = Recurrent(name, input_size, job.hidden, **_recurrent_options(job))
        self.head = nn.Linear(job.hidden, outputs)
        self.per_step = per_step

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.rnn(x)  # (T, B, H)
        return self.head(out if self.per_step else out[-1])


class Task:
    """Sampling, loss and held-out metric of one job's task."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.gen = torch.Generator().manual_seed(job.seed)
        val_gen = torch.Generator().manual_seed(10_000 + job.seed)
        if job.task == "adding":
            self.input_size, self.outputs, self.per_step = 2, 1, False
            self.val = adding_batch(job.T, 1000, val_gen)
            self.baseline = ADDING_BASELINE
        elif job.task == "copy":
            self.input_size, self.outputs, self.per_step = COPY_SYMBOLS + 2, COPY_SYMBOLS + 1, True
            self.val = copy_batch(job.T, 500, val_gen)
            self.baseline = copy_baseline(job.T)
        else:
            d = load_digits_sequences(permuted=job.task == "pdigits", seed=job.seed)
            self.digits = d
            self.input_size, self.outputs, self.per_step = 1, 10, False
            self.val = (d.x_test, d.y_test)
            self.baseline = d.baseline

    def sample(self) -> tuple[Tensor, Tensor]:
        if self.job.task == "adding":
            return adding_batch(self.job.T, self.job.batch, self.gen)
        if self.job.task == "copy":
            return copy_batch(self.job.T, self.job.batch, self.gen)
        idx = torch.randint(0, self.digits.y_train.shape[0], (self.job.batch,), generator=self.gen)
        return self.digits.x_train[:, idx], self.digits.y_train[idx]

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        if self.job.task == "adding":
            return F.mse_loss(out, y)
        if self.job.task == "copy":
            return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        return F.cross_entropy(out, y)

    def evaluate(self, model: Net) -> dict[str, float]:
        x, y = self.val
        model.eval()
        with torch.no_grad():
            out = model(x)
        model.train()
        if self.job.task == "adding":
            return {"value": float(F.mse_loss(out, y))}
        if self.job.task == "copy":
            xent = float(F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)))
            recalled = out[-10:].argmax(-1) == y[-10:]
            return {"value": xent, "recall_accuracy": float(recalled.float().mean())}
        return {"value": float((out.argmax(-1) == y).float().mean())}

    def solved(self, value: float) -> bool:
        if self.job.task == "adding":
            return value < ADDING_SOLVED
        if self.job.task == "copy":
            return value < COPY_SOLVED_FRACTION * self.baseline
        return value >= DIGITS_SOLVED


def run_job(job: Job, threads: int = 1) -> dict[str, Any]:
    torch.set_num_threads(threads)
    torch.manual_seed(job.seed)
    task = Task(job)
    model = Net(job, task.input_size, task.outputs, per_step=task.per_step)
    opt = torch.optim.Adam(model.parameters(), lr=job.lr)
    probe = task.sample() if job.flow_every else None
    flow: list[list[float]] = []
    flow_steps: list[int] = []
    history: list[list[float]] = []
    start = time.perf_counter()
    stopped, step, solved, best = "max_steps", 0, False, None
    extra: dict[str, float] = {}
    for step in range(1, job.max_steps + 1):
        if probe is not None and (step - 1) % job.flow_every == 0:
            report = gradient_flow(
                model, lambda p=probe: task.loss(model(p[0]), p[1]), jacobian=False
            )
            norms = report.hidden_grad_norms["rnn.layer0"]
            flow.append([round(math.log10(max(float(n), 1e-30)), 3) for n in norms])
            flow_steps.append(step - 1)
        x, y = task.sample()
        loss = task.loss(model(x), y)
        if not math.isfinite(float(loss.detach())):
            stopped = "diverged"
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if job.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), job.clip)
        opt.step()
        if step % job.eval_every == 0:
            ev = task.evaluate(model)
            best = ev["value"]
            extra = {k: v for k, v in ev.items() if k != "value"}
            history.append([step, round(best, 5)])
            if task.solved(best):
                solved, stopped = True, "solved"
                break
        if time.perf_counter() - start > job.time_cap_s:
            stopped = "time_cap"
            break
    if best is None or stopped in ("time_cap", "diverged"):
        ev = task.evaluate(model)
        best = ev["value"] if math.isfinite(ev["value"]) else float("nan")
        extra = {k: v for k, v in ev.items() if k != "value"}
        solved = solved or (math.isfinite(best) and task.solved(best))
    wall = time.perf_counter() - start
    record: dict[str, Any] = {
        "task": job.task,
        "T": job.T,
        "cell": job.cell,
        "metric": METRICS[job.task],
        "value": round(best, 5) if math.isfinite(best) else None,
        "baseline_value": round(task.baseline, 5),
        "solved": bool(solved),
        "steps": step,
        "wall_s": round(wall, 1),
        "stopped": stopped,
        "clip": job.clip,
        "init": _recorded_init(job),
        "seed": job.seed,
        "lr": job.lr,
        "hidden": job.hidden,
        "batch": job.batch,
        "max_steps": job.max_steps,
        "path": model.rnn.last_path,
        "history": history,
        **{k: round(v, 5) for k, v in extra.items()},
    }
    if flow:
        record["grad_flow"] = {"steps": flow_steps, "log10_norm": flow}
    return record


def _grid(quick: bool) -> list[Job]:
    """Jobs in priority order: what the doc must show first."""
    gated = ["lstm", "gru", "minlstm", "mingru"]
    if quick:
        jobs = [
            Job("adding", 100, "rnn-tanh", flow_every=100, max_steps=6000, time_cap_s=240),
            Job("adding", 100, "lstm", flow_every=100, max_steps=6000, time_cap_s=240),
        ]
        for T in (50, 100, 200):
            for cell in ["rnn-tanh", "irnn", *gated]:
                if not (T == 100 and cell in ("rnn-tanh", "lstm")):
                    jobs.append(Job("adding", T, cell, max_steps=6000, time_cap_s=240))
        jobs += [
            Job("adding", 500, c, max_steps=4000, time_cap_s=300)
            for c in ("rnn-tanh", "lstm", "gru")
        ]
        for task in ("digits", "pdigits"):
            jobs += [
                Job(task, 64, c, max_steps=4000, time_cap_s=150)
                for c in ("rnn-tanh", "lstm", "gru", "minlstm")
            ]
        jobs += [
            Job("copy", 50, c, max_steps=6000, time_cap_s=240)
            for c in ("rnn-tanh", "lstm", "gru", "mingru")
        ]
        jobs += [
            Job("adding", 100, "rnn-tanh", clip=0.0, max_steps=4000, time_cap_s=150),
            Job("adding", 100, "lstm", clip=0.0, max_steps=6000, time_cap_s=200),
            Job("adding", 100, "rnn-tanh", init="uniform", max_steps=4000, time_cap_s=150),
            Job("adding", 100, "lstm", init="uniform", max_steps=6000, time_cap_s=200),
            Job("adding", 50, "ln-lstm", max_steps=4000, time_cap_s=200),
            Job("adding", 1000, "lstm", max_steps=3000, time_cap_s=300),
            Job("adding", 1000, "rnn-tanh", max_steps=3000, time_cap_s=300),
        ]
        return jobs
    cells = list(CELLS)
    jobs = [
        Job("adding", 200, "rnn-tanh", flow_every=100, max_steps=10_000),
        Job("adding", 200, "lstm", flow_every=100, max_steps=10_000),
    ]
    for T in (50, 100, 200, 500, 1000):
        jobs += [Job("adding", T, c, max_steps=10_000, time_cap_s=3600) for c in cells]
    for delay in (50, 100, 200, 500):
        jobs += [Job("copy", delay, c, max_steps=10_000, time_cap_s=3600) for c in cells]
    for task in ("digits", "pdigits"):
        jobs += [Job(task, 64, c, max_steps=5000, time_cap_s=1800) for c in cells]
    for T in (100, 200):
        for c in ("rnn-tanh", "irnn", "lstm", "gru"):
            jobs.append(Job("adding", T, c, clip=0.0, max_steps=10_000, time_cap_s=3600))
        for c in ("rnn-tanh", "lstm", "gru"):
            jobs.append(Job("adding", T, c, init="uniform", max_steps=10_000, time_cap_s=3600))
    return jobs


def _worker(args: tuple[Job, float, int]) -> dict[str, Any] | None:
    job, deadline, threads = args
    left = deadline - time.time()
    if left < 10:
        return {"not_run": asdict(job)}
    return run_job(replace(job, time_cap_s=min(job.time_cap_s, left)), threads)


def _recorded_init(job: Job) -> str:
    """The recurrent init a record names: IRNN is the identity init whatever the job says."""
    return "identity" if job.cell == "irnn" else job.init


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the reduced grid (2 CPU cores)")
    p.add_argument("--budget-minutes", type=float, default=None, help="stop starting jobs after")
    p.add_argument("--workers", type=int, default=2, help="parallel processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--only", default=None, help="comma-separated tasks to run")
    p.add_argument("--out", default=str(OUT))
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the records already in --out and run only the jobs they lack",
    )
    ns = p.parse_args(argv)
    jobs = _grid(ns.quick)
    if ns.only:
        keep = set(ns.only.split(","))
        jobs = [j for j in jobs if j.task in keep]
    records: list[dict[str, Any]] = []
    previous: list[dict[str, Any]] = []
    if ns.resume and Path(ns.out).is_file():
        old = json.loads(Path(ns.out).read_text())
        records = old["records"]
        previous = [*old["meta"].pop("previous", []), old["meta"]]
        done = {(r["task"], r["T"], r["cell"], r["clip"], r["init"], r["seed"]) for r in records}
        jobs = [
            j for j in jobs if (j.task, j.T, j.cell, j.clip, _recorded_init(j), j.seed) not in done
        ]
    budget = ns.budget_minutes if ns.budget_minutes is not None else (25 if ns.quick else 600)
    start = time.time()
    deadline = start + 60 * budget
    not_run: list[dict[str, Any]] = []
    meta = {
        "command": "python benchmarks/memory/run.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "grid": "quick" if ns.quick else "full",
        "budget_minutes": budget,
        "previous": previous,
        "workers": ns.workers,
        "threads_per_worker": ns.threads,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()}",
        "solved_criteria": {
            "adding": f"val MSE < {ADDING_SOLVED}",
            "copy": f"val cross-entropy < {COPY_SOLVED_FRACTION} x memoryless baseline",
            "digits": f"test accuracy >= {DIGITS_SOLVED}",
        },
    }
    out = Path(ns.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        meta["elapsed_minutes"] = round((time.time() - start) / 60, 1)
        data = {"meta": meta, "records": records, "not_run": not_run}
        out.write_text(json.dumps(data, indent=1) + "\n")

    ctx = mp.get_context("spawn")
    with ctx.Pool(ns.workers, maxtasksperchild=1) as pool:
        for result in pool.imap_unordered(_worker, [(j, deadline, ns.threads) for j in jobs]):
            if result is None:
                continue
            if "not_run" in result:
                not_run.append(result["not_run"])
            else:
                records.append(result)
                r = result
                print(
                    f"{r['task']:8} T={r['T']:<5} {r['cell']:9} clip={r['clip']:<4} "
                    f"{r['init']:10} {r['metric']}={r['value']} (baseline {r['baseline_value']}) "
                    f"solved={r['solved']} steps={r['steps']} {r['wall_s']}s [{r['stopped']}]",
                    flush=True,
                )
            save()
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
