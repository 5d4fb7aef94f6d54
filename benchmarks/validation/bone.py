"""Bone validation: osteolysis of a breast-cancer bone lesion under TGF-beta or RANKL inhibition.

Published experiment: Biswas et al. 2011 PLoS One 6:e27090 (MDA-MB-231 cells injected into the
left cardiac ventricle of nude mice, anti-TGF-beta antibody 1D11 10 mg/kg from day 1 for 4
weeks): osteolytic lesion area on X-ray 20520 +- 6000 (control) vs 1497 +- 888 (1D11), a tenfold
(93 %) reduction, with twofold bone volume in the treated tumor-bearing mice.

Model set-up: a well-mixed lesion (uniform tumor density on a small box, no-flux walls, so the
system reduces to the model's reaction ODEs) in the marrow/trabecular compartment of the
library bone profile (``organs/bone.toml``: TGF-beta -> PTHrP -> RANKL -> osteoclasts ->
matrix resorption and TGF-beta release), pathways TGFBR and EGFR as in
``benchmarks/cases/breast_bone_metastasis.toml``, 28 days. Arms: untreated, galunisertib
(TGFBR kinase inhibitor, catalog PK, 150 mg BID given for the whole 28 days like the
continuous 1D11 dosing), a complete TGFBR signal block (the upper bound of any TGF-beta
inhibitor) and denosumab 120 mg SC every 4 weeks (anti-RANKL). The rows compare the
fractional reduction of the osteolytic (resorbed) volume.
The endpoints differ (X-ray lesion area, which also falls with the smaller tumor burden, vs
resorbed matrix volume at equal tumor burden in the model), and so do the drugs (antibody
ligand trap vs kinase inhibitor at human exposure): the band is wide and one-sided.

Why the galunisertib row misses (see :mod:`tumorpde.model.bone`): the signal falls 39 % at
human exposure, the basal PTHrP share p_b and the RANKL saturation K (both assumptions) dilute
that to 10 % in RANKL, and the model has no matrix growth factors feeding the tumor, so its
burden, which also shrinks Biswas' X-ray lesion area, does not fall. ``--scan`` recalibrates
the resorption rate for other p_b and K and prints both reductions (~20 runs).

Anti-RANKL row: Morony et al. 2001 Cancer Res 61:4432-4436 (MDA-MB-231 intracardiac in nude
mice, recombinant OPG-Fc): radiographic osteolytic lesions completely prevented, tumor-
associated osteoclasts eradicated, skeletal tumor burden -75 %. The model gives denosumab
120 mg SC every 4 weeks (human PK; denosumab does not bind murine RANKL, so mouse studies used
OPG-Fc, another RANKL neutralizer): the osteolysis reduction at equal burden is compared.

Also reported: the matrix share of TGF-beta production in the lesion and the TGF-beta signal
with and without matrix release (the feedback of the cycle).

Run alone::

    .venv/bin/python benchmarks/validation/bone.py            # ~1-2 min, 1 rank
    .venv/bin/python benchmarks/validation/bone.py --scan     # p_b, K scan, ~5 min
"""

from __future__ import annotations

import json
import math
from typing import Any

#: Lesion density (a packed lesion: the tumor fills the marrow) and the set-up's run length.
U0 = 1.0
DAYS = 28
#: Published: osteolytic lesion area 1D11 / control (Biswas 2011, Fig. 2c).
PUBLISHED_RATIO = 1497.0 / 20520.0
#: Band of the fractional osteolysis reduction (%) that the row accepts.
BAND = (50.0, 100.0)
#: Band of the anti-RANKL row: the source prevented radiographic lesions completely.
RANKL_BAND = (80.0, 100.0)


