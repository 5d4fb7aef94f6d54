"""Bone vicious cycle: TGF-beta -> PTHrP -> RANKL -> osteoclasts -> matrix resorption (MPI-safe).

Every assertion is on MPI-reduced quantities (QoIs or allreduced nodal values), so the tests
run at any process count.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from helpers import owned_values, split_box, static_tumor

from tumorpde.config import ConfigError, config_from_dict
from tumorpde.model import build_model
from tumorpde.simulation import Simulation

BOX = {"kind": "box", "size": [1.0, 1.0, 1.0], "cells": [2, 2, 2], "default_region": "marrow"}

#: Fast explicit cycle rates (1/h) for the short structural tests.
FAST = {
    "pathway": "TGFBR",
    "basal": 0.05,
    "activation": 0.25,
    "decay": 0.05,
    "pthrp_basal": 0.3,
    "rankl_half": 0.5,
    "resorption_rate": 0.01,
    "matrix_tgf": "15 nM",
}


def _case(**sections: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "name": "bone_cycle_test",
        "mesh": BOX,
        "time": {"t_end": 48.0, "dt": 4.0, "scheme": "bdf2"},
        "tumor": static_tumor(),
        "pathways": {"TGFBR": {}},
        "bone": dict(FAST),
        "output": {"picture": False},
    }
    case.update(sections)
    return case


def _owned(sim: Simulation, name: str) -> np.ndarray:
    return owned_values(sim.state.fields[name])


def _coords(sim: Simulation) -> np.ndarray:
    V = sim.state.V
    return V.tabulate_dof_coordinates()[: V.dofmap.index_map.size_local]


def _allmax(comm: Any, x: float) -> float:
    from mpi4py import MPI

    return float(comm.allreduce(x, op=MPI.MAX))


def _allsum(comm: Any, x: float) -> float:
    from mpi4py import MPI

    return float(comm.allreduce(x, op=MPI.SUM))


def _mean(sim: Simulation, name: str) -> float:
    a = _owned(sim, name)
    return _allsum(sim.comm, float(a.sum())) / _allsum(sim.comm, float(a.size))


def _run(comm: Any, case: dict[str, Any]) -> tuple[Simulation, dict[str, float], dict[str, float]]:
    sim = Simulation(config_from_dict(case), comm)
    q0 = sim.qoi_values()
    for _ in sim.steps():
        pass
    return sim, q0, sim.qoi_values()


def test_resorption_only_where_tumor_meets_bone(comm):
    """Matrix is lost only where tumor and bone overlap; it falls monotonically and stays >= 0."""
    mesh = split_box((4.0, 3.0, 1.0), (8, 6, 2), "marrow", "bone", 2.0)
    case = _case(
        mesh=mesh,
        tumor={
            "proliferation_rate": 0.0,
            "death_rate": 0.0,
            "motility": 0.0,
            "initial": {"kind": "gaussian", "center": [2.0, 0.0, 0.5], "radius": 0.6, "peak": 0.9},
        },
        regions={"bone": {"bone": {"matrix_fraction": 0.2}}},
    )
    sim = Simulation(config_from_dict(case), comm)
    x = _coords(sim)
    m0 = _owned(sim, "bone_matrix")
    assert sim.qoi_values()["osteolytic_volume_mm3"] == pytest.approx(0.0, abs=1e-12)
    prev = m0.copy()
    rise = low = 0.0
    for _ in sim.steps():
        m = _owned(sim, "bone_matrix")
        rise = max(rise, float(np.max(m - prev, initial=0.0)))
        low = min(low, float(np.min(m, initial=0.0)))
        prev = m
    u = _owned(sim, "tumor")
    m = _owned(sim, "bone_matrix")
    comm = sim.comm
    assert _allmax(comm, rise) <= 1e-12  # monotone at every node and step
    assert -_allmax(comm, -low) >= 0.0  # nonnegative
    # marrow interior (no matrix): stays exactly 0
    marrow = x[:, 0] < 2.0 - 0.25
    assert _allsum(comm, float(marrow.sum())) > 0
    assert _allmax(comm, float(np.max(np.abs(m[marrow]), initial=0.0))) <= 1e-14
    # bone far from the tumor: untouched
    far = (u < 1e-9) & (m0 > 0.19)
    assert _allsum(comm, float(far.sum())) > 0
    rel_far = np.max(np.abs(m[far] - m0[far]) / m0[far], initial=0.0)
    assert _allmax(comm, float(rel_far)) < 1e-6
    # where tumor meets bone: resorbed
    meet = (u > 0.3) & (m0 > 0.19)
    assert _allsum(comm, float(meet.sum())) > 0
    assert -_allmax(comm, -float(np.min(1 - m[meet] / m0[meet], initial=1.0))) > 0.05
    q = sim.qoi_values()
    assert q["osteolytic_volume_mm3"] > 1e-3
    assert q["min_bone_matrix"] >= 0.0


def test_osteoclast_and_matrix_closed_form(comm):
    """Uniform state with signal-independent PTHrP (p_b = 1): OC and M follow closed forms.

    P = u0, R = (1 + K) u0 / (K + u0) are constant, so OC = OC_inf + (OC_0 - OC_inf) e^{-kt}
    with OC_0 = b/k, OC_inf = (b + a R)/k, and M = M0 exp(-k_res (a R/k)(t - (1 - e^{-kt})/k)).
    """
    b, a, k, kr, K, u0, m0, c = 0.05, 0.5, 0.1, 0.01, 0.5, 0.5, 0.3, 15.0
    bone = {**FAST, "basal": b, "activation": a, "decay": k, "resorption_rate": kr}
    bone |= {"pthrp_basal": 1.0, "rankl_half": K, "matrix_fraction": m0, "matrix_tgf": c}
    t = 24.0
    case = _case(bone=bone, time={"t_end": t, "dt": 0.25, "scheme": "bdf2"})
    sim, _, q = _run(comm, case)
    R = (1 + K) * u0 / (K + u0)
    e = math.exp(-k * t)
    oc = (b + a * R) / k + (b / k - (b + a * R) / k) * e
    m = m0 * math.exp(-kr * (a * R / k) * (t - (1 - e) / k))
    assert q["mean_osteoclast"] == pytest.approx(oc, rel=2e-4)
    assert q["bone_matrix_mm3"] == pytest.approx(m, rel=2e-4)  # box volume 1 mm^3
    assert q["osteolytic_volume_mm3"] == pytest.approx(m0 - m, rel=5e-4)
    assert q["matrix_tgf_release_fmol_h"] == pytest.approx(c * kr * (oc - b / k) * m, rel=5e-4)
    assert _mean(sim, "bone_matrix") == pytest.approx(m, rel=2e-4)


def _profile_lesion(**bone: Any) -> dict[str, Any]:
    """A packed uniform lesion in the marrow of the library bone profile (7 days)."""
    return _case(
        organ="bone",
        time={"t_end": "7 day", "dt": "12 h", "scheme": "bdf2"},
        tumor={
            "proliferation_rate": 0.0,
            "death_rate": 0.0,
            "motility": 0.0,
            "initial": {"kind": "uniform", "value": 1.0},
        },
        bone={"pathway": "TGFBR", **bone},
    )


_UNTREATED: dict[int, tuple[dict[str, float], float, float]] = {}


def _untreated(comm: Any) -> tuple[dict[str, float], float, float]:
    """QoIs, mean signal and mean ligand of the untreated profile lesion (run once per size)."""
    if comm.size not in _UNTREATED:
        sim, _, q = _run(comm, _profile_lesion())
        _UNTREATED[comm.size] = (q, _mean(sim, "TGFBR_signal"), _mean(sim, "TGFb"))
    return _UNTREATED[comm.size]


def test_matrix_release_raises_tgf_signal(comm):
    """Library bone profile: matrix TGF-beta release raises the lesion's TGF-beta signal."""
    q, s_on, l_on = _untreated(comm)
    sim0, _, q0 = _run(comm, _profile_lesion(matrix_tgf="0 nM"))
    s_off, l_off = _mean(sim0, "TGFBR_signal"), _mean(sim0, "TGFb")
    assert q["matrix_tgf_share"] > 0.01
    assert q["matrix_tgf_share_lesion"] == pytest.approx(q["matrix_tgf_share"], rel=1e-9)
    assert q0["matrix_tgf_share"] == 0.0
    assert l_on > l_off * 1.02
    assert s_on > s_off * 1.01
    assert q["osteolytic_volume_mm3"] > q0["osteolytic_volume_mm3"]  # the cycle feeds itself


