"""Checkpoint/restart: a resumed run continues exactly as the uninterrupted one.

The case exercises every piece of state a resume must carry: variable-step BDF2 with error
control (step-size history, next step size), dose breakpoints (schedule position, history reset),
drug exposure AUCs and the solver's Jacobian-reuse bookkeeping. Checkpoints are written and read
on the same and on other numbers of ranks (mesh-file node order).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, split_box

from tumorpde.config import config_from_dict
from tumorpde.simulation import Simulation
from tumorpde.simulation.checkpoint import CheckpointError, find_at, latest, list_checkpoints


def _case(t_end: str = "6 day") -> dict:
    return {
        "name": "restart_test",
        "mesh": split_box((4.0, 2.0, 2.0), (6, 3, 3), "grey", "white", 2.0),
        "organ": None,
        "time": {
            "t_end": t_end,
            "dt": "6 h",
            "output_every": "2 day",
            "scheme": "bdf2",
            "adaptive": True,
            "tolerance": 1e-3,
        },
        "tumor": {
            "proliferation_rate": "0.2 1/day",
            "motility": "0.3 mm^2/day",
            "initial": {"kind": "gaussian", "center": [1.5, 1.0, 1.0], "radius": 0.8},
        },
        "pathways": {"HER2": {}, "EGFR": {}},
        "therapy": {
            "treatments": [
                {"drug": "trastuzumab", "regimen": "q3w"},
                {"drug": "lapatinib", "regimen": "daily_1250"},
            ]
        },
        "output": {"picture": False},
    }


def _run(sim: Simulation) -> dict[float, dict[str, float]]:
    rows = {}
    for info in sim.steps():
        rows[info.step] = {"t": info.t, "dt": info.dt, **sim.qoi_values()}
    return rows


def _max_rel(a: dict[str, float], b: dict[str, float]) -> tuple[float, str]:
    """Largest relative difference (balance residuals, round-off by construction: absolute)."""
    worst, where = 0.0, ""
    for k, va in a.items():
        vb = b[k]
        if k.startswith("balance_"):
            d = abs(va - vb) * 1e-2  # both ~1e-14: a difference of 1e-12 counts as 1e-14
        else:
            d = abs(va - vb) / max(abs(va), abs(vb), 1e-300) if va != vb else 0.0
        if d > worst:
            worst, where = d, k
    return worst, where


def test_resume_equals_the_uninterrupted_run(comm, shared_tmp):
    cfg = config_from_dict(_case())
    with Simulation(cfg, comm) as sim:
        sim.enable_checkpoints(shared_tmp / "ck", every_steps=5, keep=10)
        reference = _run(sim)
    steps = sorted(reference)
    assert len(steps) > 15
    ckpts = list_checkpoints(shared_tmp / "ck")
    assert len(ckpts) >= 4
    picks = [ckpts[0], ckpts[len(ckpts) // 2], ckpts[-2]]
    for k, path in enumerate(picks):  # resume after several different steps
        with Simulation(cfg, comm) as sim:
            # the resumed run checkpoints on the same schedule, as `run --resume` does
            sim.enable_checkpoints(shared_tmp / f"ck{k}", every_steps=5, keep=10)
            meta = sim.resume_from(path)
            resumed = _run(sim)
        first = meta["step"] + 1
        assert sorted(resumed) == [s for s in steps if s >= first]  # same step sequence
        for s in resumed:
            worst, where = _max_rel(reference[s], resumed[s])
            # 1e-9, not bit-identical: since backward-Euler steps take the exact step mean of the
            # plasma curve, round-off differences (~3e-16) appear a few BDF2 steps after resuming
            # and the step-size controller grows them to ~1e-10 in dt over this run (a rounding
            # path not yet found; tracked in the therapy-science issue)
            assert worst <= 1e-9, f"step {s} after resuming at {meta['step']}: {where} {worst}"


def test_checkpoint_at_output_times_and_latest(comm, shared_tmp):
    cfg = config_from_dict(_case("4 day"))
    with Simulation(cfg, comm) as sim:
        sim.enable_checkpoints(shared_tmp / "ck")
        _run(sim)
    p = find_at(shared_tmp / "ck", 48.0, comm)
    assert p.is_file()
    with pytest.raises(CheckpointError, match="checkpoints exist at: 48 h, 96 h"):
        find_at(shared_tmp / "ck", 50.0, comm)
    newest = latest(shared_tmp / "ck", comm)
    assert newest is not None and newest.name == list_checkpoints(shared_tmp / "ck")[-1].name
    # a damaged newest checkpoint is skipped
    comm.barrier()
    if comm.rank == 0:
        newest.write_bytes(newest.read_bytes()[:100])
    comm.barrier()
    assert latest(shared_tmp / "ck", comm) == p


def test_checkpoint_of_another_case_is_refused(comm, shared_tmp):
    cfg = config_from_dict(_case("2 day"))
    with Simulation(cfg, comm) as sim:
        sim.enable_checkpoints(shared_tmp / "ck")
        _run(sim)
    other = _case("2 day")
    other["therapy"]["treatments"] = other["therapy"]["treatments"][:1]
    with Simulation(config_from_dict(other), comm) as sim:
        with pytest.raises(CheckpointError, match="species"):
            sim.resume_from(latest(shared_tmp / "ck", comm))
        # but a branch takes the shared species and starts its own history
        meta = sim.branch_from(latest(shared_tmp / "ck", comm))
        assert sim.state.t == meta["t"] == 48.0
        assert sim.state.dt_history == []


_N_TO_M = """
import sys, json
from tumorpde.config import config_from_dict
from tumorpde.simulation import Simulation
sys.path.insert(0, {tests!r})
from physics.test_restart import _case, _run
mode, ck = sys.argv[1], sys.argv[2]
with Simulation(config_from_dict(_case())) as sim:
    if mode == "write":
        sim.enable_checkpoints(ck, every_steps=6, keep=10)
        rows = {{}}
    else:
        from tumorpde.simulation.checkpoint import list_checkpoints
        meta = sim.resume_from(list_checkpoints(ck)[0])
        rows = {{-meta["step"]: sim.qoi_values()}}  # the restored state itself
    rows.update(_run(sim))
