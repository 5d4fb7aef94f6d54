"""Model fixes of the generic model, each against an exact expectation (MPI-safe: reduced values).

- pathway signals combine as the saturating union 1 - Prod(1 - w_p S_p): a weak extra pathway
  never lowers growth, a bypass pathway compensates a blocked one;
- the EMT motility gain 1 + a e is applied once, however many pathways name it;
- host ("soil") terms of a ligand (stromal secretion, the region's clearance) are weighted by
  the host fraction 1 - u: they vanish inside a lesion and are unchanged at u = 0;
- per-cell receptor states are diluted by proliferation, so growth no longer creates bound
  ligand that no free ligand paid for (free + u * bound is conserved by binding).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import model_symbols, split_box
from ufl.algorithms.analysis import extract_coefficients

from tumorpde.config import ConfigError, config_from_dict
from tumorpde.model import build_model
from tumorpde.model.base import saturating_union
from tumorpde.simulation import Simulation

BOX = {"kind": "box", "size": [1.0, 1.0, 1.0], "cells": [2, 2, 2]}


def _case(pathways: dict[str, Any], *, u0: float, rho: float, **sections: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "name": "model_fixes",
        "mesh": BOX,
        "time": {"t_end": 20.0, "dt": 4.0},
        "tumor": {
            "proliferation_rate": rho,
            "motility": 0.0,
            "signal_independent_growth": 0.3,
            "initial": {"kind": "uniform", "value": u0},
        },
        "pathways": {p: {"library": False, **t} for p, t in pathways.items()},
        "output": {"picture": False},
    }
    case.update(sections)
    return case


def _ligandless(half_max: float, weight: float = 1.0) -> dict[str, Any]:
    """A HER2-like pathway: theta = R/R0 = 1, so S = 1/(1 + half_max) for all time (hill 1)."""
    return {
        "receptor": {"receptors_per_cell": 1e4, "k_t": "0.01 1/h"},
        "signal": {"half_max": half_max, "hill": 1.0},
        "effects": {"proliferation": weight},
    }


def _blocked() -> dict[str, Any]:
    """A ligand pathway without ligand: occupancy 0, signal 0 for all time."""
    return {
        "ligand": {"name": "L0", "diffusivity": 0.1, "initial": 0.0},
        "receptor": {"receptors_per_cell": 1e4, "k_on": "1e6 1/M/s", "internalized": False},
        "effects": {"proliferation": 1.0},
    }


def _burden(comm, case: dict[str, Any]) -> float:
    with Simulation(config_from_dict(case), comm) as sim:
        for _ in sim.steps():
            pass
        return sim.qoi_values()["tumor_burden_mm3"]


def _field_stats(sim, name: str) -> tuple[float, float, float]:
    """Global (mean, min, max) of a P1 field over owned nodes."""
    from mpi4py import MPI

    f = sim.state.fields[name]
    n = f.function_space.dofmap.index_map.size_local
    a = f.x.array[:n]
    s = sim.comm.allreduce(np.array([a.sum(), a.size]), op=MPI.SUM)
    lo = sim.comm.allreduce(float(a.min()) if n else np.inf, op=MPI.MIN)
    hi = sim.comm.allreduce(float(a.max()) if n else -np.inf, op=MPI.MAX)
    return float(s[0] / s[1]), lo, hi


# ---------------------------------------------------------------- saturating union


def test_union_is_monotone_and_lets_one_pathway_carry_it():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 5))
        pairs = [(float(w), float(s)) for w, s in rng.uniform(0, 1, (n, 2))]
        base = float(saturating_union(pairs))
        extra = (float(rng.uniform()), float(rng.uniform()))
        assert 0.0 <= base <= 1.0
        assert float(saturating_union([*pairs, extra])) >= base - 1e-15  # never lowers
        # a full-weight pathway at full signal saturates the union, whatever the others do
        assert float(saturating_union([*pairs, (1.0, 1.0)])) == pytest.approx(1.0, abs=1e-15)
    assert float(saturating_union([(1.0, 0.37)])) == pytest.approx(0.37, rel=1e-15)
    assert saturating_union([]) is None


def test_weak_pathway_never_lowers_growth_and_bypass_compensates(comm):
    """Burdens under the union equal signal-free cases with the closed-form growth rate."""
    rho, b0 = 0.05, 0.3
    s_strong, s_weak = 0.8, 0.1  # half_max 0.25 and 9 with hill 1 at theta = 1

    def rho_eff(s: float) -> float:
        return rho * (b0 + (1 - b0) * s)

    strong = _burden(comm, _case({"P1": _ligandless(0.25)}, u0=0.1, rho=rho))
    both = _burden(comm, _case({"P1": _ligandless(0.25), "P2": _ligandless(9.0)}, u0=0.1, rho=rho))
    bypass = _burden(comm, _case({"P0": _blocked(), "P1": _ligandless(0.25)}, u0=0.1, rho=rho))
    blocked = _burden(comm, _case({"P0": _blocked()}, u0=0.1, rho=rho))
    # reference runs without pathways, at the union's growth rate
    union_both = 1 - (1 - s_strong) * (1 - s_weak)
    ref_both = _burden(comm, _case({}, u0=0.1, rho=rho_eff(union_both)))
    ref_strong = _burden(comm, _case({}, u0=0.1, rho=rho_eff(s_strong)))
    assert both == pytest.approx(ref_both, rel=1e-10)
    assert strong == pytest.approx(ref_strong, rel=1e-10)
    assert both > strong  # the normalized mean gave (0.8 + 0.1)/2: slower growth
    assert bypass == pytest.approx(strong, rel=1e-10)  # the mean gave 0.4: half the signal
    assert blocked < strong


def test_effect_weights_above_one_are_config_errors():
    case = _case({"P1": _ligandless(0.25, weight=1.5)}, u0=0.1, rho=0.05)
    with pytest.raises(ConfigError, match="proliferation"):
        config_from_dict(case)


# ---------------------------------------------------------------- EMT motility once


def _symbols(model):
    return model_symbols(model)


def test_emt_motility_factor_is_applied_once():
    emt = {"emt_rate": "0.5 1/day", "emt_reversion": "0.05 1/day"}
    p1, p2 = _ligandless(0.25), _ligandless(0.5)
    p1["effects"] = {**emt, "emt_motility": 2.0, "motility": 1.0}
    p2["effects"] = {**emt, "emt_motility": 3.0}
    model = build_model(config_from_dict(_case({"P1": p1, "P2": p2}, u0=0.1, rho=0.05)))
    assert model.constants()["emt.motility"] == 3.0  # the largest gain, not their product
    sym = _symbols(model)
    ctx = model.build(sym)
    e = sym.fields["mesenchymal"]
    with_e = [m for m in ctx.mod.motility if e in extract_coefficients(m)]
    assert len(with_e) == 1  # one (1 + a e), not one per pathway
    assert len(ctx.mod.motility) == 2  # plus P1's signal gain 1 + m S


# ---------------------------------------------------------------- host-fraction weighting


def _host_case(u0: float) -> dict[str, Any]:
    lig = {
        "name": "HGF",
        "diffusivity": 1e-9,  # no exchange between the regions: pointwise steady states
        "decay_rate": 1.0,
        "tumor_secretion": 0.5,
        "stromal_secretion": 0.2,
    }
    rec = {"receptors_per_cell": 1e3, "k_on": 0.0, "internalized": False}
    regions = {
        "liver": {"pathways": {"MET": {"ligand": {"decay_rate": 5.0, "stromal_secretion": 4.0}}}}
    }
    return _case(
        {"MET": {"ligand": lig, "receptor": rec, "signal": {"enabled": False}}},
        u0=u0,
        rho=0.0,
        mesh=split_box((2.0, 1.0, 1.0), (4, 1, 1), "tissue", "liver", 1.0),
        regions=regions,
        time={"t_end": 30.0, "dt": 1.0},
    )


def test_host_terms_vanish_in_the_lesion_and_are_unchanged_outside(comm):
    # u = 0: each region at its own host steady state s_s/k_d (tissue 0.2, liver 0.8)
    with Simulation(config_from_dict(_host_case(0.0)), comm) as sim:
        for _ in sim.steps():
            pass
        _, lo, hi = _field_stats(sim, "HGF")
        assert lo == pytest.approx(0.2, rel=1e-6)
        assert hi == pytest.approx(0.8, rel=1e-6)
        assert sim.qoi_values()["balance_HGF"] < 1e-10
    # u = 1: no stromal source, and the generic decay 1/h in both regions: L = s_t/k_0
    with Simulation(config_from_dict(_host_case(1.0)), comm) as sim:
        for _ in sim.steps():
            pass
        _, lo, hi = _field_stats(sim, "HGF")
        assert lo == pytest.approx(0.5, rel=1e-6)
        assert hi == pytest.approx(0.5, rel=1e-6)
        assert sim.qoi_values()["balance_HGF"] < 1e-10


def test_ligand_balance_stays_exact_with_host_weighting_and_growth(comm):
    case = _host_case(0.0)
    case["tumor"].update(
        {
            "proliferation_rate": "1 1/day",
            "motility": "0.05 mm^2/day",
            "initial": {"kind": "gaussian", "center": [1.0, 0.5, 0.5], "radius": 0.5},
        }
    )
    case["pathways"]["MET"]["receptor"] = {
        "receptors_per_cell": 1e4,
        "k_on": "1e7 1/M/s",
        "k_off": "1e-3 1/s",
        "k_t": "0.02 1/min",
        "k_e": "0.1 1/min",
    }
    case["time"] = {"t_end": 10.0, "dt": 1.0}
    with Simulation(config_from_dict(case), comm) as sim:
        for _ in sim.steps():
            assert sim.qoi_values()["balance_HGF"] < 1e-9


# ---------------------------------------------------------------- dilution of per-cell states


def _dilution_case(dt: float) -> dict[str, Any]:
    """Closed box: binding only (no synthesis, internalization, decay or secretion), growth."""
    lig = {"name": "EGF", "diffusivity": 0.1, "initial": 2.0}
    rec = {
        "receptors_per_cell": 5e4,
        "k_on": "1e6 1/M/s",
        "k_off": "2e-3 1/s",
        "internalized": False,
        "initial_state": "free",
    }
    return _case(
        {"EGFR": {"ligand": lig, "receptor": rec, "signal": {"enabled": False}}},
        u0=0.2,
        rho=0.1,
        time={"t_end": 12.0, "dt": dt},
    )


def _total_ligand(sim) -> tuple[float, float]:
    """(free + u * bound, u * bound) ligand per volume, cell-weighted means over the box."""
    from mpi4py import MPI

    f = sim.state.fields
    n = f["tumor"].function_space.dofmap.index_map.size_local
    u, L, C = (f[k].x.array[:n] for k in ("tumor", "EGF", "EGFR_complex"))
    s = sim.comm.allreduce(np.array([(L + u * C).sum(), (u * C).sum(), n]), op=MPI.SUM)
    return s[0] / s[2], s[1] / s[2]


def _drift(comm, dt: float) -> tuple[float, float, float]:
    """Relative drift of the total ligand, bound ligand at the end, and u(t_end)/u(0)."""
    with Simulation(config_from_dict(_dilution_case(dt)), comm) as sim:
        total0, _ = _total_ligand(sim)
        for _ in sim.steps():
            pass
        total, bound = _total_ligand(sim)
        u_end = sim.qoi_values()["tumor_burden_mm3"]
    return abs(total - total0) / total0, bound, u_end


def test_growth_does_not_create_bound_ligand(comm):
    """Free + u * bound ligand is conserved by binding while the tumor grows.

    Per cell: dC/dt = J - g C, tissue: d(uC)/dt = u J = -dL/dt. Backward Euler leaves a drift
    dt g u (C_n - C_{n+1}) per step (the per-cell form cannot see C_n), first order in dt and
    vanishing as dt -> 0; without dilution, u C grew with u by C du.
    """
    drift, bound, burden = _drift(comm, 1.0)
    drift_half, _, _ = _drift(comm, 0.5)
    assert burden > 1.5 * 0.2  # the tumor grew by more than half
    # without dilution, u C grew with u: about bound * (1 - u0/u) of new, unpaid bound ligand
    unpaid = bound * (1 - 0.2 / burden) / 2.0  # relative to the initial total, 2 nM
    assert unpaid > 0.2  # measured 0.32
    assert drift < 0.1 * unpaid  # measured 0.019 at dt = 1 h
    assert drift_half == pytest.approx(drift / 2, rel=0.1)  # backward Euler: O(dt)
    assert abs(2 * drift_half - drift) < 0.05 * drift  # extrapolated to dt -> 0: closes


def test_per_cell_receptor_and_drug_states_are_diluted_by_growth():
    """Bound drug and ligand complexes lose g B with the tumor's per-cell birth rate g."""
    from helpers import REPO

    from tumorpde.config import load_config

    model = build_model(load_config(REPO / "benchmarks" / "cases" / "her2_brain_therapy.toml"))
    sym = _symbols(model)
    ctx = model.build(sym)
    u = sym.fields["tumor"]
    assert "birth" in ctx.rates
    # binding and internalization alone do not involve u: only the dilution term does
    for state in ("trastuzumab_bound", "EGFR_complex", "HER2"):
        assert u in extract_coefficients(ctx.reaction[state]), state


