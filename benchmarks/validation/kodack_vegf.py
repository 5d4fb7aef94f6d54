"""Anti-VEGF + anti-HER2 in the brain: Kodack et al. 2012 against the vascular HER2 brain case.

Published experiment: Kodack DP et al. 2012, PNAS 109:E3119-E3127 (BT474 HER2-amplified breast
cancer cells implanted in the mouse brain). Trastuzumab or lapatinib alone failed to contain
growth in the brain; adding an anti-VEGFR2 antibody (DC101) or anti-VEGF (B20-4.1.1) to the
HER2 inhibitor significantly slowed brain-tumor growth, reduced total and functional
microvascular density, and markedly increased necrosis (abstract and Figs. 3-4). The published
effects are qualitative here (directions, with significance), so the rows are one-sided.

Model set-up: the physics of ``benchmarks/cases/her2_brain_vascular.toml`` (HER2 brain lesion
with oxygen, dynamic vessels, hypoxic VEGF, necrosis; brain profile values for a box without
grey/white regions) on a box of ``size_mm`` around the lesion (the organ mesh costs minutes per
arm), ``days`` from the first dose. Arms: untreated, trastuzumab q3w, bevacizumab 15 mg/kg q3w
(the human anti-VEGF; B20 is its mouse-cross-reactive analogue) and trastuzumab + bevacizumab.
Rows (the combination against trastuzumab alone, as in the paper):

- final tumor burden ratio < 1 (growth slowed),
- mean relative vessel density over the lesion lower,
- necrotic volume higher.

Why all three rows miss (measured, 28 days, 16 mm box at 1 mm): the lesion stays normoxic
(median pO2 29.3 mmHg in every arm against the host's 30), so hypoxic VEGF never switches on,
free VEGF stays below the endothelial K_V (saturation ~0.1 from the basal tumor secretion)
and bevacizumab has almost nothing to trap: lesion vessel density 0.623 (trastuzumab) vs 0.617
(combination), viable burden 84.63 vs 84.62 mm^3, necrosis ~0.0015 mm^3 in both. Vessels do
regress in the lesion (0.64 untreated), but the brain's oxygen supply (derived from its own
uptake, 3300 /h at 30 mmHg) sustains the lesion's consumption even at a fifth of the host
vessel density. The paper's lesions were VEGF-dependent; the model's are not, for two
assumptions that drive the result: VEGF-independent co-opted vessels (regression needs the
tumor, sprouting needs VEGF above K_V) and the low basal tumor VEGF secretion (0.05
molecules/cell/s, library VEGFR2, unsourced). Open: a VEGF-dependent tumor vasculature
(survival of tumor vessels on VEGF at normoxia; Jain 2005) and a sourced BT474 VEGF secretion.

Run alone::

    .venv/bin/python benchmarks/validation/kodack_vegf.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CASE = HERE.parent / "cases" / "her2_brain_vascular.toml"
SOURCE = (
    "Kodack 2012 PNAS 109:E3119 (BT474 brain xenografts, anti-VEGFR2/anti-VEGF + HER2 inhibitor)"
)
#: Bands of the one-sided rows: at least a 5 % smaller burden, a 10 % lower vessel density and
#: 10 % more necrosis than trastuzumab alone (the paper reports significant differences, so a
#: difference inside the model's time error, ~1e-3, does not count).
BURDEN_BAND = (0.0, 0.95)
VESSEL_BAND = (0.0, 0.9)
NECROSIS_BAND = (1.1, float("inf"))
ARMS: dict[str, list[str]] = {
    "untreated": [],
    "trastuzumab": ["trastuzumab"],
    "bevacizumab": ["bevacizumab"],
    "trastuzumab+bevacizumab": ["trastuzumab", "bevacizumab"],
}


def box_case(drugs: list[str], days: float, size_mm: float = 16.0, cells: int = 16) -> dict:
    """The vascular HER2 brain case's tables on a box around its seed, ``drugs`` given."""
    from tumorpde.config.resolve import read_case_tables

    tables = read_case_tables(CASE)
    c = size_mm / 2
    tables["mesh"] = {"kind": "box", "size": [size_mm] * 3, "cells": [cells] * 3}
    seed = dict(tables["tumor"]["initial"])
    seed["center"] = [c, c, c]
    tables["tumor"] = {**tables["tumor"], "initial": seed}
    tables["time"] = {**tables["time"], "t_end": f"{days} day", "output_every": f"{days} day"}
    tables["output"] = {"picture": False}
    tables.pop("compare", None)
    therapy = dict(tables["therapy"])
    therapy["treatments"] = [t for t in therapy["treatments"] if t["drug"] in drugs]
    tables["therapy"] = therapy
    return tables


