"""Anti-RANKL therapy (denosumab) in the bone vicious cycle (MPI-safe).

Denosumab neutralizes the algebraic RANKL of :mod:`tumorpde.model.bone`: RANKL keeps
``1 - theta``, ``theta = a/(a + Kd)`` with the free tissue drug ``a`` (quasi-steady binding).
Every assertion is on MPI-reduced quantities (QoIs), so the tests run at any process count.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from helpers import static_tumor

from tumorpde.config import ConfigError, config_from_dict
from tumorpde.library.drugs import load_drug
from tumorpde.simulation import Simulation

BOX = {"kind": "box", "size": [1.0, 1.0, 1.0], "cells": [2, 2, 2], "default_region": "marrow"}
PATIENT = {"body_weight": "70 kg", "body_surface_area": "1.8 m^2"}
DENOSUMAB = {"drug": "denosumab", "regimen": "q4w"}


def _case(**sections: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "name": "anti_rankl_test",
        "mesh": BOX,
        "time": {"t_end": 24.0, "dt": 0.25, "scheme": "bdf2"},
        "tumor": static_tumor(),
        "pathways": {"TGFBR": {}},
        "output": {"picture": False},
    }
    case.update(sections)
    return case


def _run(case: dict[str, Any], comm: Any) -> dict[str, float]:
    sim = Simulation(config_from_dict(case), comm)
    for _ in sim.steps():
        pass
    q = sim.qoi_values()
    sim.solver.destroy()
    return q


def test_anti_rankl_lowers_osteoclasts_and_osteolysis_by_the_closed_form(comm):
    """Well-mixed lesion, fixed free denosumab a: OC and M follow the closed form with R(1-theta).

    No vessels (S_v = 0) and no clearance keep the preloaded tissue drug constant, so
    theta = a/(a + Kd) is constant; with signal-independent PTHrP (p_b = 1),
    R = (1 + K) u0/(K + u0) (1 - theta), OC = OC_inf + (b/k - OC_inf) e^{-kt} with
    OC_inf = (b + a_OC R)/k, and M = M0 exp(-k_res (a_OC R/k)(t - (1 - e^{-kt})/k)).
    """
    b, act, k, kr, K, u0, m0, t = 0.05, 0.5, 0.1, 0.01, 0.5, 0.5, 0.3, 24.0
    spec = load_drug("denosumab")
    kd = spec.binding.kd_nM
    phi = spec.available_volume_fraction
    tissue = 3 * kd * phi  # free a = 3 Kd: theta = 0.75
    theta = 0.75
    bone = {
        "pathway": "TGFBR",
        "basal": b,
        "activation": act,
        "decay": k,
        "pthrp_basal": 1.0,
        "rankl_half": K,
        "resorption_rate": kr,
        "matrix_fraction": m0,
        "matrix_tgf": 15.0,
    }
    treated = _case(
        bone=bone,
        vessels={"surface_density": 0.0, "interstitial_clearance": 0.0},
        therapy={"patient": PATIENT, "treatments": [DENOSUMAB]},
        initial={"fields": {"denosumab": tissue}},
    )
    q = _run(treated, comm)

    def closed(r: float) -> tuple[float, float]:
        e = math.exp(-k * t)
        oc = (b + act * r) / k + (b / k - (b + act * r) / k) * e
        m = m0 * math.exp(-kr * (act * r / k) * (t - (1 - e) / k))
        return oc, m

    r0 = (1 + K) * u0 / (K + u0)
    oc_t, m_t = closed(r0 * (1 - theta))
    oc_u, m_u = closed(r0)
    assert q["denosumab_mean_nM"] == pytest.approx(tissue, rel=1e-9)  # drug held constant
    assert q["denosumab_trapped_marrow"] == pytest.approx(theta, rel=1e-9)
    assert q["mean_osteoclast"] == pytest.approx(oc_t, rel=2e-4)
    assert q["bone_matrix_mm3"] == pytest.approx(m_t, rel=2e-4)
    # the anti-RANKL effect against the untreated closed form (checked by test_bone_cycle):
    # excess OC falls by exactly 1 - theta, the resorbed volume by the closed-form ratio
    excess = (q["mean_osteoclast"] - b / k) / (oc_u - b / k)
    assert excess == pytest.approx(1 - theta, rel=1e-3)
    lysis = q["osteolytic_volume_mm3"] / (m0 - m_u)
    assert lysis == pytest.approx((m0 - m_t) / (m0 - m_u), rel=1e-3)
    assert lysis < 0.5  # resorption falls roughly with 1 - theta (less: matrix depletes)


def test_clinical_denosumab_blocks_tumor_osteolysis_in_the_bone_profile(comm):
    """Library bone profile, packed lesion, 120 mg SC: RANKL blocked, no excess resorption.

    Marrow exchange (fenestrated sinusoids, PS ~0.2/h) brings nM drug within hours, against
    Kd = 3 pM, so theta > 0.999 and OC stays at normal remodelling (1).
    """
    base = _case(
        organ="bone",
        time={"t_end": "7 day", "dt": "12 h", "scheme": "bdf2"},
        tumor={
            "proliferation_rate": 0.0,
            "death_rate": 0.0,
            "motility": 0.0,
            "initial": {"kind": "uniform", "value": 1.0},
        },
        bone={"pathway": "TGFBR"},
    )
    q0 = _run(base, comm)
    q = _run(base | {"therapy": {"patient": PATIENT, "treatments": [DENOSUMAB]}}, comm)
    assert q["denosumab_trapped_marrow"] > 0.999
    assert q0["mean_osteoclast_lesion"] > 1.5
    assert q["mean_osteoclast_lesion"] < 1.0 + 0.02 * (q0["mean_osteoclast_lesion"] - 1.0)
    assert q["osteolytic_volume_mm3"] < 0.02 * q0["osteolytic_volume_mm3"]


def test_anti_rankl_without_bone_is_a_config_error():
    """Denosumab in a case without [bone] names the missing RANKL before anything runs."""
    case = _case(therapy={"patient": PATIENT, "treatments": [DENOSUMAB]})
    with pytest.raises(ConfigError, match=r"RANKL.*\[bone\]"):
        config_from_dict(case)
