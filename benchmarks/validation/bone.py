"""Bone validation: osteolysis of a breast-cancer bone lesion under TGF-beta inhibition.

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
continuous 1D11 dosing) and a complete TGFBR signal block (the upper bound of any TGF-beta
inhibitor). The row compares the fractional reduction of the osteolytic (resorbed) volume.
The endpoints differ (X-ray lesion area, which also falls with the smaller tumor burden, vs
resorbed matrix volume at equal tumor burden in the model), and so do the drugs (antibody
ligand trap vs kinase inhibitor at human exposure): the band is wide and one-sided.

Also reported: the matrix share of TGF-beta production in the lesion and the TGF-beta signal
with and without matrix release (the feedback of the cycle).

Run alone::

    .venv/bin/python benchmarks/validation/bone.py            # ~1 min, 1 rank
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
            "treatments": [
                {
                    "drug": d,
                    "regimen": "intermittent_bid",
                    "on": f"{t_end_day + 1} day",
                    "dose": f"{150 * dose_factor:g} mg",
                }
                for d in drugs
            ],
        }
    return case


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
    """Osteolysis without and with TGF-beta inhibition; the matrix-release feedback.

    Args:
        comm: Communicator of each run.
        quick: Unused (the set-up is already small: 5 runs of a few seconds).

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
    }
    base = arms["untreated"]["osteolytic_volume_mm3"]

    def reduction(arm: str) -> float:
        return 100.0 * (1.0 - arms[arm]["osteolytic_volume_mm3"] / base)

    feedback = 100.0 * (arms["untreated"]["signal"] / arms["no_matrix_release"]["signal"] - 1)
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
            f"{arms['galunisertib']['signal']:.3f} on galunisertib; different drug and endpoint",
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
    ]
    return rows, {"arms": arms, "signal_gain_from_release_pct": feedback}


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
    args = ap.parse_args(argv)
    comm = MPI.COMM_SELF
    if args.calibrate:
        print(json.dumps(calibrate(comm), indent=2))
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
