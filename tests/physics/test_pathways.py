"""Generic pathway model against closed forms (uniform states; MPI-safe: reduced values only).

Each case runs the product path (config -> state -> forms -> Newton -> stepper) on a small box
with spatially uniform data, so the PDE system reduces to the well-mixed ODEs whose steady states
and invariants are known exactly (Lauffenburger & Linderman 1993, *Receptors*, ch. 3).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

from tumorpde.config import config_from_dict
from tumorpde.simulation import Simulation

BOX = {"kind": "box", "size": [1.0, 1.0, 1.0], "cells": [2, 2, 2]}


def _receptor(**kw: Any) -> dict[str, Any]:
    r = {
        "receptors_per_cell": 5e4,
        "k_on": "1e6 1/M/s",
        "k_off": "2e-3 1/s",
        "k_t": "0.03 1/min",
        "k_e": "0.15 1/min",
        "k_rec": "0.05 1/min",
        "k_deg": "0.02 1/min",
        "internalized": True,
        "initial_state": "free",  # start away from equilibrium: the tests check the approach
    }
    r.update(kw)
    return r


def _case(pathways: dict[str, Any], *, u0: float = 1e-16, rho: float = 0.0, **sections: Any):
    case: dict[str, Any] = {
        "name": "pathway_test",
        "mesh": BOX,
        "time": {"t_end": 200.0, "dt": 5.0},
        "tumor": {
            "proliferation_rate": rho,
            "motility": 0.01,
            "initial": {"kind": "uniform", "value": u0},
        },
        "pathways": {p: {"library": False, **t} for p, t in pathways.items()},
        "output": {"picture": False},
    }
    case.update(sections)
    return config_from_dict(case)


def _run(comm, cfg):
    sim = Simulation(cfg, comm)
    infos = list(sim.steps())
    return sim, infos, sim.qois.evaluate()


def _mean(sim, name):
    from mpi4py import MPI

    f = sim.state.fields[name]
    n = f.function_space.dofmap.index_map.size_local
    a = f.x.array[:n]
    tot = sim.comm.allreduce(np.array([a.sum(), a.size, a.max() - a.min()]), op=MPI.SUM)
    return tot[0] / tot[1]


def test_trafficking_steady_state_with_recycling(comm):
    """R_s, C_s, I_s at constant L match the closed forms to 1e-8 (recycling and degradation)."""
    L0 = 0.7
    lig = {"name": "EGF", "diffusivity": 0.1, "initial": L0}
    cfg = _case({"EGFR": {"ligand": lig, "receptor": _receptor()}})
    sim, _, q = _run(comm, cfg)
    r = cfg.pathways["EGFR"].receptor
    R0 = cfg.receptor_total_nM("EGFR")
    phi = r.k_rec / (r.k_rec + r.k_deg)
    Rs = r.k_t * R0 / (r.k_t + r.k_on * L0 * r.k_e * (1 - phi) / (r.k_off + r.k_e))
    Cs = r.k_on * L0 * Rs / (r.k_off + r.k_e)
    Is = r.k_e * Cs / (r.k_rec + r.k_deg)
    assert _mean(sim, "EGF") == pytest.approx(L0, rel=1e-9)  # u = 1e-16: no depletion
    assert _mean(sim, "EGFR") == pytest.approx(Rs, rel=1e-8)
    assert _mean(sim, "EGFR_complex") == pytest.approx(Cs, rel=1e-8)
    assert _mean(sim, "EGFR_internal") == pytest.approx(Is, rel=1e-8)
    assert q["occupancy_EGFR"] == pytest.approx((Cs + Is) / (Rs + Cs + Is), rel=1e-8)
    # signal relaxes to Hill(theta)
    sig = cfg.pathways["EGFR"].signal
    theta = (Cs + Is) / (Rs + Cs + Is)
    assert _mean(sim, "EGFR_signal") == pytest.approx(theta / (sig.half_max + theta), rel=1e-8)


def test_receptor_conservation_without_synthesis_and_degradation(comm):
    """k_t = k_deg = 0: R + C + I is conserved pointwise while ligand binds and recycles."""
    lig = {"name": "EGF", "diffusivity": 0.1, "initial": 2.0, "stromal_secretion": 5.0}
    rec = _receptor(k_t=0.0, k_deg=0.0)
    cfg = _case(
        {"EGFR": {"ligand": lig, "receptor": rec}},
        u0=0.5,
        time={"t_end": 10.0, "dt": 0.25},
    )
    sim, _, q = _run(comm, cfg)
    R0 = cfg.receptor_total_nM("EGFR")
    f = sim.state.fields
    tot = f["EGFR"].x.array + f["EGFR_complex"].x.array + f["EGFR_internal"].x.array
    from mpi4py import MPI

    dev = comm.allreduce(float(np.abs(tot - R0).max()), op=MPI.MAX)
    assert dev / R0 < 1e-10
    assert q["occupancy_EGFR"] > 0.2  # the ligand really bound and internalized
    assert q["balance_EGF"] < 1e-8


def test_ligand_depletion_equilibrium_is_the_quadratic_root(comm):
    """Closed system (no trafficking, no decay): C_eq solves C^2 - (L_T+R_T+K_d) C + L_T R_T = 0."""
    LT = 3.0
    lig = {"name": "HGF", "diffusivity": 0.1, "initial": LT}
    rec = _receptor(k_t=0.0, k_e=0.0, k_rec=0.0, k_deg=0.0, internalized=False)
    cfg = _case({"MET": {"ligand": lig, "receptor": rec}}, u0=1.0, time={"t_end": 50.0, "dt": 1.0})
    sim, _, q = _run(comm, cfg)
    r = cfg.pathways["MET"].receptor
    RT, Kd = cfg.receptor_total_nM("MET"), r.k_off / r.k_on
    b = LT + RT + Kd
    c_eq = (b - math.sqrt(b * b - 4 * LT * RT)) / 2
    assert _mean(sim, "MET_complex") == pytest.approx(c_eq, rel=1e-8)
    assert q["mean_HGF_nM"] == pytest.approx(LT - c_eq, rel=1e-8)


def test_her2_without_ligand_keeps_its_expression(comm):
    cfg = _case({"HER2": {"receptor": {"receptors_per_cell": 1e6, "k_t": "0.01 1/h"}}})
    sim, _, q = _run(comm, cfg)
    R0 = cfg.receptor_total_nM("HER2")
    assert _mean(sim, "HER2") == pytest.approx(R0, rel=1e-12)
    assert q["relative_HER2"] == pytest.approx(1.0, rel=1e-12)
    half = cfg.pathways["HER2"].signal.half_max
    assert _mean(sim, "HER2_signal") == pytest.approx(1 / (half + 1), rel=1e-10)


def _spread(comm, tgf: dict[str, Any] | None, t_end: float = 240.0):
    """Burden and second moment of u around the seed after t_end with/without a TGF-b pathway."""
    import ufl
    from dolfinx import fem

    pathways: dict[str, Any] = {}
    if tgf is not None:
        pathways["TGFBR"] = {
            "ligand": {
                "name": "TGFb",
                "diffusivity": 0.5,
                "initial": 0.2,
                "stromal_secretion": 0.1,
                "decay_rate": 0.5,
            },
            "receptor": _receptor(receptors_per_cell=1e3, k_on="1e7 1/M/s", k_off="1e-3 1/s"),
            "signal": {"half_max": 0.05, "rate": 1.0},
            "effects": tgf,
        }
    case: dict[str, Any] = {
        "name": "tgfb_context",
        "mesh": {"kind": "box", "size": [6.0, 6.0, 6.0], "cells": [8, 8, 8]},
        "time": {"t_end": t_end, "dt": 12.0},
        "tumor": {
            "proliferation_rate": "0.2 1/day",
            "motility": "0.05 mm^2/day",
            "initial": {"kind": "gaussian", "center": [3.0, 3.0, 3.0], "radius": 0.8},
        },
        "pathways": {p: {"library": False, **t} for p, t in pathways.items()},
        "output": {"picture": False},
    }
    cfg = config_from_dict(case)
    sim, _, q = _run(comm, cfg)
    x = ufl.SpatialCoordinate(sim.domain.mesh)
    r2 = sum((x[i] - 3.0) ** 2 for i in range(3))
    u = sim.state.fields["tumor"]
    from mpi4py import MPI

    m2 = comm.allreduce(fem.assemble_scalar(fem.form(u * r2 * ufl.dx)), op=MPI.SUM)
    return q["tumor_burden_mm3"], m2 / q["tumor_burden_mm3"]


def test_tgfb_context_can_slow_or_speed_spread(comm):
    """Cytostatic arm (epithelial cells) lowers the burden; the EMT arm widens the spread."""
    burden0, width0 = _spread(comm, None)
    burden_cs, _ = _spread(comm, {"cytostatic": 0.8})
    _, width_emt = _spread(
        comm, {"emt_rate": "0.5 1/day", "emt_reversion": "0.05 1/day", "emt_motility": 8.0}
    )
    assert burden_cs < 0.9 * burden0  # TGF-b as tumor suppressor
    assert width_emt > 1.1 * width0  # TGF-b as promoter of invasion


def test_oxygen_quasi_steady_uniform_root(comm):
    """Uniform u: k_s (O_b - O) = M u O / (O + K_m), the positive root of a quadratic."""
    ox = {"supply_rate": 20.0, "blood_level": 40.0, "consumption": 600.0, "consumption_half": 2.0}
    cfg = _case({}, u0=0.5, oxygen=ox, time={"t_end": 1.0, "dt": 0.5})
    _, _, q = _run(comm, cfg)
    ks, Ob, M, K, u = 20.0, 40.0, 600.0, 2.0, 0.5
    # ks (Ob - O)(O + K) = M u O  ->  ks O^2 + (ks K - ks Ob + M u) O - ks Ob K = 0
    a, b, c = ks, ks * K - ks * Ob + M * u, -ks * Ob * K
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert q["mean_oxygen_mmHg"] == pytest.approx(root, rel=1e-8)


def test_bone_cycle_osteoclast_steady_state(comm):
    """dOC/dt = basal + act S u - decay OC at steady state, with S the TGF-b signal."""
    lig = {"name": "TGFb", "diffusivity": 0.1, "initial": 0.3}
    rec = _receptor(receptors_per_cell=1e3, k_on="1e7 1/M/s", k_off="1e-3 1/s")
    cfg = _case(
        {"TGFBR": {"ligand": lig, "receptor": rec}},
        u0=1e-16,
        bone={"basal": 0.01, "activation": 0.0, "decay": 0.1, "matrix_release": 0.0},
    )
    _, _, q = _run(comm, cfg)
    assert q["mean_osteoclast"] == pytest.approx(0.1, rel=1e-8)


def _logistic(comm, scheme: str, dt: float, **time: Any) -> tuple[float, Any]:
    rho, u0, t_end = 0.2, 0.05, 24.0
    cfg = _case(
        {},
        u0=u0,
        rho=rho,
        time={"t_end": t_end, "dt": dt, "scheme": scheme, **time},
    )
    _, infos, q = _run(comm, cfg)
    exact = 1 / (1 + (1 / u0 - 1) * math.exp(-rho * t_end))
    return abs(q["max_tumor"] - exact), infos


def test_bdf2_is_second_order_and_be_first(comm):
    e_be = [_logistic(comm, "be", dt)[0] for dt in (2.0, 1.0, 0.5)]
    e_bdf = [_logistic(comm, "bdf2", dt)[0] for dt in (2.0, 1.0, 0.5)]
    rates_be = [math.log2(a / b) for a, b in itertools.pairwise(e_be)]
    rates_bdf = [math.log2(a / b) for a, b in itertools.pairwise(e_bdf)]
    assert all(abs(r - 1.0) < 0.15 for r in rates_be), rates_be
    assert all(abs(r - 2.0) < 0.25 for r in rates_bdf), rates_bdf


def test_adaptive_bdf2_meets_tolerance_and_hits_outputs(comm):
    errs, counts = [], []
    for tol in (1e-3, 1e-5):
        err, infos = _logistic(comm, "bdf2", 0.1, adaptive=True, tolerance=tol, output_every=5.0)
        errs.append(err)
        counts.append(len(infos))
        outs = [i.t for i in infos if i.is_output]
        assert outs == pytest.approx([5.0, 10.0, 15.0, 20.0, 24.0], abs=1e-12)
        assert all(not (i.error > 1.0) for i in infos)  # accepted steps meet the tolerance
    assert errs[1] < errs[0] / 20  # tighter tolerance, much smaller error
    assert counts[1] > counts[0]
    assert counts[0] < 40  # the controller takes large steps where the solution is smooth
