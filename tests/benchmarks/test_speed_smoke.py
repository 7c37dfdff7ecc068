"""Smoke test of benchmarks/speed.py and report.py: a ``--quick`` run writes records of the agreed
schema, with ratios that follow from the figures beside them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEED, REPORT = ROOT / "benchmarks" / "speed.py", ROOT / "benchmarks" / "report.py"

COMMON = {
    "case": str,
    "cell": str,
    "variant": str,
    "mode": str,
    "path": str,
    "tokens_per_s": float,
    "reference": str,
    "reference_tokens_per_s": float,
    "ratio": float,
    "device": str,
    "torch": str,
    "peak_mem_method": str,
}
SEQUENCE = {"peak_mem_mb": float, "reference_peak_mem_mb": float}
STEP = {"latency_us": float, "reference_latency_us": float}


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("speed") / "speed-cpu.json"
    cmd = [sys.executable, str(SPEED), "--quick", "--device", "cpu", "--threads", "1"]
    subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True, timeout=120)
    data = json.loads(out.read_text())
    assert isinstance(data, list)
    return data


def test_every_cell_variant_and_mode_is_there(records: list[dict]) -> None:
    seen = {(r["cell"], r["variant"], r["mode"], r["reference"]) for r in records}
    for cell, ref in (("rnn", "RNN"), ("lstm", "LSTM"), ("gru", "GRU"), ("mingru", "GRU")):
        for mode in ("fwd", "fwdbwd"):
            assert (cell, "plain", mode, f"torch.nn.{ref}") in seen
    for variant in ("layernorm", "recurrent_dropout", "recurrent_dropout_shared", "zoneout"):
        assert ("lstm", variant, "fwdbwd", "torch.nn.LSTM") in seen
    for variant in ("layernorm", "recurrent_dropout", "zoneout"):
        assert ("gru", variant, "fwdbwd", "torch.nn.GRU") in seen
    assert ("minlstm", "plain", "fwdbwd", "torch.nn.GRU") in seen
    assert ("minlstm", "plain", "fwdbwd", "torch.nn.LSTM") in seen
    assert ("lstm", "plain", "step", "torch.nn.LSTMCell") in seen


def test_schema_and_ratios(records: list[dict]) -> None:
    for r in records:
        extra = STEP if r["mode"] == "step" else SEQUENCE
        for field, kind in {**COMMON, **extra}.items():
            assert isinstance(r[field], kind), (r["case"], field, r[field])
        assert r["mode"] in ("fwd", "fwdbwd", "step")
        assert r["device"] == "cpu"
        assert r["case"].startswith(f"{r['cell']}-B")
        assert r["reference"].startswith("torch.nn.")
        assert r["tokens_per_s"] > 0 and r["reference_tokens_per_s"] > 0 and r["ratio"] > 0
        # The ratio is the median of paired ratios, inside their spread.
        sp = r["ratio_spread"]
        assert sp["min"] <= sp["p25"] <= sp["median"] <= sp["p75"] <= sp["max"]
        assert math.isclose(r["ratio"], sp["median"], rel_tol=1e-12), r
        assert r["threads"] == 1 and r["load_avg_1min"] >= 0
        assert r["load_warning"] == (r["load_avg_1min"] > 0.5)
        assert r["gemm_ceiling_gflops"] > 0
        if r["mode"] != "step":
            assert r["peak_mem_mb"] >= 0 and r["reference_peak_mem_mb"] >= 0
            assert r["gflops"] > 0 and r["reference_gflops"] > 0
            ceiling = r["gemm_ceiling_gflops"]
            assert r["valid"] == (r["gflops"] <= ceiling and r["reference_gflops"] <= ceiling)
        if r["target"] is not None:
            assert r["met"] == (r["ratio"] >= r["target"])


def test_path_is_the_one_the_layer_reports(records: list[dict]) -> None:
    paths = {(r["cell"], r["variant"]): r["path"] for r in records if r["mode"] == "fwdbwd"}
    assert paths[("lstm", "plain")].startswith("native:lstm")
    assert paths[("gru", "plain")].startswith("native:gru")
    assert paths[("lstm", "recurrent_dropout_shared")].startswith("native:lstm")
    assert paths[("mingru", "plain")].startswith("scan:cpp")
    assert paths[("lstm", "zoneout")].startswith("fused:lstm")
    assert paths[("lstm", "layernorm")].startswith("fused:lstm")
    assert paths[("gru", "zoneout")].startswith("fused:gru")


def test_report_renders_the_records(records: list[dict], tmp_path: Path) -> None:
    data = tmp_path / "speed-cpu.json"
    data.write_text(json.dumps(records))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- speed:begin -->\nold table\n<!-- speed:end -->\noutro\n")
    done = subprocess.run(
        [sys.executable, str(REPORT), str(data), "--readme", str(readme)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = readme.read_text()
    assert "old table" not in text and text.startswith("intro\n<!-- speed:begin -->\n")
    assert text.endswith("<!-- speed:end -->\noutro\n")
    assert "lstm-B4-T16-I8-H16-L1" in text and "LSTMCell" in text and "GEMM ceiling" in text
    assert "Targets met at 1 thread(s)" in text
    assert done.stdout.strip() in text
