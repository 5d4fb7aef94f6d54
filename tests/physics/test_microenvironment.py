"""Vessels, hypoxia and necrosis (``[angiogenesis]``, ``[oxygen]`` necrosis) on small boxes.

Uniform states reduce the vessel and necrosis ODEs to scalar recursions that backward Euler
solves exactly, so the runs are compared with those recursions to round-off; the spatial tests
assert on MPI-reduced quantities (QoIs, global extrema), so every test runs at any process
count.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from helpers import model_symbols
from ufl.algorithms import extract_coefficients

from tumorpde.config import ConfigError, config_from_dict
from tumorpde.model import build_model
from tumorpde.model.base import Symbols
from tumorpde.simulation import Simulation

BOX = {"kind": "box", "size": [1.0, 1.0, 1.0], "cells": [2, 2, 2]}
RECEPTOR = {
    "receptors_per_cell": 1e3,
    "k_on": "1e7 1/M/s",
    "k_off": "1e-3 1/s",
    "k_t": "0.03 1/min",
    "k_e": "0.15 1/min",
}


def _case(u0: float, *, rho: float = 0.0, mesh: dict[str, Any] | None = None, **sections: Any):
    case: dict[str, Any] = {
        "name": "microenvironment_test",
        "mesh": mesh or BOX,
        "time": {"t_end": 48.0, "dt": 6.0, "scheme": "be", "adaptive": False},
        "tumor": {
            "proliferation_rate": rho,
            "death_rate": 0.0,
            "motility": 0.01,
            "initial": {"kind": "uniform", "value": u0},
        },
        "output": {"picture": False},
    }
    case.update(sections)
    return config_from_dict(case)


def _vegf(initial: float, **ligand: Any) -> dict[str, Any]:
    """A VEGFR2 pathway without library values: VEGF at ``initial``, no decay or secretion."""
    lig = {"name": "VEGF", "diffusivity": 0.1, "initial": initial, **ligand}
    return {"VEGFR2": {"library": False, "ligand": lig, "receptor": RECEPTOR}}


def _run(comm, cfg):
    sim = Simulation(cfg, comm)
    history = [sim.qois.evaluate()]
    for _ in sim.steps():
        history.append(sim.qois.evaluate())
    return sim, history


def _global_max(sim, expr_of_fields) -> float:
    from mpi4py import MPI

    f = sim.state.fields
    n = f["tumor"].function_space.dofmap.index_map.size_local
    local = expr_of_fields({k: v.x.array[:n] for k, v in f.items()})
    return float(sim.comm.allreduce(local.max() if local.size else -np.inf, op=MPI.MAX))


ANGIO = {"regression_rate": 0.05, "restoration_rate": 0.01, "sprouting_rate": 0.02}


def test_vessels_regress_in_a_lesion_without_vegf(comm):
    """dm/dt = -k_r u m + k_h (1 - u)(1 - m): backward Euler recursion to round-off."""
    u = 0.6
    cfg = _case(u, angiogenesis={**ANGIO, "pathway": "none"})
    _, hist = _run(comm, cfg)
    kr, kh, dt = 0.05, 0.01, 6.0
    m = 1.0
    for q in hist[1:]:
        m = (m + dt * kh * (1 - u)) / (1 + dt * (kr * u + kh * (1 - u)))
        assert q["mean_vessel_density"] == pytest.approx(m, rel=1e-10)
    assert m < 0.35  # regressing towards the closed-form steady state 0.12


def test_vessels_sprout_with_vegf_and_host_is_stationary(comm):
    """Excess VEGF: dm/dt = r_a (sigma(V) - sigma(V_0)) m (1 - m/m_max) + k_h (1 - m)."""
    V, V0, half = 0.3, 0.0, 0.1
    cfg = _case(
        1e-16,
        pathways=_vegf(V0),
        initial={"fields": {"VEGF": V}},
        angiogenesis={**ANGIO, "vegf_half": half, "max_density": 3.0},
    )
    _, hist = _run(comm, cfg)
    ra, kh, dt, mmax = 0.02, 0.01, 6.0, 3.0
    drive = V**2 / (half**2 + V**2)
    m = 1.0
    for q in hist[1:]:
        # m - m_n = dt [ra drive m (1 - m/mmax) + kh (1 - m)]: the positive root
        a = dt * ra * drive / mmax
        b = 1 - dt * ra * drive + dt * kh
        c = -(m + dt * kh)
        m = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
        assert q["mean_vessel_density"] == pytest.approx(m, rel=1e-8)
    assert m > 1.4
    # VEGF at its tumor-free level, no tumor: the host vasculature stays at m = 1 exactly
    cfg = _case(1e-16, pathways=_vegf(0.05), angiogenesis=ANGIO)
    _, hist = _run(comm, cfg)
    assert hist[-1]["mean_vessel_density"] == pytest.approx(1.0, abs=1e-12)


def test_oxygen_supply_scales_with_vessel_density(comm):
    """k_s m (O_b - O) = M u O/(O + K_m) with the run's m: quadratic root; m = 1 without vessels."""
    ox = {"supply_rate": 20.0, "blood_level": 40.0, "consumption": 600.0, "consumption_half": 2.0}
    ks, Ob, M, K, u = 20.0, 40.0, 600.0, 2.0, 0.5

    def root(m: float) -> float:
        a, b, c = ks * m, ks * m * K - ks * m * Ob + M * u, -ks * m * Ob * K
        return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)

    cfg = _case(u, oxygen=ox, angiogenesis={**ANGIO, "pathway": "none"})
    _, hist = _run(comm, cfg)
    m = hist[-1]["mean_vessel_density"]
    assert m < 0.5
    assert hist[-1]["mean_oxygen_mmHg"] == pytest.approx(root(m), rel=1e-8)
    # without [angiogenesis] the supply is unchanged (m = 1): the pre-vessel root
    _, hist0 = _run(comm, _case(u, oxygen=ox))
    assert hist0[-1]["mean_oxygen_mmHg"] == pytest.approx(root(1.0), rel=1e-8)
    assert hist[-1]["mean_oxygen_mmHg"] < 0.5 * hist0[-1]["mean_oxygen_mmHg"]


