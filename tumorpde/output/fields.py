"""Field output: the writer of field files at output times, and the gather for pictures.

XDMF (default) writes ``fields.xdmf`` + ``fields.h5`` with the region tags; VTX writes
``fields.bp`` (ADIOS2). Both open in ParaView. :func:`gather_p1` collects owned tetrahedra and
P1 values on rank 0 for rendering (:mod:`tumorpde.output.viz`). Everything here is collective.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np
from dolfinx import fem, io, plot

if TYPE_CHECKING:
    from tumorpde.fem.domain import Domain

__all__ = ["FieldWriter", "gather_p1", "write_picture"]


class FieldWriter:
    """Writes a fixed set of P1 Functions at given times (collective).

    Args:
        outdir: The run directory.
        fmt: ``"xdmf"`` or ``"vtx"``.
        domain: The mesh with its region tags (written once with XDMF).
        functions: The Functions to write, in order.
    """

    def __init__(self, outdir: str | Path, fmt: str, domain: Domain, functions: list[fem.Function]):
        t0 = time.perf_counter()
        self.outdir = Path(outdir)
        self.fmt = fmt
        self.functions = functions
        comm = domain.comm
        self._writer: io.VTXWriter | io.XDMFFile | None
        if fmt == "vtx":
            self._writer = io.VTXWriter(
                comm, str(self.outdir / "fields.bp"), functions, engine="BP4"
            )
        else:
            self._writer = io.XDMFFile(comm, str(self.outdir / "fields.xdmf"), "w")
            self._writer.write_mesh(domain.mesh)
            self._writer.write_meshtags(domain.cell_tags, domain.mesh.geometry)
        self.seconds = time.perf_counter() - t0

    def write(self, t: float) -> None:
        """Write every Function at time ``t`` (h)."""
        t0 = time.perf_counter()
        assert self._writer is not None, "writer already closed"
        if isinstance(self._writer, io.VTXWriter):
            self._writer.write(t)
        else:
            for f in self.functions:
                self._writer.write_function(f, t)
        self.seconds += time.perf_counter() - t0

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def files(self) -> list[str]:
        """Names of the files written."""
        return ["fields.bp"] if self.fmt == "vtx" else ["fields.xdmf", "fields.h5"]


def gather_p1(
    V: fem.FunctionSpace, funcs: list[fem.Function], domain: Domain
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray] | None:
    """Gather owned tetrahedra, their vertex coordinates and P1 values to rank 0.

    Returns:
        ``(points, cells, values per function, cell region tags)`` on rank 0, None elsewhere.
        Points on partition boundaries are duplicated (harmless for rendering).
    """
    msh = V.mesh
    tdim = msh.topology.dim
    n_owned = msh.topology.index_map(tdim).size_local
    topo, ctypes, x = plot.vtk_mesh(V)
    npc = topo.size // ctypes.size  # 1 + vertices per cell
    cells = topo.reshape(-1, npc)[:n_owned, 1:]
    tags = np.zeros(n_owned, dtype=np.int32)
    ct = domain.cell_tags
    own = ct.indices < n_owned
    tags[ct.indices[own]] = ct.values[own]
    parts = msh.comm.gather((cells, x, [f.x.array.copy() for f in funcs], tags), root=0)
    if msh.comm.rank != 0:
        return None
    offsets = np.cumsum([0] + [p[1].shape[0] for p in parts[:-1]])
    all_cells = np.vstack([p[0] + o for p, o in zip(parts, offsets, strict=True)])
    points = np.vstack([p[1] for p in parts])
    values = [np.concatenate([p[2][i] for p in parts]) for i in range(len(funcs))]
    regions = np.concatenate([p[3] for p in parts])
    return points, all_cells, values, regions


def write_picture(
    path: str | Path,
    domain: Domain,
    functions: Mapping[str, fem.Function],
    labels: Mapping[str, str],
    *,
    title: str,
    time_h: float,
) -> Path | None:
    """Render P1 fields to a PNG on rank 0 (collective; None without pyvista)."""
    from tumorpde.output import viz

    funcs = list(functions.values())
    data = gather_p1(funcs[0].function_space, funcs, domain)
    result: str | None = None
    comm = domain.comm
    if comm.rank == 0:
        assert data is not None
        points, cells, values, regions = data
        result = viz.render_fields(
            points,
            cells,
            dict(zip(functions, values, strict=True)),
            path,
            cell_regions=regions,
            title=title,
            time_h=time_h,
            labels=dict(labels),
        )
    result = comm.bcast(result, root=0)
    return Path(result) if result else None
