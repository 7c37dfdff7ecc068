"""Robustness benchmark: kills, damaged files, fuzzed configs, and how fast the CLI says no.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/robustness.py [--faults 50] [--corruptions 200]
[--fuzz-examples 6] [--only faults,corrupt,fuzz,timing]``; merges its sections into
``benchmarks/results/robustness.json`` (so a section can be re-run alone) and prints a table.

1. **Fault campaign**: a tiny recipe runs once uninterrupted; then N copies are each SIGKILLed —
   a third at a random moment after the first checkpoint exists, a third the moment a temporary
   file of an atomic write appears after that (mid-write), a third at a random moment from launch
   (often before any checkpoint) — and resumed with ``--resume`` (or started again under the same
   name when no checkpoint existed yet). Counted: final weights bit-exact with the uninterrupted
   run, the artifact byte-identical, failed resumes, orphan temporary files left after the resume.
2. **Corruption campaign**: random single-byte changes and truncations of a finished run's
   artifact files and checkpoints, each loaded the way ``rnnkit`` loads it (`load_run`,
   `load_checkpoint`); a sample also through the real command (``generate`` / ``fit --resume``).
   Counted: detected with a one-line error naming the file, harmless (the bytes changed but what
   loads is identical, e.g. JSON whitespace), silently accepted (different content loaded: the
   goal is 0), tracebacks (any other exception: the goal is 0).
3. **Config fuzz**: Hypothesis draws values for every leaf field of every experiment, one field
   at a time, passed as a command-line string to ``rnnkit fit --dry-run`` (in-process: parse,
   check, build data, model and trainer). Counted: accepted, refused with a one-line error,
   tracebacks (the goal is 0).
4. **CLI start-up**: wall time of ``rnnkit --help``, ``rnnkit fit --help`` and a bad-config error
   as subprocesses, median of 5, interleaved with the same commands on the main checkout when it
   exists, with the machine's load average.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "robustness.json"
TINY = ROOT / "configs" / "tiny_charlm.yaml"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import write_json  # noqa: E402

FAULT_ARGS = [
    "--trainer.max_steps",
    "40",
    "--trainer.val_check_interval",
    "10",
    "--trainer.checkpoint_every_n_steps",
    "2",
    "--trainer.deterministic",
    "true",
    "--trainer.num_threads",
    "1",
    "--sample_chars",
    "0",
    "--run.plot",
    "false",
]


def _env(src: Path = ROOT / "src") -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    env.pop("RNNKIT_RUN_DIR", None)
    return env


def _fit_cmd(root: Path, name: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rnnkit.cli",
        "fit",
        "--config",
        str(TINY),
        "--run.root",
        str(root),
        "--run.name",
        name,
        *FAULT_ARGS,
        *extra,
    ]


def _orphans(run: Path) -> list[str]:
    return [str(p) for p in run.rglob("*.tmp")] if run.exists() else []


def _state(ckpt: Path) -> dict[str, Any]:
    from rnnkit.train.run import load_checkpoint

    return load_checkpoint(ckpt)["state_dict"]


def _same_state(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- 1. fault campaign ----
def fault_campaign(n: int, work: Path, seed: int = 0) -> dict[str, Any]:
    from rnnkit.integrity import sha256_file

    rng = random.Random(seed)
    # The reference run, timed from launch and from its first checkpoint: kills armed at the
    # first checkpoint draw their delay from the training window after it, so they land mid-run
    # on a quiet machine as on a busy one.
    t0 = time.perf_counter()
    ref = subprocess.Popen(
        _fit_cmd(work, "full"), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    first_ckpt = None
    while ref.poll() is None:
        if first_ckpt is None and (work / "full" / "checkpoints" / "last.ckpt").exists():
            first_ckpt = time.perf_counter()
        time.sleep(0.002)
    end = time.perf_counter()
    ref_s = end - t0
    window_s = end - (first_ckpt or t0)
    if ref.returncode != 0:
        raise RuntimeError((ref.stderr.read() if ref.stderr else b"")[-2000:].decode())
    ref_state = _state(work / "full" / "checkpoints" / "last.ckpt")
    ref_art = sha256_file(work / "full" / "artifact" / "model.safetensors")
    rows = []
    for i in range(n):
        name = f"cut{i}"
        run = work / name
        mode = ("random", "mid-write", "from-start")[i % 3]
        delay = rng.uniform(0.0, 0.9) * (window_s if mode != "from-start" else ref_s)
        proc = subprocess.Popen(
            _fit_cmd(work, name), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        start = time.perf_counter()
        armed = None  # when the clock of the kill starts: at launch, or at the first checkpoint
        while proc.poll() is None:
            now = time.perf_counter()
            if armed is None and (mode == "from-start" or (run / "checkpoints/last.ckpt").exists()):
                armed = now
            if armed is not None and now - armed >= delay:
                if mode != "mid-write" or _orphans(run):
                    break
            time.sleep(0.002)
        finished_before_kill = proc.poll() is not None
        killed_at = time.perf_counter() - start
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = _orphans(run)
        last = run / "checkpoints" / "last.ckpt"
        if last.is_file():
            how = "resumed"
            cmd = _fit_cmd(work, name, "--resume", str(run))
        else:  # killed before the first checkpoint: nothing to resume, start it again
            how = "restarted"
            cmd = _fit_cmd(work, name)
        again = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
        row: dict[str, Any] = {
            "mode": mode,
            "killed_after_s": round(killed_at, 2),
            "finished_before_kill": finished_before_kill,
            "orphans_after_kill": len(left),
            "how": how,
            "exit": again.returncode,
        }
        if again.returncode == 0:
            row["weights_bit_exact"] = _same_state(ref_state, _state(last))
            row["artifact_identical"] = (
                sha256_file(run / "artifact" / "model.safetensors") == ref_art
            )
        else:
            row["error"] = again.stderr.strip().splitlines()[-1:] or [""]
        row["orphans_after_resume"] = len(_orphans(run))
        rows.append(row)
        print(f"fault {i + 1}/{n}: {row}", flush=True)
        shutil.rmtree(run, ignore_errors=True)
    ok = [r for r in rows if r["exit"] == 0]
    return {
        "runs": n,
        "reference_wall_s": round(ref_s, 2),
        "reference_window_after_first_checkpoint_s": round(window_s, 2),
        "recipe": f"{TINY.name} {' '.join(FAULT_ARGS)}",
        "resumed": sum(r["how"] == "resumed" for r in rows),
        "restarted_no_checkpoint_yet": sum(r["how"] == "restarted" for r in rows),
        "killed_with_a_write_in_flight": sum(r["orphans_after_kill"] > 0 for r in rows),
        "failed": n - len(ok),
        "weights_bit_exact": sum(bool(r.get("weights_bit_exact")) for r in ok),
        "artifact_identical": sum(bool(r.get("artifact_identical")) for r in ok),
        "orphans_after_resume": sum(r["orphans_after_resume"] for r in rows),
        "rows": rows,
    }


# ---- 2. corruption campaign ----
TARGETS = (
    "artifact/model.safetensors",
    "artifact/model.json",
    "artifact/vocab.json",
    "checkpoints/last.ckpt",
    "checkpoints/best.ckpt",
    "checkpoints/last.ckpt.sha256.json",
)
# Files as a run written before digests were recorded has them: what the formats catch alone.
LEGACY = ("artifact/model.safetensors", "checkpoints/last.ckpt")


def _strip_digests(run: Path) -> None:
    meta_path = run / "artifact" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta.pop("sha256", None)
    meta.pop("meta_sha256", None)
    meta_path.write_text(json.dumps(meta, indent=2))
    for side in run.glob("checkpoints/*.sha256.json"):
        side.unlink()


def _load(run: Path, target: str) -> Any:
    """What rnnkit loads for ``target``, as comparable plain data."""
    from rnnkit.train.predict import load_run
    from rnnkit.train.run import load_checkpoint

    if target.endswith(".sha256.json"):
        target = target.removesuffix(".sha256.json")
    if target.startswith("artifact/"):
        loaded = load_run(run)
        skip = ("_folder", "sha256", "meta_sha256")
        meta = {k: v for k, v in loaded.meta.items() if k not in skip}
        vocab = loaded.vocab.tokens if loaded.vocab is not None else None
        return {"state": loaded.model.state_dict(), "meta": meta, "vocab": vocab}
    ckpt = load_checkpoint(run / target)
    return {
        "state": ckpt["state_dict"],
        "rest": repr({k: v for k, v in ckpt.items() if k != "state_dict"}),
    }


def _equal(a: Any, b: Any) -> bool:
    return _same_state(a["state"], b["state"]) and {k: v for k, v in a.items() if k != "state"} == {
        k: v for k, v in b.items() if k != "state"
    }


def _corrupt(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    if rng.random() < 0.5:
        i = rng.randrange(len(data))
        old = data[i]
        data[i] = rng.choice([b for b in range(256) if b != old])
        path.write_bytes(bytes(data))
        return f"byte {i} of {len(data)}: {old:#04x} -> {data[i]:#04x}"
    keep = rng.randrange(len(data))
    path.write_bytes(bytes(data[:keep]))
    return f"truncated to {keep} of {len(data)} bytes"


def corruption_campaign(
    n: int, work: Path, base: Path, cli_sample: int, seed: int = 1, legacy: bool = False
) -> dict[str, Any]:
    rng = random.Random(seed)
    targets = LEGACY if legacy else TARGETS
    pristine = {t: _load(base, t) for t in targets}
    counts = {"detected": 0, "harmless": 0, "silently_accepted": 0, "tracebacks": 0}
    rows = []
    for i in range(n):
        target = targets[i % len(targets)]
        run = work / f"c{i}"
        shutil.copytree(base, run)
        if legacy:
            _strip_digests(run)
        how = _corrupt(run / target, rng)
        try:
            loaded = _load(run, target)
        except ValueError as err:
            text = str(err)
            clear = "\n" not in text and "weights_only" not in text and Path(target).name in text
            kind = "detected" if clear else "tracebacks"
            detail = text
        except Exception as err:
            kind, detail = "tracebacks", f"{type(err).__name__}: {err}"[:300]
        else:
            kind = "harmless" if _equal(loaded, pristine[target]) else "silently_accepted"
            detail = ""
        counts[kind] += 1
        rows.append({"target": target, "corruption": how, "result": kind, "message": detail})
        if i >= n - cli_sample:  # the same damage through the real command
            rows[-1]["cli"] = _cli_check(run, target)
        shutil.rmtree(run, ignore_errors=True)
    cli = [r["cli"] for r in rows if "cli" in r]
    return {
        "corruptions": n,
        **counts,
        "by_target": {
            t: {k: sum(r["result"] == k and r["target"] == t for r in rows) for k in counts}
            for t in TARGETS
        },
        "cli_checked": len(cli),
        "cli_one_line_errors": sum(c["one_line_error"] for c in cli),
        "cli_tracebacks": sum(c["traceback"] for c in cli),
        "cli_weights_only_advice": sum(c["advice"] for c in cli),
        "rows": rows,
    }


def _cli_check(run: Path, target: str) -> dict[str, Any]:
    if target.startswith("artifact/"):
        cmd = [sys.executable, "-m", "rnnkit.cli", "generate", "--run", str(run), "--chars", "5"]
    else:
        cmd = [*_fit_cmd(run.parent, run.name), "--resume", str(run / target)]
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    err = out.stderr.strip()
    lines = [line for line in err.splitlines() if line.startswith("rnnkit: error:")]
    return {
        "exit": out.returncode,
        "one_line_error": out.returncode != 0 and len(lines) == 1 and "Traceback" not in err,
        "traceback": "Traceback" in err,
        "advice": "weights_only" in err,
    }


# ---- 3. config fuzz ----
def leaf_fields(cls: type, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted name, field type)`` of every leaf field of an experiment dataclass."""
    out = []
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            value = f.default_factory()  # type: ignore[misc]
            if dataclasses.is_dataclass(value):
                out += leaf_fields(type(value), name + ".")
                continue
        out.append((name, f.type))
    return out