def test_large_lesion_has_hypoxic_core_and_normoxic_rim(comm):
    """A 3 mm-radius lesion whose vessels regressed: anoxic centre, well-oxygenated margin."""
    mesh = {"kind": "box", "size": [8.0, 8.0, 8.0], "cells": [12, 12, 12]}
    cfg = _case(
        0.0,
        mesh=mesh,
        tumor={
            "proliferation_rate": 0.0,
            "death_rate": 0.0,
            "motility": 0.0,
            "initial": {"kind": "gaussian", "center": [4.0, 4.0, 4.0], "radius": 3.0, "peak": 1.0},
        },
        time={"t_end": 240.0, "dt": 24.0, "scheme": "be", "adaptive": False},
        oxygen={
            "supply_rate": 90.0,
            "blood_level": 90.0,
            "consumption": "13400 mmHg/h",
            "hypoxia_threshold": 10.0,
        },
        angiogenesis={**ANGIO, "pathway": "none", "regression_rate": "0.1 1/day"},
    )
    sim, hist = _run(comm, cfg)
    q = hist[-1]
    assert q["min_oxygen"] < 2.5  # hypoxic (anoxic) core
    assert _global_max(sim, lambda f: f["oxygen"]) > 80.0  # host tissue at the margin
    assert 0.05 < q["hypoxic_fraction"] < 0.95  # part of the lesion stays normoxic (rim)
    assert q["mean_vessel_density_lesion"] < q["mean_vessel_density"] < 1.0


def test_necrosis_is_irreversible_and_bounded(comm):
    """Anoxic growing tumor: n only grows, u + n <= 1; n + u conserved without growth."""
    ox = {
        "supply_rate": 1.0,
        "blood_level": 40.0,
        "consumption": 1e4,
        "necrosis_rate": "0.5 1/day",
        "necrosis_threshold": 1.0,
    }
    cfg = _case(0.5, rho="0.5 1/day", oxygen=ox)
    sim, hist = _run(comm, cfg)
    nec = [q["necrotic_volume_mm3"] for q in hist]
    assert all(b >= a - 1e-14 for a, b in itertools.pairwise(nec))
    assert nec[-1] > 0.05
    assert _global_max(sim, lambda f: f["tumor"] + f["necrotic"]) <= 1.0 + 1e-10
    # no proliferation: cells only move into the necrotic pool, u + n = u0 at every step
    cfg = _case(0.5, oxygen=ox)
    _, hist = _run(comm, cfg)
    for q in hist:
        assert q["viable_volume_mm3"] + q["necrotic_volume_mm3"] == pytest.approx(0.5, rel=1e-9)


