"""Therapy physics against closed forms: ISF clearance, barrier efflux, addiction, step means.

Also: error estimates on the steps after doses.

MPI-safe (reduced values only); runs serially and under ``mpiexec -n 2``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from helpers import split_box

from tumorpde.config import config_from_dict
from tumorpde.library.drugs import load_drug
from tumorpde.model.drug import Drug, lesion_z
from tumorpde.model.pathway import Pathway
from tumorpde.simulation import Simulation

BOX1 = {"kind": "box", "size": [1.0, 1.0, 1.0], "cells": [1, 1, 1]}


def case(drug: str | None, **sections: Any) -> dict[str, Any]:
    """A well-mixed one-cell box with HER2 and EGFR and (optionally) one drug."""
    regimen = {"trastuzumab": "q3w", "lapatinib": "daily_1250"}
    out: dict[str, Any] = {
        "name": "barrier_test",
        "mesh": BOX1,
        "time": {"t_end": "3 day", "dt": "3 h"},
        "tumor": {
            "proliferation_rate": 0.0,
            "motility": 0.0,
            "initial": {"kind": "uniform", "value": 0.0},
        },
        "pathways": {"HER2": {}, "EGFR": {}},
        "therapy": {
            "treatments": [] if drug is None else [{"drug": drug, "regimen": regimen[drug]}],
            "lesion_leakiness": 0.0,
        },
        "output": {"picture": False},
    }
    out.update(sections)
    return out


def _run(cfg: Any, comm: Any) -> tuple[Simulation, list[Any]]:
    sim = Simulation(cfg, comm)
    infos = list(sim.steps())
    return sim, infos


def _region_mean(sim: Simulation, comm: Any, name: str, mask_fn: Any) -> float:
    from mpi4py import MPI

    n = sim.state.V.dofmap.index_map.size_local
    x = sim.state.V.tabulate_dof_coordinates()[:n, 0]
    a = sim.state.fields[name].x.array[:n]
    mask = mask_fn(x)
    s = comm.allreduce(np.array([a[mask].sum(), mask.sum()], dtype=float), op=MPI.SUM)
    return float(s[0] / s[1])


def test_isf_steady_state_matches_closed_form(comm):
    """Free ISF / unbound plasma -> PS/(PS + Q) (no binding at u = 0; fast relaxation)."""
    q = 0.1  # 1/h
    cfg = config_from_dict(
        case(
            "trastuzumab",
            vessels={
                "barrier": "fenestrated",
                "surface_density": "100 1/cm",
                "interstitial_clearance": f"{q} 1/h",
            },
        )
    )
    sim, _ = _run(cfg, comm)
    spec = load_drug("trastuzumab")
    ps = spec.permeability.fenestrated * cfg.vessels.surface_density
    a = sim.qoi_values()["trastuzumab_mean_nM"] / spec.available_volume_fraction
    cp = sim.qoi_values()["plasma_trastuzumab_nM"] * spec.plasma_unbound_fraction
    exact = ps / (ps + q)
    assert 0.3 < exact < 0.7  # both terms matter
    # relaxation time phi/(PS + Q) ~ 1 h against a plasma decline of ~1%/h: lag < 2%
    assert a / cp == pytest.approx(exact, rel=0.02)
    # without the clearance the same set-up reaches plasma level (the term is what moves it)
    cfg0 = config_from_dict(
        case("trastuzumab", vessels={"barrier": "fenestrated", "surface_density": "100 1/cm"})
    )
    sim0, _ = _run(cfg0, comm)
    a0 = sim0.qoi_values()["trastuzumab_mean_nM"] / spec.available_volume_fraction
    assert a0 / cp == pytest.approx(1.0, rel=0.04)  # slower relaxation (phi/PS ~ 2 h)
    sim.solver.destroy()
    sim0.solver.destroy()


def test_efflux_applies_only_to_its_own_barrier(comm):
    """Lapatinib: each efflux ratio acts only at its own barrier.

    BBB efflux on normal brain vessels, the lesion's BTB ratio on its vessels, none on
    peripheral tumor vessels; exchange is fast, so free tissue/plasma = 1/r.
    """
    spec = load_drug("lapatinib")
    perm = spec.permeability
    _, r_btb = perm.lesion_btb(0.0)
    assert r_btb == pytest.approx(perm.btb_efflux_ratio) and r_btb < perm.brain_efflux_ratio
    regions = {
        "brain": {"vessels": {"barrier": "brain"}},
        "body": {"vessels": {"barrier": "normal"}},
    }
    ratios = {}
    for u in (0.0, 1.0):
        c = case(
            "lapatinib",
            mesh=split_box((10.0, 1.0, 1.0), (10, 1, 1), "brain", "body", 5.0),
            regions=regions,
        )
        c["tumor"]["initial"]["value"] = u
        cfg = config_from_dict(c)
        drug = next(d for d in (Drug(cfg, t) for t in cfg.therapy.treatments))
        f = {fld.key.split(".")[-1]: fld for fld in drug.cell_fields()}
        # cell fields: efflux ratio by vessel class, region by region
        assert f["PSr"].by_region["brain"] / f["PS"].by_region["brain"] == pytest.approx(
            perm.brain_efflux_ratio
        )
        assert f["PtSr"].by_region["brain"] / f["PtS"].by_region["brain"] == pytest.approx(r_btb)
        assert f["PSr"].by_region["body"] == pytest.approx(f["PS"].by_region["body"])
        assert f["PtSr"].by_region["body"] == pytest.approx(f["PtS"].by_region["body"])
        sim, _ = _run(cfg, comm)
        brain = _region_mean(sim, comm, "lapatinib", lambda x: x < 3.5)
        body = _region_mean(sim, comm, "lapatinib", lambda x: x > 6.5)
        ratios[u] = brain / body
        sim.solver.destroy()
    assert ratios[0.0] == pytest.approx(1 / perm.brain_efflux_ratio, rel=0.05)  # normal brain
    assert ratios[1.0] == pytest.approx(1 / r_btb, rel=0.05)  # lesion vs peripheral lesion


def test_lesion_barrier_sample_is_deterministic_per_seed():
    z = [lesion_z(s) for s in range(200)]
    assert z[:3] == [lesion_z(s) for s in range(3)]
    assert abs(np.mean(z)) < 0.25 and 0.8 < np.std(z) < 1.2
    assert lesion_z(5, given=-1.5) == -1.5
    perm = load_drug("trastuzumab").permeability
    lo, _ = perm.lesion_btb(-1.0)
    hi, _ = perm.lesion_btb(1.0)
    assert hi / lo == pytest.approx(math.exp(2 * perm.btb_spread))


def test_addiction_death_closed_form(comm):
    """Addiction: u' = -k (1 - S/S_ref) u, S relaxing from S_ref/2, gives u0 exp(-k I(t))."""
    k_add, k_s, u0, days = 0.5 / 24, 0.05, 0.5, 4.0
    c = case(None, time={"t_end": f"{days} day", "dt": "1 h", "scheme": "bdf2"})
    c["pathways"] = {"HER2": {"signal": {"rate": f"{k_s} 1/h"}}}
    c["tumor"]["initial"]["value"] = u0
    c["tumor"]["death_rate"] = 0.0
    c["therapy"]["addiction"] = {"HER2": f"{k_add} 1/h"}
    cfg0 = config_from_dict(c)
    s_ref = Pathway(cfg0, "HER2").reference_signal()
    c["pathways"]["HER2"]["signal"]["initial"] = 0.5 * s_ref
    cfg = config_from_dict(c)
    sim, _ = _run(cfg, comm)
    t = days * 24
    integral = 0.5 * (1 - math.exp(-k_s * t)) / k_s
    exact = u0 * math.exp(-k_add * integral)
    burden = sim.qoi_values()["tumor_burden_mm3"]
    assert burden == pytest.approx(exact, rel=2e-3)
    assert burden < 0.9 * u0  # the term acted (exp(-k I) = 0.81)
    sim.solver.destroy()