def _strategy(type_text: str) -> Any:
    from hypothesis import strategies as st

    t = str(type_text)
    parts = []
    if "int" in t:
        parts += [st.integers(-(2**31), 0), st.integers(0, 600)]
    if "float" in t:
        parts += [st.floats(allow_nan=True, allow_infinity=True), st.floats(-2, 2)]
    if "bool" in t:
        parts += [st.sampled_from(["true", "false", "yes", "2", ""])]
    if "Literal" in t:
        import re

        parts += [st.sampled_from(re.findall(r"'([^']*)'", t))]
    if "tuple" in t:
        parts += [
            st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=3).map(json.dumps)
        ]
    if "str" in t or not parts:
        parts += [st.text(max_size=12), st.sampled_from(["auto", "cpu", "none", "null", "-1"])]
    if "None" in t:
        parts += [st.just("null")]
    return st.one_of(*parts).map(lambda v: v if isinstance(v, str) else json.dumps(v))


RECIPES = {
    "language_model": ["--config", str(TINY)],
    "classification": ["--config", str(ROOT / "configs" / "parity_classifier.yaml")],
    "tagging": ["--task", "tagging", "--data.num_samples", "200"],
    "forecasting": ["--task", "forecasting", "--data.num_samples", "200"],
    "seq2seq": ["--task", "seq2seq", "--data.num_samples", "200"],
}