def test_galunisertib_reduces_osteolysis(comm):
    """Library bone profile: galunisertib lowers the signal, osteoclasts and osteolysis."""
    treated = _profile_lesion()
    treated["therapy"] = {
        "patient": {"body_weight": "70 kg", "body_surface_area": "1.8 m^2"},
        "treatments": [{"drug": "galunisertib", "regimen": "intermittent_bid"}],
    }
    sim, _, q = _run(comm, treated)
    s_t = _mean(sim, "TGFBR_signal")
    q0, s_u, _ = _untreated(comm)
    assert s_t < 0.9 * s_u
    assert q["mean_osteoclast_lesion"] < q0["mean_osteoclast_lesion"]
    assert q["osteolytic_volume_mm3"] < 0.99 * q0["osteolytic_volume_mm3"]


def test_matrix_fraction_above_one_is_a_config_error():
    """A regional matrix fraction > 1 is named before anything is computed."""
    case = _case(
        mesh=split_box((2.0, 1.0, 1.0), (2, 1, 1), "marrow", "bone", 1.0),
        regions={"bone": {"bone": {"matrix_fraction": 1.5}}},
    )
    with pytest.raises(ConfigError, match=r"regions\.bone\.bone\.matrix_fraction"):
        build_model(config_from_dict(case))
