"""Microenvironment validation rows: tumor pO2 and hypoxic fraction of a lung metastasis.

The lung case's physics (``benchmarks/cases/lung_metastasis.toml``: oxygen with the re-sourced
consumption, dynamic vessels, hypoxic VEGF, necrosis) on a box around the lesion (the organ mesh
is ~100x larger than the lesion and costs minutes per simulated week); the lesion starts as the
case's 3 mm Gaussian seed at carrying capacity. After ``days`` the rows compare, over the lesion
(tumor + necrotic fraction >= 0.1, volume-weighted nodal values):

- the median pO2 with the median of human tumors (~10 mmHg; Vaupel, Kallinowski & Okunieff 1989,
  Cancer Res 49:6449-6465; Hoeckel & Vaupel 2001, JNCI 93:266-276); normal tissues have medians
  of ~40-60 mmHg;
- the hypoxic fraction HF2.5 (share of pO2 values <= 2.5 mmHg, the polarographic-electrode
  measure of the same sources), which is large in most human tumors above a few mm;

at the stated lesion size (equivalent-sphere diameter of the lesion volume).

Why HF2.5 misses (measured, 20 days): the lesion's dense part (u + n >= 0.3, 7 mm) has a
median of 9.0 mmHg, close to Vaupel's ~10 mmHg, and 80 % of it is below 10 mmHg, but only
0.5 % is at or below 2.5 mmHg, on 1 mm and 0.5 mm boxes alike (0.006 and 0.005: not a mesh
effect). The continuum pO2 is a ~1 mm^3 average and sits in a narrow 2.5-10 mmHg band: below
~1 mmHg cells die into necrosis (0.5/day) and necrotic tissue consumes nothing, so the average
cannot fall further. An electrode samples ~10-100 um around microvessels, where the
diffusion-limited (Thomlinson & Gray 1955) and perfusion-limited gradients put much of the
tissue below 2.5 mmHg around a 9 mmHg mean; the model has no sub-grid pO2 distribution
(e.g. Krogh cylinders around the vessels its density m describes). The row stays a MISS
until it has one.

Standalone: ``.venv/bin/python benchmarks/validation/microenvironment.py [--quick]``; with
``--run DIR`` it measures a stored run instead (e.g. the lung case on its organ mesh).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
LUNG_CASE = HERE.parent / "cases" / "lung_metastasis.toml"

#: Published medians (mmHg) and bands of the rows (see the module docstring).
MEDIAN_PO2_BAND = (2.0, 30.0)
HF25_BAND = (0.05, 0.9)
#: Density (u + n) of the lesion's dense part, reported beside the rows: the margin at 0.1-0.3
#: is mostly host tissue that a polarographic electrode track in the tumor mass would not sample.
DENSE = 0.3


def lesion_case(days: float, size_mm: float = 16.0, cells: int = 16) -> dict[str, Any]:
    """The lung case's tables on a box of ``size_mm`` around its seed, run for ``days``."""
    from tumorpde.config.resolve import read_case_tables

    tables = read_case_tables(LUNG_CASE)
    c = size_mm / 2
    tables["mesh"] = {"kind": "box", "size": [size_mm] * 3, "cells": [cells] * 3}
    seed = dict(tables["tumor"]["initial"])
    seed["center"] = [c, c, c]
    tables["tumor"] = {**tables["tumor"], "initial": seed}
    tables["time"] = {**tables["time"], "t_end": f"{days} day", "output_every": f"{days} day"}
    tables["output"] = {"picture": False}
    return tables


def node_statistics(
    w: Any, u: Any, nec: Any, o2: Any, m: Any, threshold: float = 0.1
) -> dict[str, float]:
    """Lesion statistics from nodal values and lumped nodal volumes ``w`` (mm^3).

    Returns:
        ``median_pO2_mmHg`` (volume-weighted, over the lesion u + n >= 0.1), ``hf25`` (lesion
        volume share at pO2 <= 2.5 mmHg), ``hf10`` (< 10 mmHg), ``lesion_mm3``,
        ``diameter_mm`` (equivalent sphere), ``necrotic_mm3``, ``viable_mm3``,
        ``vessel_mean`` (mean relative vessel density over the lesion),
        ``vessel_rim``/``vessel_core`` (mean relative vessel density over the lesion nodes with
        pO2 above / at or below 2.5 mmHg), ``pO2_rim_mmHg`` (mean pO2 over the lesion nodes
        with u >= 0.1 and pO2 > 2.5 mmHg).
    """
    import numpy as np

    les = u + nec >= threshold
    if not les.any():
        return {"lesion_mm3": 0.0}
    order = np.argsort(o2[les])
    cw = np.cumsum(w[les][order])
    median = float(o2[les][order][np.searchsorted(cw, 0.5 * cw[-1])])
    vol = float(w[les].sum())
    rim = les & (o2 > 2.5)
    core = les & (o2 <= 2.5)

    def mean(x: Any, where: Any) -> float:
        return float((w * x)[where].sum() / w[where].sum()) if where.any() else float("nan")

    return {
        "median_pO2_mmHg": median,
        "hf25": float(w[core].sum() / vol),
        "hf10": float(w[les & (o2 < 10.0)].sum() / vol),
        "lesion_mm3": vol,
        "diameter_mm": (6 * vol / math.pi) ** (1 / 3),
        "necrotic_mm3": float((w * nec).sum()),
        "viable_mm3": float((w * u).sum()),
        "vessel_mean": mean(m, les),
        "vessel_rim": mean(m, rim),
        "vessel_core": mean(m, core),
        "pO2_rim_mmHg": mean(o2, rim & (u >= 0.1)),
    }