def _dry_run(task: str, name: str, value: str, work: Path) -> tuple[str, str]:
    """``rnnkit fit --dry-run`` with one field set to ``value``: (outcome, detail)."""
    from rnnkit.cli import main

    args = ["fit", *RECIPES[task], "--run.root", str(work), f"--{name}={value}", "--dry-run"]
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    except SystemExit as stop:
        code = int(stop.code or 0) if not isinstance(stop.code, str) else 2
    except BaseException:  # the count of exactly these is the result
        return "tracebacks", traceback.format_exc(limit=-3)[-800:]
    text = err.getvalue().strip()
    if code == 0:
        return "accepted", ""
    if text.startswith("rnnkit: error:") and "\n" not in text:
        return "refused_one_line", text
    return "refused_unclear", text[-500:]


def _plain(fn: Any) -> Any:
    """``fn`` as a function of ``value`` alone (Hypothesis refuses functions with defaults)."""

    def run(value: str) -> None:
        fn(value)

    return run


def config_fuzz(examples: int, work: Path) -> dict[str, Any]:
    from hypothesis import HealthCheck, given, settings

    from rnnkit.train.specs import EXPERIMENTS

    counts = {"accepted": 0, "refused_one_line": 0, "refused_unclear": 0, "tracebacks": 0}
    failures: list[dict[str, str]] = []
    refusals: list[str] = []
    fields = 0
    for task, cls in EXPERIMENTS.items():
        for name, ftype in leaf_fields(cls):
            if name == "task":
                continue
            fields += 1

            def check(value: str, task: str = task, name: str = name) -> None:
                outcome, detail = _dry_run(task, name, value, work)
                counts[outcome] += 1
                if outcome in ("tracebacks", "refused_unclear"):
                    failures.append({"task": task, "field": name, "value": value, "error": detail})
                elif outcome == "refused_one_line" and len(refusals) < 400:
                    refusals.append(detail)

            settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )(given(value=_strategy(ftype))(_plain(check)))()
        print(f"fuzz {task}: {counts}", flush=True)
    sample = random.Random(0).sample(refusals, min(25, len(refusals)))
    return {
        "fields": fields,
        "examples_per_field": examples,
        **counts,
        "failures": failures[:40],
        "refusal_sample": sample,
    }


