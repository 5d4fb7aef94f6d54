"""Lesion set-ups of the therapy validation study: well-mixed lesions on a one-cell box.

Each validation row is about one lesion's exposure or response, so each run is a lesion at
uniform density on a one-cell box (no-flux walls: the PDE system reduces exactly to the
model's reaction ODEs, solved by the same code path as any case). A *site* supplies the vessel
class, vessel density, interstitial clearance and the tissue's effector-cell and HER3-bypass
defaults: ``brain`` (the library brain profile: blood-brain barrier, ISF bulk flow) and
``breast`` (peripheral tissue: normal capillaries, lymph drainage). Lesions differ by their
blood-tumor-barrier z-score (brain) and their proliferation rate; both are drawn from a
recorded seed.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
BRAIN = tomllib.loads((REPO / "tumorpde/library/data/organs/brain.toml").read_text())

#: Peripheral (breast) lymph drainage: an assumption, see ``SITES['breast']``.
LYMPH_CLEARANCE_PER_H = 0.002

#: Vessel settings of the two sites (values with their sources in the report's parameter list).
SITES: dict[str, dict[str, Any]] = {
    "brain": {
        "barrier": "brain",
        "surface_density": "100 1/cm",  # library brain profile, whole-brain average
        "interstitial_clearance": f"{BRAIN['vessels']['interstitial_clearance']['value']} 1/h",
    },
    "breast": {
        "barrier": "normal",
        "surface_density": "100 1/cm",
        # whole-body lymph flow ~3 L/day over ~70 L of tissue = 0.0018/h (assumption)
        "interstitial_clearance": f"{LYMPH_CLEARANCE_PER_H} 1/h",
    },
}

#: Lesion population: proliferation rate log-normal (median of the HER2 brain case, 0.018/day;
#: sigma 0.5 in ln units, an assumption: volume doubling times spread several-fold).
RHO_MEDIAN_PER_DAY = 0.018
RHO_SIGMA = 0.5
#: Starting density of a lesion (tumor tissue, u >= the lesion threshold 0.1).
U0 = 0.2

REGIMENS = {"trastuzumab": "q3w", "lapatinib": "daily_1250"}


def lesion_case(
    site: str,
    drugs: Sequence[str],
    *,
    t_end_day: float,
    z: float = 0.0,
    rho_per_day: float = RHO_MEDIAN_PER_DAY,
    u0: float = U0,
    dt_h: float = 6.0,
    addiction_per_day: float | None = None,
) -> dict[str, Any]:
    """A one-cell-box lesion case at ``site`` under ``drugs`` (label regimens)."""
    case: dict[str, Any] = {
        "name": f"validation_{site}_{'_'.join(drugs) or 'untreated'}",
        "mesh": {"kind": "box", "size": [1.0, 1.0, 1.0], "cells": [1, 1, 1]},
        "time": {"t_end": f"{t_end_day} day", "dt": f"{dt_h} h"},
        "tumor": {
            "proliferation_rate": f"{rho_per_day} 1/day",
            "death_rate": "0.005 1/day",
            "motility": 0.0,
            "initial": {"kind": "uniform", "value": u0},
        },
        "pathways": {"HER2": {}, "EGFR": {}},
        "vessels": dict(SITES[site]),
        "output": {"picture": False},
    }
    therapy: dict[str, Any] = {
        "patient": {"body_weight": "70 kg", "body_surface_area": "1.8 m^2"},
        "treatments": [{"drug": d, "regimen": REGIMENS[d]} for d in drugs],
        "lesion_leakiness": float(z),
    }
    if addiction_per_day is not None:
        therapy["addiction"] = {"HER2": f"{addiction_per_day} 1/day"}
    if drugs or addiction_per_day is not None:
        case["therapy"] = therapy
    return case


def run_lesion(case: dict[str, Any], comm: Any, window_h: tuple[float, float] | None = None):
    """Run a lesion case; return its final/initial burden and exposures over ``window_h``.

    Returns:
        ``{"burden_ratio", "tissue_free_nM": {drug: mean free interstitial level},
        "plasma_free_nM": {drug: mean unbound plasma level}}`` over the window (default: the
        whole run).
    """
    from tumorpde.config import config_from_dict
    from tumorpde.library.drugs import load_drug
    from tumorpde.simulation import Simulation

    cfg = config_from_dict(case)
    sim = Simulation(cfg, comm)
    drugs = [t.spec.name for t in (cfg.therapy.treatments if cfg.therapy else [])]
    t0, t1 = window_h if window_h is not None else (0.0, cfg.time.t_end)
    q0 = sim.qoi_values()
    at0, s0 = (q0, 0.0) if t0 <= 0.0 else (None, 0.0)
    for _info in sim.steps():
        if at0 is None and sim.state.t >= t0 - 1e-9:
            at0, s0 = sim.qoi_values(), sim.state.t
        if sim.state.t >= t1 - 1e-9:
            break
    q1 = sim.qoi_values()
    assert at0 is not None, "window start after the end of the run"
    span = max(sim.state.t - s0, 1e-12)
    tissue, plasma = {}, {}
    for d in drugs:
        spec = load_drug(d)
        auc = q1[f"{d}_mean_auc_nMh"] - at0[f"{d}_mean_auc_nMh"]
        pauc = q1[f"plasma_{d}_auc_nMh"] - at0[f"plasma_{d}_auc_nMh"]
        tissue[d] = auc / span / spec.available_volume_fraction
        plasma[d] = pauc / span * spec.plasma_unbound_fraction
    sim.solver.destroy()
    b0 = q0["tumor_burden_mm3"]
    return {
        "burden_ratio": q1["tumor_burden_mm3"] / b0 if b0 > 0 else float("nan"),
        "tissue_free_nM": tissue,
        "plasma_free_nM": plasma,
    }


def sample_lesions(n: int, seed: int) -> list[dict[str, float]]:
    """``n`` lesions: barrier z-score and proliferation rate (1/day), deterministic per seed."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    zr = rng.standard_normal(n)
    return [
        {"z": float(a), "rho_per_day": RHO_MEDIAN_PER_DAY * math.exp(RHO_SIGMA * float(b))}
        for a, b in zip(z, zr, strict=True)
    ]
