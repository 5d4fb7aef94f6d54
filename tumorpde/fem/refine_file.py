"""``tumorpde mesh refine``: read a tagged ``.msh``, refine it around lesions, write it back.

The refinement is :func:`tumorpde.fem.refine.refine_domain` (parallel, tags kept); rank 0
writes the ``.msh`` (:func:`tumorpde.meshing.refine.write_mesh_arrays`) and its JSON sidecar.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np

from tumorpde.fem.refine import gather_mesh_arrays, refine_domain

if TYPE_CHECKING:
    from mpi4py import MPI

    from tumorpde.meshing.zones import RefineZone

__all__ = ["refine_msh_file"]


def refine_msh_file(
    src: str | Path,
    out: str | Path,
    zones: list[RefineZone],
    comm: MPI.Comm,
    binary: bool | None = None,
) -> dict[str, Any]:
    """Refine a tagged ``.msh`` around the zones and write it with its JSON sidecar.

    Collective: the mesh is read and refined over ``comm``; rank 0 writes ``out`` and
    ``out.with_suffix('.json')``. The sidecar keeps the input sidecar's provenance (source,
    licence, attribution, seed, ...) and replaces the mesh statistics (cells, volumes, areas,
    quality) with those of the refined mesh, plus a ``refinement`` record.

    Args:
        src: Input ``.msh`` (mm) with named physical groups.
        out: Output ``.msh``.
        zones: Refinement zones (mm), at least one.
        comm: Communicator.
        binary: MSH encoding; None writes whichever is smaller.

    Returns:
        The metadata written (on every rank).

    Raises:
        MeshingError: If a zone does not reach the mesh or no zone is given.
        MshError: If ``src`` is not a readable gmsh mesh.
    """
    import json
    import time

    from mpi4py import MPI

    from tumorpde.config import FileMesh
    from tumorpde.fem.domain import load_domain
    from tumorpde.meshing.info import mesh_info
    from tumorpde.meshing.labels import MeshingError
    from tumorpde.meshing.msh import check_msh_header

    t0 = time.perf_counter()
    src, out = Path(src), Path(out)
    if not zones:
        raise MeshingError("no refinement zone given (--around X,Y,Z --radius R --size H)")
    check_msh_header(src)
    domain = load_domain(FileMesh(kind="file", path=src.resolve()), comm)
    x = domain.mesh.geometry.x
    lo = np.array([comm.allreduce(float(v), op=MPI.MIN) for v in x.min(axis=0)])
    hi = np.array([comm.allreduce(float(v), op=MPI.MAX) for v in x.max(axis=0)])
    for z in zones:
        c = np.asarray(z.center)
        if np.linalg.norm(np.clip(c, lo, hi) - c) > z.radius:
            raise MeshingError(
                f"refine zone centre {list(z.center)} radius {z.radius:g} mm does not reach the "
                f"mesh {src} (bounding box {np.round(lo, 1).tolist()} to "
                f"{np.round(hi, 1).tolist()} mm)"
            )
    volumes_before = domain.region_volumes()
    refined, report = refine_domain(domain, zones)
    arrays = gather_mesh_arrays(refined)
    meta: dict[str, Any] = {}
    if comm.rank == 0:
        assert arrays is not None
        from tumorpde.meshing.refine import write_mesh_arrays

        out.parent.mkdir(parents=True, exist_ok=True)
        fmt = write_mesh_arrays(arrays, out, binary)
        info = mesh_info(arrays)
        side = src.with_suffix(".json")
        meta = json.loads(side.read_text()) if side.is_file() else {}
        meta.update(
            {
                "name": out.stem,
                "regions": info["regions"],
                "boundaries": info["boundaries"],
                "volumes_mm3": info["volumes_mm3"],
                "boundary_areas_mm2": info["boundary_areas_mm2"],
                "cells": info["cells"],
                "cells_per_region": info["cells_per_region"],
                "vertices": info["vertices"],
                "min_dihedral_deg": info["min_dihedral_deg"],
                "slivers_below_5deg": info["slivers"],
                "bounding_box_mm": info["bounding_box_mm"],
                "format": f"gmsh MSH 4.1 {fmt}",
                "refinement": {
                    "input": src.name,
                    "method": "edge bisection of the input mesh (DOLFINx Plaza refinement) "
                    "until no edge crossing a zone is longer than its size; vertices not "
                    "moved, tags inherited",
                    "zones_mm": [
                        {"center": list(z.center), "radius": z.radius, "size": z.size}
                        for z in zones
                    ],
                    "cells_before": report.cells_before,
                    "edges_split_per_round": report.edges_split,
                    "input_volumes_mm3": {k: round(v, 1) for k, v in volumes_before.items()},
                },
                "build_time_s": round(time.perf_counter() - t0, 2),
            }
        )
        out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return comm.bcast(meta, root=0)