def run_statistics(run_dir: str | Path, time: float | None = None) -> dict[str, float]:
    """:func:`node_statistics` of a stored run (``tumorpde run``) at ``time`` (h; last if None)."""
    import numpy as np

    from tumorpde.output.load import load_run

    grid = load_run(run_dir).dataset(time=time)
    vol = grid.compute_cell_sizes(length=False, area=False, volume=True)["Volume"]
    cells = grid.cells.reshape(-1, 5)[:, 1:]  # tetrahedra: [4, a, b, c, d]
    w = np.zeros(grid.n_points)
    np.add.at(w, cells.ravel(), np.repeat(np.abs(vol) / 4, 4))
    p = grid.point_data
    u = np.asarray(p["tumor"])
    nec = np.asarray(p["necrotic"]) if "necrotic" in p else np.zeros_like(u)
    m = np.asarray(p["vessel_density"]) if "vessel_density" in p else np.ones_like(u)
    return node_statistics(w, u, nec, np.asarray(p["oxygen"]), m)


def lesion_statistics(sim: Any, threshold: float = 0.1) -> dict[str, float]:
    """:func:`node_statistics` of a simulation's current state (collective, any rank count)."""
    import numpy as np
    import ufl
    from dolfinx import fem, la

    f = sim.state.fields
    V = f["tumor"].function_space
    n_own = V.dofmap.index_map.size_local
    dx = ufl.Measure("dx", metadata={"quadrature_rule": "vertex", "quadrature_degree": 1})
    mass = fem.assemble_vector(fem.form(ufl.TestFunction(V) * dx(domain=V.mesh)))
    mass.scatter_reverse(la.InsertMode.add)
    u = f["tumor"].x.array[:n_own]
    nec = f["necrotic"].x.array[:n_own] if "necrotic" in f else np.zeros_like(u)
    m = f["vessel_density"].x.array[:n_own] if "vessel_density" in f else np.ones_like(u)
    local = np.stack([mass.array[:n_own], u, nec, f["oxygen"].x.array[:n_own], m])
    parts = sim.comm.gather(local, root=0)
    out = (
        node_statistics(*np.concatenate(parts, axis=1), threshold=threshold)
        if sim.comm.rank == 0
        else {}
    )
    return sim.comm.bcast(out, root=0)


def microenvironment_rows(comm: Any, quick: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Median pO2 and HF2.5 of the lung-case lesion against Vaupel/Hoeckel (rows + data)."""
    from run import _row  # the validation table's row format

    from tumorpde.config import config_from_dict
    from tumorpde.simulation import Simulation

    days = 10.0 if quick else 20.0
    sim = Simulation(config_from_dict(lesion_case(days), base_dir=LUNG_CASE.parent), comm)
    for _ in sim.steps():
        pass
    stats: dict[str, Any] = dict(lesion_statistics(sim))
    dense = lesion_statistics(sim, threshold=DENSE)
    stats["dense"] = dense
    sim.solver.destroy()
    size = (
        f"lung-case lesion after {days:g} days, {stats['diameter_mm']:.1f} mm diameter "
        f"(u + n >= 0.1); its dense part (u + n >= {DENSE:g}, {dense['diameter_mm']:.1f} mm): "
        f"median {dense['median_pO2_mmHg']:.1f} mmHg, HF2.5 {dense['hf25']:.3f}, HF10 "
        f"{dense['hf10']:.2f}"
    )
    rows = [
        _row(
            "Tumor median pO2 (mmHg)",
            "~10 mmHg (human tumors; normal tissue ~40-60)",
            "Vaupel, Kallinowski & Okunieff 1989 Cancer Res 49:6449; Hoeckel & Vaupel 2001 JNCI "
            "93:266",
            stats["median_pO2_mmHg"],
            MEDIAN_PO2_BAND,
            note=size,
        ),
        _row(
            "Tumor hypoxic fraction HF2.5",
            "large in most human tumors above a few mm (share of pO2 readings <= 2.5 mmHg)",
            "Vaupel, Kallinowski & Okunieff 1989 Cancer Res 49:6449; Hoeckel & Vaupel 2001 JNCI "
            "93:266",
            stats["hf25"],
            HF25_BAND,
            fmt="{:.2f}",
            note=size,
        ),
    ]
    return rows, stats


def main(argv: list[str] | None = None) -> int:
    """Print the lesion statistics of the lung-case lesion (box set-up)."""
    import sys

    sys.path.insert(0, str(HERE))
    import tumorpde.fem.backend  # noqa: F401  (loads the MPI library first)
    from mpi4py import MPI

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 days instead of 20")
    ap.add_argument("--run", type=Path, help="only measure a stored run (e.g. the lung case)")
    args = ap.parse_args(argv)
    if args.run is not None:
        print(json.dumps(run_statistics(args.run), indent=2))
        return 0
    rows, stats = microenvironment_rows(MPI.COMM_WORLD, args.quick)
    if MPI.COMM_WORLD.rank == 0:
        from run import print_rows

        print(json.dumps(stats, indent=2))
        print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