def bone_lesion_case(
    drugs: tuple[str, ...] = (),
    *,
    t_end_day: float = DAYS,
    u0: float = U0,
    matrix_tgf: float | None = None,
    resorption_rate: float | None = None,
    dose_factor: float = 1.0,
) -> dict[str, Any]:
    """A uniform bone lesion on a small box with the library bone profile.

    Args:
        drugs: Catalog drugs, given for the whole run (galunisertib: 150 mg BID).
        t_end_day: Run length (days).
        u0: Uniform tumor density.
        matrix_tgf: Override of ``bone.matrix_tgf`` (nM; 0 switches the matrix release off).
        resorption_rate: Override of ``bone.resorption_rate`` (1/h).
        dose_factor: Multiplies the dose (100: a saturating, complete TGFBR kinase block).
    """
    case: dict[str, Any] = {
        "name": f"bone_validation_{'_'.join(drugs) or 'untreated'}",
        "organ": "bone",
        "mesh": {
            "kind": "box",
            "size": [1.0, 1.0, 1.0],
            "cells": [2, 2, 2],
            "default_region": "marrow",
        },
        "time": {"t_end": f"{t_end_day} day", "dt": "12 h", "scheme": "bdf2"},
        "tumor": {
            "proliferation_rate": 0.0,
            "death_rate": 0.0,
            "motility": 0.0,
            "carrying_capacity": "1e8 cells/mL",  # as breast_bone_metastasis.toml
            "initial": {"kind": "uniform", "value": u0},
        },
        "pathways": {"TGFBR": {}, "EGFR": {}},
        "bone": {"pathway": "TGFBR"},
        "output": {"picture": False},
    }
    if matrix_tgf is not None:
        case["bone"]["matrix_tgf"] = f"{matrix_tgf} nM"
    if resorption_rate is not None:
        case["bone"]["resorption_rate"] = f"{resorption_rate} 1/h"
    if drugs:
        case["therapy"] = {
            "patient": {"body_weight": "70 kg", "body_surface_area": "1.8 m^2"},
            "treatments": [_treatment(d, t_end_day, dose_factor) for d in drugs],
        }
    return case


def _treatment(drug: str, t_end_day: float, dose_factor: float) -> dict[str, Any]:
    """Galunisertib 150 mg BID without the off-weeks; denosumab 120 mg SC every 4 weeks."""
    if drug == "denosumab":
        return {"drug": drug, "regimen": "q4w", "dose": f"{120 * dose_factor:g} mg"}
    return {
        "drug": drug,
        "regimen": "intermittent_bid",
        "on": f"{t_end_day + 1} day",
        "dose": f"{150 * dose_factor:g} mg",
    }


def run_bone_lesion(case: dict[str, Any], comm: Any) -> dict[str, float]:
    """Run a bone lesion case; return its end-of-run bone QoIs.

    Returns:
        ``osteolytic_fraction`` (resorbed / initial matrix volume), ``osteolytic_volume_mm3``,
        ``mean_osteoclast_lesion``, ``matrix_tgf_share`` (of TGF-beta production),
        ``signal`` (mean TGF-beta signal), ``TGFb_nM`` (mean active TGF-beta).
    """
    from tumorpde.config import config_from_dict
    from tumorpde.simulation import Simulation

    sim = Simulation(config_from_dict(case), comm)
    q0 = sim.qoi_values()
    for _ in sim.steps():
        pass
    q = sim.qoi_values()
    means = {name: _mean(sim, name) for name in ("TGFBR_signal", "TGFb")}
    sim.solver.destroy()
    return {
        "osteolytic_fraction": q["osteolytic_volume_mm3"] / q0["bone_matrix_mm3"],
        "osteolytic_volume_mm3": q["osteolytic_volume_mm3"],
        "mean_osteoclast_lesion": q["mean_osteoclast_lesion"],
        "matrix_tgf_share": q["matrix_tgf_share"],
        "signal": means["TGFBR_signal"],
        "TGFb_nM": means["TGFb"],
    }


def _mean(sim: Any, name: str) -> float:
    """Mean nodal value of a species over all ranks (uniform states: the value)."""
    from mpi4py import MPI

    import numpy as np

    f = sim.state.fields[name]
    n = f.function_space.dofmap.index_map.size_local
    a = f.x.array[:n]
    tot = sim.comm.allreduce(np.array([a.sum(), a.size]), op=MPI.SUM)
    return float(tot[0] / tot[1])


