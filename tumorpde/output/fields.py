"""Field output: the writer of field files at output times, and the gather for pictures.

VTKHDF (default) writes one ``fields/fields_<k>.vtkhdf`` per output time and the series
``fields.vtkhdf.series`` (ParaView) + ``fields.pvd`` (PyVista ``get_reader``) naming them; XDMF
writes ``fields.xdmf`` + ``fields.h5`` with the region tags; VTX writes ``fields.bp`` (ADIOS2
BP4). :func:`tumorpde.output.load.load_run` reads VTKHDF and XDMF back. :func:`gather_p1`
collects owned tetrahedra and P1 values on rank 0 for rendering (:mod:`tumorpde.output.viz`).
Everything here is collective.

VTKHDF layout (format 2.0, an ``UnstructuredGrid``; read by VTK >= 9.3's ``vtkHDFReader``,
``pyvista.read``, ParaView >= 5.12 and h5py): ``fields/mesh.vtkhdf`` holds the points (mm), the
tetrahedra and ``CellData/region`` (the region tag); ``fields/boundary.vtkhdf`` the boundary
triangles with ``CellData/boundary`` (the facet tag); each time file links to the mesh's
datasets (HDF5 external links, so the mesh is stored once) and holds ``PointData/<field>``
(attribute ``units``) and ``FieldData/time`` (h). Every ``/VTKHDF`` group carries the attributes
``regions`` and ``boundaries`` (JSON: name -> tag) and ``time_unit``/``length_unit``. The owned
values are gathered to rank 0 in the global node order and written there with h5py (pip's h5py
has no parallel HDF5, and ``dolfinx.io.vtkhdf`` of DOLFINx 0.11 writes unnamed arrays only):
the gather is one ``MPI_Gather`` of the owned values per field and time.

Durability: the files are readable up to the last completed output time whatever stops the run
(``kill -9``, a killed rank, SIGTERM, a full disk). VTKHDF: a time file is complete before rank
0 publishes the series (atomic replace), so a series only ever names whole files, and a rank
killed during a write can only damage the unpublished file. XDMF: HDF5 is only consistent once
the file is closed, so :class:`FieldWriter` opens the XDMF file in append mode for each output
time and closes it again (about as fast as keeping it open: the cost is in the data). DOLFINx
rewrites the XDMF XML in place on every ``write_function``, so it writes a working copy in
``OUTDIR/.fields/`` (whose ``fields.h5`` is a symbolic link to ``../fields.h5``) and rank 0
publishes it to ``OUTDIR/fields.xdmf`` atomically after each output time (a rank killed inside
the collective HDF5 write can still damage ``fields.h5``). ADIOS2's BP4 engine (VTX) flushes data
and index at every step by itself. A write error (HDF5, ENOSPC, ...) is reduced over the ranks
and raised on all of them as :class:`tumorpde.output.rundir.OutputWriteError` naming the file;
before each output time the free space is checked against the size of one output, so a full
disk is usually caught before HDF5 sees it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)
from mpi4py import MPI

import numpy as np
from dolfinx import fem, io, plot

from tumorpde.output.load import SERIES
from tumorpde.output.rundir import OutputWriteError, write_text_atomic

if TYPE_CHECKING:
    from tumorpde.fem.domain import Domain

__all__ = ["FieldWriter", "gather_p1", "output_files", "stale_handles", "write_picture"]

#: Working folder of the XDMF writer inside the run directory.
WORK = ".fields"
#: File handles whose close failed (kept alive: their C++ destructor would throw and abort).
_STALE: list[Any] = []


def stale_handles() -> bool:
    """Whether a field file could not be closed after a write error.

    HDF5 then aborts the process when it shuts down at exit (an assertion in its metadata
    cache, exit 134). A command that wants its own exit code ends with ``os._exit`` instead.
    """
    return bool(_STALE)


def _leak(obj: Any) -> None:
    """Keep ``obj`` alive until the process ends (its destructor must never run)."""
    _STALE.append(obj)
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


def _h5py() -> Any:
    import h5py

    return h5py


def _vtkhdf_group(f: Any, *, regions: Mapping[str, int], boundaries: Mapping[str, int]) -> Any:
    """The ``/VTKHDF`` root of an UnstructuredGrid file (version 2.0) with the tag names."""
    h5py = _h5py()
    g = f.create_group("VTKHDF")
    g.attrs["Version"] = np.array([2, 0], dtype=np.int64)  # FieldData: 2.0 (VTK >= 9.3)
    kind = b"UnstructuredGrid"
    g.attrs.create("Type", kind, dtype=h5py.string_dtype("ascii", len(kind)))
    g.attrs["regions"] = json.dumps(dict(regions))
    g.attrs["boundaries"] = json.dumps(dict(boundaries))
    g.attrs["length_unit"] = "mm"
    g.attrs["time_unit"] = "h"
    return g


def _write_grid(
    g: Any, points: Any, cells: np.ndarray, vtk_type: int, cell_data: Mapping[str, np.ndarray]
) -> None:
    """Points (array or link), cells of one type and cell arrays into ``/VTKHDF`` ``g``."""
    n, k = cells.shape
    g["Points"] = points
    g["NumberOfCells"] = np.array([n], dtype=np.int64)
    g["NumberOfConnectivityIds"] = np.array([n * k], dtype=np.int64)
    g["Connectivity"] = cells.astype(np.int64).ravel()
    g["Offsets"] = np.arange(0, n * k + 1, k, dtype=np.int64)
    g["Types"] = np.full(n, vtk_type, dtype=np.uint8)
    cd = g.create_group("CellData")
    for name, values in cell_data.items():
        cd[name] = values


class _VtkhdfSeries:
    """One VTKHDF file per output time + the series files (see the module docstring).

    The mesh and the maps from each Function's owned dofs to global node numbers are set up
    once; a time is one gather of owned values per Function and a rank-0 h5py write.
    """

    #: Link targets of a time file in ``mesh.vtkhdf``.
    MESH_DATASETS = (
        "Points",
        "NumberOfPoints",
        "NumberOfCells",
        "NumberOfConnectivityIds",
        "Connectivity",
        "Offsets",
        "Types",
    )

    def __init__(
        self,
        outdir: Path,
        stem: str,
        domain: Domain,
        functions: list[fem.Function],
        units: Mapping[str, str],
    ) -> None:
        try:  # on every rank, before any collective: all raise together
            _h5py()
        except ImportError as exc:
            raise RuntimeError(
                'output.format = "vtkhdf" needs h5py (pip install h5py, or install '
                'tumorpde[fenics]); or set output.format = "xdmf"'
            ) from exc
        self.outdir = outdir
        self.stem = stem
        self.dir = outdir / stem
        self.series = outdir / f"{stem}{SERIES}"
        self.pvd = outdir / f"{stem}.pvd"
        self.comm = domain.comm
        self.functions = functions
        self.units = {f.name: units.get(f.name, "") for f in functions}
        self.regions = dict(domain.regions)
        self.boundaries = dict(domain.boundaries)
        self.entries: list[tuple[float, str]] = []
        msh = domain.mesh
        geom = msh.geometry
        self._n_nodes = geom.index_map().size_local
        g = geom.dofmaps[0]
        self._perm: dict[int, np.ndarray] = {}
        for f in functions:  # owned node values = f.x.array[perm] (P1 on an affine mesh)
            V = f.function_space
            key = id(V)
            if key in self._perm:
                continue
            dm = V.dofmap.list
            if V.dofmap.index_map_bs != 1 or dm.shape != g.shape:
                raise ValueError(f"field {f.name!r}: VTKHDF output needs scalar P1 Functions")
            perm = np.empty(geom.index_map().size_local + geom.index_map().num_ghosts, np.int64)
            perm[g.ravel()] = dm.ravel()
            self._perm[key] = perm[: self._n_nodes]
        tdim = msh.topology.dim
        n_cells = msh.topology.index_map(tdim).size_local
        l2g = geom.index_map().local_to_global
        cells = l2g(g[:n_cells].ravel().astype(np.int32)).reshape(n_cells, -1)
        regions = np.zeros(n_cells, dtype=np.int32)
        ct = domain.cell_tags
        own = ct.indices < n_cells
        regions[ct.indices[own]] = ct.values[own]
        # boundary facets: topology vertices -> geometry nodes through the cells
        msh.topology.create_connectivity(tdim - 1, 0)
        c2v = msh.topology.connectivity(tdim, 0).array.reshape(g.shape[0], -1)
        v2n = np.empty(int(c2v.max()) + 1 if c2v.size else 0, dtype=np.int32)
        v2n[c2v.ravel()] = g[:, : c2v.shape[1]].ravel()
        ft = domain.facet_tags
        n_facets = msh.topology.index_map(tdim - 1).size_local
        fown = ft.indices < n_facets
        f2v = msh.topology.connectivity(tdim - 1, 0)
        fidx = ft.indices[fown]
        if fidx.size:
            fv = f2v.array.reshape(-1, 3)[fidx]  # tetrahedra: 3 vertices per facet
            tri = l2g(v2n[fv].ravel().astype(np.int32)).reshape(fidx.size, -1)
        else:
            tri = np.zeros((0, 3), dtype=np.int64)
        parts = self.comm.gather(
            (geom.x[: self._n_nodes].copy(), cells, regions, tri, ft.values[fown]), root=0
        )
        self._mesh = None
        if self.comm.rank == 0:
            assert parts is not None
            self._mesh = (
                np.vstack([p[0] for p in parts]),
                np.vstack([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]),
                np.vstack([p[3] for p in parts]),
                np.concatenate([p[4] for p in parts]).astype(np.int32),
            )

    def prepare(self) -> None:
        """Remove an earlier segment of this stem (rank 0; the caller reduces errors)."""
        if self.comm.rank == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            for p in (self.series, self.pvd):
                p.unlink(missing_ok=True)
            self.dir.mkdir()

    def write_mesh(self) -> None:
        """``mesh.vtkhdf`` and ``boundary.vtkhdf`` (rank 0)."""
        if self.comm.rank != 0:
            return
        assert self._mesh is not None
        h5py = _h5py()
        pts, cells, regions, tri, btags = self._mesh
        meta = {"regions": self.regions, "boundaries": self.boundaries}
        with h5py.File(self.dir / "mesh.vtkhdf", "w") as f:
            g = _vtkhdf_group(f, **meta)
            _write_grid(g, pts, cells, 10, {"region": regions})
            g["NumberOfPoints"] = np.array([pts.shape[0]], dtype=np.int64)
            g["CellData/region"].attrs["names"] = json.dumps(self.regions)
        with h5py.File(self.dir / "boundary.vtkhdf", "w") as f:
            g = _vtkhdf_group(f, **meta)
            pts_link = h5py.ExternalLink("mesh.vtkhdf", "/VTKHDF/Points")
            _write_grid(g, pts_link, tri, 5, {"boundary": btags})
            g["NumberOfPoints"] = h5py.ExternalLink("mesh.vtkhdf", "/VTKHDF/NumberOfPoints")
            g["CellData/boundary"].attrs["names"] = json.dumps(self.boundaries)
        self._mesh = None  # written: the time files link to it

    def next_name(self) -> str:
        """Name (relative to the run directory) of the next time file."""
        return f"{self.stem}/{self.stem}_{len(self.entries):06d}.vtkhdf"

    def write(self, t: float) -> None:
        """One time file (gather + rank-0 write), then the series files (collective)."""
        values = [f.x.array[self._perm[id(f.function_space)]] for f in self.functions]
        parts = self.comm.gather(values, root=0)
        name = self.next_name()
        if self.comm.rank != 0:
            self.entries.append((float(t), name))  # the same list on every rank
            return
        assert parts is not None
        h5py = _h5py()
        path = self.outdir / name
        with h5py.File(path, "w") as f:
            g = _vtkhdf_group(f, regions=self.regions, boundaries=self.boundaries)
            for key in self.MESH_DATASETS:
                g[key] = h5py.ExternalLink("mesh.vtkhdf", f"/VTKHDF/{key}")
            cd = g.create_group("CellData")
            cd["region"] = h5py.ExternalLink("mesh.vtkhdf", "/VTKHDF/CellData/region")
            pd = g.create_group("PointData")
            pd.attrs["order"] = json.dumps([fn.name for fn in self.functions])
            for i, fn in enumerate(self.functions):
                pd[fn.name] = np.concatenate([p[i] for p in parts])
                pd[fn.name].attrs["units"] = self.units[fn.name]
            fd = g.create_group("FieldData")
            fd["time"] = np.array([t], dtype=np.float64)
            fd["time"].attrs["units"] = "h"
        with open(path, "rb+") as fh:  # on disk before the series names it
            os.fsync(fh.fileno())
        self.entries.append((float(t), name))
        self.publish()

    def publish(self) -> None:
        """Replace the series files atomically (rank 0): each names only complete files."""
        files = [{"name": n, "time": t} for t, n in self.entries]
        write_text_atomic(
            self.series,
            json.dumps({"file-series-version": "1.0", "files": files}, indent=1) + "\n",
        )
        rows = "".join(
            f'    <DataSet timestep="{t!r}" part="0" file="{n}"/>\n' for t, n in self.entries
        )
        write_text_atomic(
            self.pvd,
            '<?xml version="1.0"?>\n<VTKFile type="Collection" version="1.0">\n'
            f"  <Collection>\n{rows}  </Collection>\n</VTKFile>\n",
        )


class FieldWriter:
    """Writes a fixed set of P1 Functions at given times (collective).

    Args:
        outdir: The run directory.
        fmt: ``"vtkhdf"``, ``"xdmf"`` or ``"vtx"``.
        domain: The mesh with its region (and, VTKHDF, boundary) tags, written once.
        functions: The Functions to write, in order.
        min_free_bytes: Extra free space required before each output time (besides one
            output's size).
        stem: File name stem (``fields``; a resumed run continues in ``fields.r1``, ...).
        units: Unit of each Function by name (VTKHDF stores it as an attribute).

    Raises:
        OutputWriteError: On every rank, if the files cannot be written.
    """

    def __init__(
        self,
        outdir: str | Path,
        fmt: str,
        domain: Domain,
        functions: list[fem.Function],
        *,
        min_free_bytes: int = 1 << 20,
        stem: str = "fields",
        units: Mapping[str, str] | None = None,
    ):
        t0 = time.perf_counter()
        self.stem = stem
        self.outdir = Path(outdir)
        self.fmt = fmt
        self.functions = functions
        self.comm = domain.comm
        self.min_free_bytes = min_free_bytes
        self.writes = 0
        self.times: list[float] = []
        n = sum(f.function_space.dofmap.index_map.size_global for f in functions)
        self._bytes_per_output = 8 * n + 4096 * max(1, len(functions))
        self._writer: io.VTXWriter | io.XDMFFile | None = None
        self._open = False
        self._series: _VtkhdfSeries | None = None
        if fmt == "vtkhdf":
            self._series = _VtkhdfSeries(self.outdir, stem, domain, functions, units or {})
            self.path = self._series.series
            self._check_space(mesh=True)
            self._guard(self._series.prepare, "prepare the folder of")
            self.path = self._series.dir / "mesh.vtkhdf"
            self._guard(self._series.write_mesh, "write the mesh to")
            self.path = self._series.series
        elif fmt == "vtx":
            self.path = self.outdir / f"{stem}.bp"
            self._check_space()
            self._guard(
                lambda: setattr(
                    self,
                    "_writer",
                    io.VTXWriter(self.comm, str(self.path), functions, engine="BP4"),
                ),
                "open",
            )
            self._open = True
        else:
            self.path = self.outdir / f"{stem}.h5"
            self.xdmf = self.outdir / f"{stem}.xdmf"
            self._work = self._prepare_work()

            def first() -> None:
                w = io.XDMFFile(self.comm, str(self._work), "w")
                self._writer = w
                w.write_mesh(domain.mesh)
                w.write_meshtags(domain.cell_tags, domain.mesh.geometry)
                w.close()
                self._writer = None

            self._check_space()
            self._guard(first, "write the mesh to")
            self._publish()
        self.seconds = time.perf_counter() - t0

    # -------------------------------------------------------------- XDMF working copy
    def _prepare_work(self) -> Path:
        """``OUTDIR/.fields/fields.xdmf`` with ``fields.h5 -> ../fields.h5`` (rank 0 makes it)."""
        stem = self.stem
        work = self.outdir / (WORK if stem == "fields" else f".{stem}")
        ok = True
        if self.comm.rank == 0:
            shutil.rmtree(work, ignore_errors=True)
            for name in (f"{stem}.xdmf", f"{stem}.h5"):
                (self.outdir / name).unlink(missing_ok=True)
            try:
                work.mkdir()
                os.symlink(Path("..") / f"{stem}.h5", work / f"{stem}.h5")
            except OSError:  # no symbolic links here: DOLFINx writes the XML in place
                shutil.rmtree(work, ignore_errors=True)
                ok = False
        ok = self.comm.bcast(ok, root=0)
        return work / f"{stem}.xdmf" if ok else self.xdmf

    def _publish(self) -> None:
        """Replace ``fields.xdmf`` by the working XML atomically (rank 0; collective)."""
        err = None
        code = None
        if self.comm.rank == 0 and self._work != self.xdmf:
            tmp = self.outdir / f".{self.stem}.xdmf.tmp"
            try:
                shutil.copyfile(self._work, tmp)
                os.replace(tmp, self.xdmf)
            except OSError as exc:
                err = f"{exc.strerror or exc}"
                code = exc.errno
                with contextlib.suppress(OSError):
                    tmp.unlink()
        err, code = self.comm.bcast((err, code), root=0)
        if err is not None:
            raise OutputWriteError(code, err, str(self.xdmf))

    # -------------------------------------------------------------- error handling
    def _check_space(self, mesh: bool = False) -> None:
        """Raise ENOSPC on all ranks if the run directory lacks room for one more output."""
        need = 2 * self._bytes_per_output + self.min_free_bytes
        if mesh:  # VTKHDF's mesh file: points, connectivity, offsets, types, tags
            need += 40 * (self._bytes_per_output // max(1, len(self.functions)))
        free = None
        if self.comm.rank == 0:
            with contextlib.suppress(OSError):
                st = os.statvfs(self.outdir)
                free = st.f_bavail * st.f_frsize
        free = self.comm.bcast(free, root=0)
        if free is not None and free < need:
            raise OutputWriteError(
                errno.ENOSPC,
                f"No space left on device: {free} bytes free, one output time needs about "
                f"{self._bytes_per_output}; the fields up to t = "
                f"{self.times[-1] if self.times else 'none'} h are kept",
                str(self.path),
            )

    def _guard(self, action: Callable[[], None], what: str) -> None:
        """Run a collective file action; an error on any rank is raised on every rank."""
        err: str | None = None
        code: int | None = None
        try:
            action()
        except (RuntimeError, OSError, ValueError, TypeError, KeyError) as exc:
            err = f"{type(exc).__name__}: {exc}"
            code = getattr(exc, "errno", None)
        errs = self.comm.allgather((err, code))
        bad = [(r, e, c) for r, (e, c) in enumerate(errs) if e is not None]
        if not bad:
            return
        # still open everywhere: try to close it (collective); never let a broken one be destroyed
        if self.comm.allreduce(self._writer is not None, op=MPI.LAND):
            w, self._writer = self._writer, None
            close_err = None
            try:
                assert w is not None
                w.close()
            except (RuntimeError, OSError) as exc:
                close_err = str(exc)
            if close_err is not None:
                _leak(w)
        elif self._writer is not None:
            _leak(self._writer)
            self._writer = None
        self._open = False
        code = next((c for _, _, c in bad if c), None)
        free = ""
        with contextlib.suppress(OSError):
            st = os.statvfs(self.outdir)
            if st.f_bavail * st.f_frsize < self._bytes_per_output:
                code = code or errno.ENOSPC
                free = " (the disk is full)"
        ranks = ", ".join(str(r) for r, _, _ in bad)
        raise OutputWriteError(
            code,
            f"could not {what} the field file{free} (rank(s) {ranks}: {bad[0][1]}); the fields "
            f"up to t = {self.times[-1] if self.times else 'none'} h are kept",
            str(self.path),
        )

    # -------------------------------------------------------------- writing
    def write(self, t: float) -> None:
        """Write every Function at time ``t`` (h); the files are consistent when it returns.

        Raises:
            OutputWriteError: On every rank, naming the file, if any rank failed to write.
        """
        t0 = time.perf_counter()
        self._check_space()
        if self._series is not None:
            series = self._series
            self.path = series.outdir / series.next_name()
            self._guard(lambda: series.write(t), "write")
            self.path = series.series
        elif self.fmt == "vtx":
            assert self._open, "writer already closed"
            w = self._writer
            assert isinstance(w, io.VTXWriter)
            self._guard(lambda: w.write(t), "write")
        else:

            def append() -> None:
                w = io.XDMFFile(self.comm, str(self._work), "a")
                self._writer = w
                for f in self.functions:
                    w.write_function(f, t)
                w.close()
                self._writer = None

            self._guard(append, "write")
            self._publish()
        self.writes += 1
        self.times.append(t)
        self.seconds += time.perf_counter() - t0

    def close(self) -> None:
        """Close the file (idempotent; collective for VTX). The files stay readable."""
        if self._series is not None:
            return  # every time file is closed when written
        if self.fmt == "vtx":
            if self._open and self._writer is not None:
                w = self._writer
                self._guard(w.close, "close")
                self._writer = None
            self._open = False
        elif self._work != self.xdmf and self.comm.rank == 0 and self.xdmf.is_file():
            shutil.rmtree(self._work.parent, ignore_errors=True)

    def files(self) -> list[str]:
        """Names of the files written."""
        return output_files(self.fmt, self.stem)

    def cost_per_output(self) -> float:
        """Mean wall time (s) per output time so far."""
        return self.seconds / max(1, self.writes)


def output_files(fmt: str, stem: str = "fields") -> list[str]:
    """Names of the field files (and folders) of format ``fmt``, the main file first."""
    if fmt == "vtkhdf":
        return [f"{stem}{SERIES}", f"{stem}.pvd", stem]
    return [f"{stem}.bp"] if fmt == "vtx" else [f"{stem}.xdmf", f"{stem}.h5"]


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