def test_backward_euler_uses_the_exact_step_mean_of_the_plasma_curve(comm):
    """Fixed-step BE takes the exact step mean of the plasma curve, not its end value.

    A_{n+1} = (A_n + h PS f_u C_n)/(1 + h (PS r + Q)/phi), C_n = AUC over step n / h.
    """
    q = 0.01
    cfg = config_from_dict(
        case(
            "lapatinib",
            time={"t_end": "2 day", "dt": "6 h"},
            vessels={
                "barrier": "brain",
                "surface_density": "1 1/cm",
                "interstitial_clearance": f"{q} 1/h",
            },
        )
    )
    sim, infos = _run(cfg, comm)
    spec = load_drug("lapatinib")
    drug = next(Drug(cfg, t) for t in cfg.therapy.treatments)
    ps = spec.permeability.brain * cfg.vessels.surface_density
    r, phi, fu = spec.permeability.brain_efflux_ratio, spec.available_volume_fraction, 0.01
    a_mean, a_end, t0 = 0.0, 0.0, 0.0
    for info in infos:
        t1 = info.t
        h = t1 - t0
        c_mean = drug.plasma.mean_concentration_nM(t0, t1)
        c_end = float(drug.plasma.concentration_nM(t1))
        assert c_mean == pytest.approx(drug.plasma.auc(t0, t1) * spec.nM_per_mg_L / h)
        a_mean = (a_mean + h * ps * fu * c_mean) / (1 + h * (ps * r + q) / phi)
        a_end = (a_end + h * ps * fu * c_end) / (1 + h * (ps * r + q) / phi)
        t0 = t1
    got = sim.qoi_values()["lapatinib_mean_nM"]
    assert got == pytest.approx(a_mean, rel=1e-8)
    assert abs(a_end - a_mean) > 1e-3 * a_mean  # the two rules differ: the test can tell
    sim.solver.destroy()


def test_steps_after_doses_carry_an_error_estimate(comm):
    cfg = config_from_dict(
        case(
            "lapatinib",
            time={
                "t_end": "3 day",
                "dt": "2 h",
                "scheme": "bdf2",
                "adaptive": True,
                "tolerance": 1e-2,
            },
        )
    )
    sim, infos = _run(cfg, comm)
    doses = {round(b, 9) for b in sim.breakpoints}
    assert {24.0, 48.0} <= doses
    post_dose = [i for i in infos if round(i.t - i.dt, 9) in doses and i.t - i.dt > 0]
    assert len(post_dose) >= 2
    for info in post_dose:
        assert math.isfinite(info.error), info
    assert all(math.isfinite(i.error) for i in infos[1:])  # only the run's first step has none
    sim.solver.destroy()
