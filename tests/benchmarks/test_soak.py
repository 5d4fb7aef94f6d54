"""Smoke test of benchmarks/soak.py (--quick: a small box case, 2 faults, as a subprocess)."""

import json
import subprocess
import sys

import pytest
from helpers import REPO


@pytest.mark.serial
def test_soak_quick(tmp_path):
    script = REPO / "benchmarks" / "soak.py"
    cmd = ["timeout", "90", sys.executable, str(script), "--quick", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "soak.json").read_text())
    assert doc["passed"], doc["problems"]
    assert doc["faults_injected"] == 2
    assert set(doc["faults_by_signal"]) == {"SIGKILL", "SIGTERM"}
    assert doc["resumes"] >= 2
    assert doc["final_status"] == "complete"
    assert doc["data_lost"] == 0
    assert doc["final_qoi_difference"]["max_rel"] <= 1e-6