if sim.comm.rank == 0:
    print(json.dumps({{str(k): v for k, v in rows.items()}}))
"""


@pytest.mark.serial
def test_written_on_two_ranks_resumed_on_one_and_three(tmp_path):
    """N-to-M: the state is keyed by mesh-file node, so the rank count may change."""
    code = _N_TO_M.format(tests=str(REPO / "tests"))
    mpiexec = str(REPO / ".venv" / "bin" / "mpiexec")
    if not shutil.which(mpiexec):
        mpiexec = shutil.which("mpiexec") or "mpiexec"

    def launch(n: int, mode: str) -> dict:
        cmd = [mpiexec, "-n", str(n), sys.executable, "-c", code, mode, str(tmp_path / "ck")]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
        assert out.returncode == 0, out.stderr[-3000:]
        import json

        return json.loads(out.stdout.strip().splitlines()[-1])

    reference = launch(2, "write")
    for n in (1, 3):
        resumed = launch(n, "resume")
        restored = next(k for k in resumed if int(k) < 0)
        state = resumed.pop(restored)
        ref = reference[str(-int(restored))]
        # the restored state is the written one: integrals agree to summation round-off
        for key in ("tumor_burden_mm3", "mean_EGF_nM", "occupancy_EGFR", "trastuzumab_mean_nM"):
            assert state[key] == pytest.approx(ref[key], rel=1e-12), key
        assert state["trastuzumab_mean_auc_nMh"] == pytest.approx(
            ref["trastuzumab_mean_auc_nMh"], rel=1e-12
        )
        # and it goes on to the same end: another partition changes the inexact linear solves
        # (block-Jacobi blocks are per rank), so the adaptive steps differ within the time
        # tolerance (1e-3), as between uninterrupted runs on 2 and 3 ranks
        last = resumed[max(resumed, key=int)]
        end = reference[max(reference, key=int)]
        assert last["t"] == end["t"]
        assert last["tumor_burden_mm3"] == pytest.approx(end["tumor_burden_mm3"], rel=1e-4)
        assert np.isfinite(last["tumor_burden_mm3"])