def _therapy_case(with_bev: bool):
    treatments = [{"drug": "cetuximab", "regimen": "weekly"}]
    if with_bev:
        treatments.append({"drug": "bevacizumab", "regimen": "q2w_5"})
    lig = {"decay_rate": 0.01, "stromal_secretion": 0.002}  # VEGF 0.2 nM at steady state
    vegf = _vegf(0.2, **lig)
    vegf["VEGFR2"]["receptor"] = {**RECEPTOR, "receptors_per_cell": 1.0}  # no tumor VEGF sink
    egfr = {
        "library": False,
        "ligand": {"name": "EGF", "diffusivity": 0.1, "initial": 0.0},
        "receptor": {**RECEPTOR, "receptors_per_cell": 5e4},
    }
    return _case(
        0.5,
        pathways={**vegf, "EGFR": egfr},
        angiogenesis={**ANGIO, "vegf_half": 0.1},
        vessels={"surface_density": "10 1/cm"},  # uptake-limited: exposure ~ P S_v m
        therapy={"treatments": treatments, "lesion_density": 0.1},
        time={"t_end": 12.0, "dt": 6.0, "scheme": "be", "adaptive": False},
    )


def test_bevacizumab_prunes_vessels_and_lowers_second_drug_exposure(comm):
    """Trapping VEGF lowers vessel density and permeability, so cetuximab exposure drops.

    Cetuximab is sink-limited here (EGFR internalization 1.8/h): with the lesion permeability
    at (1 + a sigma)/(1 + a/2) ~ 1/3 of its VEGF-rich value its influx falls below the receptor
    turnover and the free drug nearly vanishes (measured 0.13 vs 78 nM at 12 h; with
    permeability_gain = 0 only the density effect remains: 35 vs 47 nM).
    """
    _, alone = _run(comm, _therapy_case(False))
    _, combo = _run(comm, _therapy_case(True))
    a, c = alone[-1], combo[-1]
    assert c["min_VEGF"] < 0.5 * a["min_VEGF"]
    assert c["mean_vessel_density"] < a["mean_vessel_density"] - 1e-3
    assert c["cetuximab_mean_nM"] < 0.5 * a["cetuximab_mean_nM"]
    assert c["min_bevacizumab_complex"] >= 0.0


def test_cases_without_the_new_blocks_are_unchanged():
    """No [angiogenesis], no necrosis: no new species, channels or QoIs."""
    cfg = _case(0.5, oxygen={"supply_rate": 20.0})
    model = build_model(cfg)
    assert model.names == ["tumor", "oxygen"]
    ctx = model.build(_symbols(model))
    assert ctx.mod.vessels is None and ctx.mod.permeability is None and not ctx.mod.crowding
    assert [q.name for q in model.qois(ctx)] == ["tumor_burden_mm3", "mean_oxygen_mmHg"]
    # with them: the vessel density multiplies the oxygen supply, necrosis crowds the tumor
    cfg = _case(
        0.5,
        oxygen={"supply_rate": 20.0, "necrosis_rate": 0.01},
        angiogenesis={"pathway": "none"},
    )
    model = build_model(cfg)
    assert model.names == ["tumor", "vessel_density", "oxygen", "necrotic"]
    sym = _symbols(model)
    ctx = model.build(sym)
    assert sym.fields["vessel_density"] in extract_coefficients(ctx.reaction["oxygen"])
    assert sym.fields["necrotic"] in extract_coefficients(ctx.reaction["tumor"])


def test_trap_complex_leaves_the_tissue_like_free_igg():
    """The bevacizumab-VEGF complex has the free IgG's vascular and interstitial exits."""
    case = _therapy_case(True)
    cfg = case.model_copy(update={"angiogenesis": None})
    model = build_model(cfg)
    sym = _symbols(model)
    ctx = model.build(sym)
    used = extract_coefficients(ctx.reaction["bevacizumab_complex"])
    for key in ("PSr", "PtSr", "Q"):
        assert sym.coefficients[f"bevacizumab.{key}"] in used
    assert "vessel_density" not in model.names and ctx.mod.vessels is None


def test_angiogenesis_needs_a_vegf_pathway():
    with pytest.raises(ConfigError, match=r"angiogenesis.pathway.*VEGFR2"):
        _case(0.5, angiogenesis={})


def _symbols(model) -> Symbols:
    return model_symbols(model)