# ---------------------------------------------------------------- TGFBR trafficking (Vilar 2006)


def test_tgfbr_trafficking_maps_vilar_2006():
    """Vilar, Jansen & Sander 2006 Fig. 5A: ki, kr, kcd, klid (1/min) and pRII (per min)."""
    ki, kr, kcd, klid, p_rii = 1 / 3, 1 / 30, 1 / 36, 1 / 4, 4.0  # per minute
    case = {
        "name": "tgfbr",
        "mesh": BOX,
        "time": {"t_end": 1.0, "dt": 1.0},
        "tumor": {
            "proliferation_rate": 0.0,
            "motility": 0.0,
            "initial": {"kind": "uniform", "value": 0.1},
        },
        "pathways": {"TGFBR": {}},
    }
    r = config_from_dict(case).pathways["TGFBR"].receptor
    per_min = {k: getattr(r, k) / 60.0 for k in ("k_t", "k_e", "k_rec", "k_deg")}
    assert per_min["k_t"] == pytest.approx(kcd, rel=1e-3)  # constitutive surface degradation
    assert r.receptors_per_cell == pytest.approx(p_rii / kcd, rel=1e-3)  # surface type II
    assert per_min["k_t"] * r.receptors_per_cell == pytest.approx(p_rii, rel=1e-3)  # synthesis
    assert per_min["k_e"] == pytest.approx(ki, rel=1e-3)
    assert per_min["k_rec"] == pytest.approx(kr, rel=1e-2)
    # surface degradation (kcd + klid) carried by the internal pool: same degraded fraction
    degraded = per_min["k_deg"] / (per_min["k_rec"] + per_min["k_deg"])
    assert degraded == pytest.approx((kcd + klid) / (ki + kcd + klid), rel=2e-3)


# ---------------------------------------------------------------- carrying capacity


def test_carrying_capacity_default_scales_receptor_totals():
    """Default 1e8 cells/mL (Del Monte 2009); receptor totals (nM at u = 1) are proportional."""
    case = _case({"P1": _ligandless(0.25)}, u0=0.1, rho=0.0)
    cfg = config_from_dict(case)
    assert cfg.tumor.carrying_capacity == pytest.approx(1e5)  # cells/mm^3 = 1e8 cells/mL
    avogadro = 6.02214076e23
    expected = 1e4 * 1e5 * 1e6 / avogadro * 1e9  # receptors/cell * cells/L / N_A, in nM
    assert cfg.receptor_total_nM("P1") == pytest.approx(expected, rel=1e-9)
    case["tumor"]["carrying_capacity"] = "3e8 cells/mL"
    assert config_from_dict(case).receptor_total_nM("P1") == pytest.approx(3 * expected, rel=1e-9)