def run_arm(comm: Any, drugs: list[str], days: float) -> dict[str, float]:
    """Burden (mm^3), lesion statistics and lesion-mean vessel density after ``days``."""
    from microenvironment import lesion_statistics

    from tumorpde.config import config_from_dict
    from tumorpde.simulation import Simulation

    sim = Simulation(config_from_dict(box_case(drugs, days), base_dir=CASE.parent), comm)
    for _ in sim.steps():
        pass
    stats = lesion_statistics(sim, threshold=0.1)
    out = {k: float(v) for k, v in stats.items()}
    out["burden_mm3"] = out.get("viable_mm3", 0.0)
    sim.solver.destroy()
    return out


def kodack_vegf_rows(comm: Any, quick: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The three rows (combination vs trastuzumab alone) and the arms' data."""
    from run import _row  # the validation table's row format

    days = 14.0 if quick else 28.0
    arms = {name: run_arm(comm, drugs, days) for name, drugs in ARMS.items()}
    t, tb = arms["trastuzumab"], arms["trastuzumab+bevacizumab"]
    b = {name: a["burden_mm3"] for name, a in arms.items()}
    note = (
        f"box around the lesion, {days:g} d; viable burden untreated {b['untreated']:.1f}, "
        f"trastuzumab {b['trastuzumab']:.1f}, bevacizumab {b['bevacizumab']:.1f}, "
        f"combination {b['trastuzumab+bevacizumab']:.1f} mm^3"
    )
    rows = [
        _row(
            "Kodack 2012: trastuzumab + anti-VEGF vs trastuzumab, brain: viable burden ratio",
            "growth significantly slowed (ratio < 1)",
            SOURCE,
            tb["burden_mm3"] / t["burden_mm3"],
            BURDEN_BAND,
            fmt="{:.3f}",
            note=note,
        ),
        _row(
            "Kodack 2012: trastuzumab + anti-VEGF vs trastuzumab, brain: vessel density ratio",
            "lower total microvascular density (< 1)",
            SOURCE,
            tb["vessel_mean"] / t["vessel_mean"],
            VESSEL_BAND,
            fmt="{:.3f}",
            note=(
                f"mean relative vessel density over the lesion: {t['vessel_mean']:.3f} vs "
                f"{tb['vessel_mean']:.3f}"
            ),
        ),
        _row(
            "Kodack 2012: trastuzumab + anti-VEGF vs trastuzumab, brain: necrotic volume ratio",
            "marked increase in necrosis (> 1)",
            SOURCE,
            tb["necrotic_mm3"] / max(t["necrotic_mm3"], 1e-12),
            NECROSIS_BAND,
            fmt="{:.2f}",
            note=f"necrotic volume {t['necrotic_mm3']:.3f} vs {tb['necrotic_mm3']:.3f} mm^3",
        ),
    ]
    return rows, {"days": days, "arms": arms}


def main(argv: list[str] | None = None) -> int:
    """Run the four arms and print the rows."""
    sys.path.insert(0, str(HERE))
    import tumorpde.fem.backend  # noqa: F401  (loads the MPI library first)
    from mpi4py import MPI

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="14 days instead of 28")
    args = ap.parse_args(argv)
    rows, data = kodack_vegf_rows(MPI.COMM_WORLD, args.quick)
    if MPI.COMM_WORLD.rank == 0:
        from run import print_rows

        print(json.dumps(data, indent=2))
        print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
