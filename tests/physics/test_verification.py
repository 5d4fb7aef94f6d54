"""The verification suite (quick subset): MMS rates, invariants and exact solutions.

Runs serially and under ``mpiexec -n 2``; the 1-vs-3-rank comparison launches mpiexec itself.
"""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import box_case

from tumorpde.cli import main
from tumorpde.config import config_from_dict
from tumorpde.fem.domain import load_domain
from tumorpde.fem.forms import build_forms
from tumorpde.fem.state import create_state
from tumorpde.model import build_model
from tumorpde.studies import verification as verify

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def rows():
    from mpi4py import MPI

    result = verify.run_cases(MPI.COMM_WORLD, verify.QUICK)
    return {(r.case, r.quantity): r for r in result}


def _case_rows(rows, case):
    out = [r for (c, _), r in rows.items() if c == case]
    assert out, case
    return out


@pytest.mark.parametrize("case", verify.QUICK)
def test_every_quick_case_passes(rows, case):
    failed = [
        (r.quantity, r.expected, r.measured, r.tolerance)
        for r in _case_rows(rows, case)
        if not r.passed
    ]
    assert not failed, failed


@pytest.mark.parametrize("case", ["mms_box_space", "mms_ball_space"])
def test_p1_spatial_rates(rows, case):
    for species in ("tumor", "ligand", "receptor", "complex"):
        l2 = rows[(case, f"{species} L2 rate")]
        h1 = rows[(case, f"{species} H1 rate")]
        assert abs(l2.measured - 2.0) < 0.15, (species, l2.data)
        assert abs(h1.measured - 1.0) < 0.15, (species, h1.data)
        assert all(a > b for a, b in itertools.pairwise(l2.data["error"])), l2.data


def test_backward_euler_is_first_order(rows):
    for species in ("tumor", "ligand", "receptor", "complex"):
        r = rows[("mms_box_time", f"{species} BE rate (L2, successive dt)")]
        assert abs(r.measured - 1.0) < 0.15, (species, r.data)


def test_conservation_and_positivity(rows):
    for r in _case_rows(rows, "conservation"):
        assert 0.0 <= r.measured < 1e-10, (r.quantity, r.measured)
    for r in _case_rows(rows, "positivity"):
        if r.quantity.startswith("min"):
            assert r.measured >= -1e-12, r.quantity
        else:
            assert r.measured <= 1.0 + 1e-12, r.quantity


def test_exact_solutions(rows):
    for r in _case_rows(rows, "well_mixed"):
        assert r.measured == pytest.approx(r.expected, rel=1e-8), r.quantity
    for case, err in (("steady_slab", 2e-3), ("steady_sphere", 2e-2), ("krogh", 5e-3)):
        rate, error = _case_rows(rows, case)
        assert abs(rate.measured - 2.0) < 0.15, (case, rate.data)
        assert error.measured < err, (case, error.measured)
    wave = rows[("travelling_wave", "L2 rate, dt ~ h^2 (AZ wave)")]
    assert abs(wave.measured - 2.0) < 0.15, wave.data


def test_partition_invariance_in_this_run(rows, comm):
    (r,) = _case_rows(rows, "partition")
    assert r.data["ranks"] == comm.size
    assert r.measured < 1e-9


def test_build_forms_without_forcing_is_unchanged(comm):
    cfg = config_from_dict(box_case(mesh={"kind": "box", "size": [4.0] * 3, "cells": [2] * 3}))
    model = build_model(cfg)
    state = create_state(model, load_domain(cfg.mesh, comm))
    plain = build_forms(model, state, 0.5)
    empty = build_forms(model, state, 0.5, forcing={})
    sig = [f.signature() for f in plain.residuals]
    assert sig == [f.signature() for f in empty.residuals]
    assert "t" in plain.constants
    forced = build_forms(model, state, 0.5, forcing=lambda t: {"EGF": 2.0 * t})
    assert forced.residuals[1].signature() != sig[1]
    assert [f.signature() for i, f in enumerate(forced.residuals) if i != 1] == sig[:1] + sig[2:]
    with pytest.raises(KeyError, match="unknown species"):
        build_forms(model, state, 0.5, forcing={"drug": 1.0})


def test_cli_verify_json_and_exit_code(shared_tmp, comm, monkeypatch, capsys):
    out = shared_tmp / "v.json"
    assert main(["verify", "--case", "well_mixed", "--json", str(out)]) == 0
    if comm.rank == 0:
        text = capsys.readouterr().out
        assert "well_mixed" in text and "PASS" in text and "5/5 passed" in text
        doc = json.loads(out.read_text())
        assert doc["meta"]["ranks"] == comm.size
        assert {"case", "quantity", "expected", "measured", "tolerance", "passed"} <= set(
            doc["rows"][0]
        )
    monkeypatch.setitem(
        verify.CASES, "always_fails", lambda c, full: [verify._row("x", "y", 0.0, 1.0, 0.1)]
    )
    assert main(["verify", "--case", "always_fails"]) == 1
    assert main(["verify", "--case", "no_such_case"]) == 2


@pytest.mark.serial
def test_one_two_three_ranks_agree(shared_tmp, rows):
    serial = rows[("partition", "max rel. QoI difference, 1 ranks vs 1")].data["qois"]
    env = {**os.environ, "PYVISTA_OFF_SCREEN": "true"}
    for n in (2, 3):
        path = shared_tmp / f"p{n}.json"
        cmd = [
            "timeout",
            "300",
            str(BIN / "mpiexec"),
            "-n",
            str(n),
            str(BIN / "tumorpde"),
            "verify",
            "--case",
            "partition",
            "--json",
            str(path),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        (row,) = json.loads(path.read_text())["rows"]
        assert row["passed"] and row["data"]["ranks"] == n
        for a, b in zip(row["data"]["qois"], serial, strict=True):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-13)
