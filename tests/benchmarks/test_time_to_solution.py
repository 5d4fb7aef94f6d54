"""Smoke test of benchmarks/time_to_solution.py (quick mode, run as a subprocess)."""

import json
import subprocess
import sys

import pytest
from helpers import REPO


@pytest.mark.serial
def test_time_to_solution_quick(tmp_path):
    script = REPO / "benchmarks" / "time_to_solution.py"
    cmd = ["timeout", "120", sys.executable, str(script), "--quick", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "time_to_solution.json").read_text())
    assert (tmp_path / "time_to_solution.png").stat().st_size > 0
    assert doc["targets"] == [1e-2, 1e-3]
    rows = doc["summary"]
    assert {r["target"] for r in rows} == {1e-2, 1e-3}
    for r in rows:
        assert r["fe_cost_s"] > 0 and r["voxels_ball"] > 0 and r["voxel_steady_dt_max_s"] > 0
    # P1 on graded meshes converges at the optimal L2 rate 2 (in h ~ dofs^(-1/3))
    assert abs(doc["fe_rates"]["P1 graded"][-1] - 2.0) < 0.3
    # the voxel values converge at a positive rate; the fit is stored
    assert doc["voxel"]["fits"]["node"]["p"] > 0.8