def bone_rows(comm: Any, quick: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Osteolysis without and with TGF-beta or RANKL inhibition; the matrix-release feedback.

    Args:
        comm: Communicator of each run.
        quick: Unused (the set-up is already small: 6 runs of a few seconds).

    Returns:
        The rows and the raw numbers of every arm.
    """
    from run import _row  # the validation table's row format

    del quick
    arms = {
        "untreated": run_bone_lesion(bone_lesion_case(), comm),
        "galunisertib": run_bone_lesion(bone_lesion_case(("galunisertib",)), comm),
        "saturating_block": run_bone_lesion(
            bone_lesion_case(("galunisertib",), dose_factor=100.0), comm
        ),
        "no_matrix_release": run_bone_lesion(bone_lesion_case(matrix_tgf=0.0), comm),
        "denosumab": run_bone_lesion(bone_lesion_case(("denosumab",)), comm),
    }
    base = arms["untreated"]["osteolytic_volume_mm3"]

    def reduction(arm: str) -> float:
        return 100.0 * (1.0 - arms[arm]["osteolytic_volume_mm3"] / base)

    feedback = 100.0 * (arms["untreated"]["signal"] / arms["no_matrix_release"]["signal"] - 1)
    pb, kr = profile_chain()
    chain = chain_changes(arms["untreated"]["signal"], arms["galunisertib"]["signal"], pb, kr)
    rows = [
        _row(
            f"bone lesion, untreated: matrix volume resorbed in {DAYS} d (%)",
            "~50% (1D11-treated tumor-bearing mice: twofold bone volume)",
            "Biswas 2011 PLoS One 6:e27090",
            100.0 * arms["untreated"]["osteolytic_fraction"],
            (40.0, 60.0),
            kind="calibration",
            fmt="{:.0f}%",
            note="bone.resorption_rate calibrated on it (python benchmarks/validation/bone.py "
            "--calibrate)",
        ),
        _row(
            f"bone lesion: osteolysis reduction by galunisertib 150 mg BID, {DAYS} d (%)",
            f"{100 * (1 - PUBLISHED_RATIO):.0f}% (osteolytic lesion area 20520 vs 1497, 1D11)",
            "Biswas 2011 PLoS One 6:e27090 (MDA-MB-231, intracardiac, 1D11 10 mg/kg, 4 weeks)",
            reduction("galunisertib"),
            BAND,
            fmt="{:.0f}%",
            note=f"saturating TGFBR block: {reduction('saturating_block'):.0f}%; lesion "
            f"TGF-beta signal {arms['untreated']['signal']:.3f} untreated, "
            f"{arms['galunisertib']['signal']:.3f} on galunisertib ({chain['signal']:.0f}%; "
            f"free drug ~63 nM vs IC50 100 nM), PTHrP {chain['pthrp']:.0f}% (basal share "
            f"p_b {pb:g}), RANKL {chain['rankl']:.0f}% (saturation K {kr:g}); both assumptions "
            "unsourced: with p_b = 0 and K = 5 (recalibrated) 29%, saturating 97% "
            "(bone.py --scan); no matrix growth factors (IGF-I) feed tumor growth, so the burden, "
            "which also shrinks the X-ray lesion area, is unchanged; different drug (1D11)",
        ),
        _row(
            "bone lesion: TGF-beta signaling blockade reduces osteolysis (reduction > 0, %)",
            "less bone destruction with dominant-negative TbRII (qualitative)",
            "Yin 1999 J Clin Invest 103:197-206",
            reduction("saturating_block"),
            (0.0, 100.0),
            fmt="{:.0f}%",
            note=f"matrix TGF-beta release raises the lesion signal by {feedback:.1f}% "
            f"({100 * arms['untreated']['matrix_tgf_share']:.1f}% of TGF-beta production)",
        ),
        _row(
            f"bone lesion: osteolysis reduction by anti-RANKL (denosumab 120 mg SC q4w), {DAYS} d "
            "(%)",
            "100% (radiographic osteolytic lesions completely prevented; OPG-Fc)",
            "Morony 2001 Cancer Res 61:4432 (MDA-MB-231, intracardiac, nude mice, OPG-Fc)",
            reduction("denosumab"),
            RANKL_BAND,
            fmt="{:.0f}%",
            note="OPG-Fc (RANKL decoy receptor) in mice, not denosumab, which does not bind "
            "murine RANKL (Kostenuik 2009); lesion OC "
            f"{arms['untreated']['mean_osteoclast_lesion']:.2f} untreated, "
            f"{arms['denosumab']['mean_osteoclast_lesion']:.2f} on denosumab (normal 1); the "
            "source's 75% lower skeletal tumor burden is not modelled (no matrix growth factors)",
        ),
    ]
    return rows, {"arms": arms, "signal_gain_from_release_pct": feedback, "chain_pct": chain}


def profile_chain() -> tuple[float, float]:
    """The bone profile's PTHrP basal share p_b and RANKL saturation K (both assumptions)."""
    from tumorpde.config import config_from_dict

    bone = config_from_dict(bone_lesion_case()).bone
    assert bone is not None
    return bone.pthrp_basal, bone.rankl_half


def chain_changes(s0: float, s1: float, pb: float, k: float) -> dict[str, float]:
    """Relative change (%) of the lesion signal, PTHrP and RANKL (u = 1) from s0 to s1.

    P = p_b + (1 - p_b) S and R = (1 + K) P/(K + P) (:mod:`tumorpde.model.bone`): each link
    passes on only part of the signal's fall.
    """

    def links(s: float) -> tuple[float, float, float]:
        p = pb + (1 - pb) * s
        return s, p, (1 + k) * p / (k + p)

    a, b = links(s0), links(s1)
    names = ("signal", "pthrp", "rankl")
    return {n: 100.0 * (y / x - 1) for n, x, y in zip(names, a, b, strict=True)}


def scan_assumptions(comm: Any) -> dict[str, Any]:
    """Galunisertib and saturating-block reductions for other p_b and K (recalibrated).

    For each (pthrp_basal, rankl_half) the resorption rate is recalibrated so that the
    untreated lesion again resorbs half its matrix in DAYS; 5 runs per pair.
    """
    pb0, k0 = profile_chain()
    cases = ((pb0, k0), (0.0, k0), (pb0, 5.0), (0.0, 5.0))
    out: dict[str, Any] = {}

    def run(
        pb: float, k: float, drugs: tuple[str, ...] = (), dose: float = 1.0, rate: float = 4.4e-4
    ) -> dict[str, float]:
        case = bone_lesion_case(drugs, resorption_rate=rate, dose_factor=dose)
        case["bone"] |= {"pthrp_basal": pb, "rankl_half": k}
        return run_bone_lesion(case, comm)

    for pb, k in cases:
        rate, f = 4.4e-4, float("nan")
        for _ in range(3):
            f = run(pb, k, rate=rate)["osteolytic_fraction"]
            if abs(f - 0.5) < 0.005:
                break
            rate *= math.log(2.0) / -math.log(1.0 - f)
        base = run(pb, k, rate=rate)["osteolytic_volume_mm3"]
        red = {
            arm: 100.0 * (1.0 - run(pb, k, drugs, dose, rate)["osteolytic_volume_mm3"] / base)
            for arm, drugs, dose in (
                ("galunisertib", ("galunisertib",), 1.0),
                ("saturating_block", ("galunisertib",), 100.0),
            )
        }
        out[f"p_b={pb:g},K={k:g}"] = {"resorption_rate_per_h": rate, "reduction_pct": red}
    return out


def calibrate(comm: Any, iterations: int = 4) -> dict[str, float]:
    """``bone.resorption_rate`` at which the untreated lesion loses half its matrix in DAYS.

    M = M0 exp(-k_res int E dt) with E the excess osteoclast activity, which depends on k_res
    only through the (weak) matrix-release feedback: a fixed-point iteration on
    k_res <- k_res ln2 / (-ln(1 - f)) converges in a few steps.
    """
    k = 2.06e-4
    f = float("nan")
    for _ in range(iterations):
        f = run_bone_lesion(bone_lesion_case(resorption_rate=k), comm)["osteolytic_fraction"]
        k *= math.log(2.0) / -math.log(1.0 - f)
    return {"resorption_rate_per_h": k, "last_fraction": f}


def main(argv: list[str] | None = None) -> int:
    """Print the bone rows (or, with ``--calibrate``, the calibrated resorption rate)."""
    import argparse

    import tumorpde.fem.backend  # noqa: F401  (loads the MPI library first)
    from mpi4py import MPI

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument(
        "--scan", action="store_true", help="reductions for other p_b and K (~20 runs, ~5 min)"
    )
    args = ap.parse_args(argv)
    comm = MPI.COMM_SELF
    if args.calibrate:
        print(json.dumps(calibrate(comm), indent=2))
        return 0
    if args.scan:
        print(json.dumps(scan_assumptions(comm), indent=2))
        return 0
    rows, data = bone_rows(comm)
    for r in rows:
        print(
            f"{'pass' if r['pass'] else 'MISS'}  {r['row']}: model {r['model_text']} "
            f"(published {r['published']}; {r['note']})"
        )
    print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