# ---- 4. CLI start-up ----
def cli_timing(repeats: int = 5) -> dict[str, Any]:
    commands = {
        "rnnkit --help": ["--help"],
        "rnnkit fit --help": ["fit", "--help"],
        "bad config error (max_steps 0)": [
            "fit",
            "--config",
            str(TINY),
            "--trainer.max_steps",
            "0",
        ],
    }
    trees = {"this branch": ROOT / "src"}
    main_src = Path("/work/main/src")
    if main_src.is_dir() and main_src.resolve() != (ROOT / "src").resolve():
        trees["main"] = main_src
    times: dict[str, dict[str, list[float]]] = {t: {c: [] for c in commands} for t in trees}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(repeats):  # interleaved: both trees see the same load
            for tree, src in trees.items():
                for label, args in commands.items():
                    start = time.perf_counter()
                    extra = ["--run.root", scratch] if label.startswith("bad") else []
                    cmd = [sys.executable, "-m", "rnnkit.cli", *args, *extra]
                    subprocess.run(cmd, env=_env(src), capture_output=True, cwd=scratch)
                    times[tree][label].append(time.perf_counter() - start)
    return {
        "repeats": repeats,
        "median_s": {
            t: {c: round(statistics.median(v), 3) for c, v in d.items()} for t, d in times.items()
        },
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=50)
    parser.add_argument("--corruptions", type=int, default=200)
    parser.add_argument(
        "--cli-sample", type=int, default=10, help="corruptions also run via the CLI"
    )
    parser.add_argument(
        "--fuzz-examples", type=int, default=6, help="Hypothesis examples per field"
    )
    parser.add_argument("--only", default="faults,corrupt,fuzz,timing")
    parser.add_argument("--out", type=Path, default=RESULTS)
    ns = parser.parse_args()
    out = ns.out
    only = set(ns.only.split(","))
    results: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    results["machine"] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "timing" in only:
            results["cli_startup"] = cli_timing()
            write_json(out, results)
        if "faults" in only or "corrupt" in only:
            start = time.perf_counter()
            results_faults = fault_campaign(ns.faults if "faults" in only else 0, work / "faults")
            if "faults" in only:
                results["faults"] = {**results_faults, "wall_s": round(time.perf_counter() - start)}
                write_json(out, results)
        if "corrupt" in only:
            start = time.perf_counter()
            base = work / "faults" / "full"
            corrupt = corruption_campaign(ns.corruptions, work / "corrupt", base, ns.cli_sample)
            results["corruption"] = {**corrupt, "wall_s": round(time.perf_counter() - start)}
            legacy = corruption_campaign(
                ns.corruptions // 4, work / "legacy", base, 0, seed=2, legacy=True
            )
            results["corruption_without_digests"] = {
                "note": "the same damage to files without recorded digests (runs written before "
                "this change): what safetensors and torch's zip reader catch on their own",
                **{k: v for k, v in legacy.items() if k != "rows"},
                "examples": legacy["rows"][:10],
            }
            write_json(out, results)
        if "fuzz" in only:
            start = time.perf_counter()
            (work / "fuzz").mkdir()
            fuzz = config_fuzz(ns.fuzz_examples, work / "fuzz")
            results["config_fuzz"] = {**fuzz, "wall_s": round(time.perf_counter() - start)}
            write_json(out, results)
    print(table(results))


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table (for the docs)."""
    lines = ["| campaign | result |", "|---|---|"]
    f = results.get("faults")
    if f:
        lines.append(
            f"| SIGKILL + resume ({f['runs']} runs: {f['resumed']} resumed, "
            f"{f['restarted_no_checkpoint_yet']} killed before a checkpoint; "
            f"{f['killed_with_a_write_in_flight']} mid-write) | "
            f"weights bit-exact {f['weights_bit_exact']}/{f['runs']}, artifact identical "
            f"{f['artifact_identical']}/{f['runs']}, failed {f['failed']}, orphans left "
            f"{f['orphans_after_resume']} |"
        )
    c = results.get("corruption")
    if c:
        lines.append(
            f"| {c['corruptions']} byte flips / truncations | detected {c['detected']}, harmless "
            f"{c['harmless']}, silently accepted {c['silently_accepted']}, tracebacks "
            f"{c['tracebacks']}; via CLI {c['cli_one_line_errors']}/{c['cli_checked']} one-line |"
        )
    z = results.get("config_fuzz")
    if z:
        lines.append(
            f"| config fuzz ({z['fields']} fields x {z['examples_per_field']}"
            f"{', partial' if z.get('partial') else ''}) | accepted "
            f"{z['accepted']}, refused in one line {z['refused_one_line']}, unclear "
            f"{z['refused_unclear']}, tracebacks {z['tracebacks']} |"
        )
    t = results.get("cli_startup")
    if t:
        for tree, d in t["median_s"].items():
            cells = ", ".join(f"{k} {v:.2f} s" for k, v in d.items())
            lines.append(f"| CLI start-up, {tree} (median of {t['repeats']}) | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
