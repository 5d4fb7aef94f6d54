"""Field output: the writer of field files at output times, and the gather for pictures.

XDMF (default) writes ``fields.xdmf`` + ``fields.h5`` with the region tags; VTX writes
``fields.bp`` (ADIOS2 BP4). Both open in ParaView. :func:`gather_p1` collects owned tetrahedra
and P1 values on rank 0 for rendering (:mod:`tumorpde.output.viz`). Everything here is
collective.

Durability: the files are readable up to the last completed output time whatever stops the run
(``kill -9``, a killed rank, SIGTERM, a full disk). HDF5 is only consistent once the file is
closed, so :class:`FieldWriter` opens the XDMF file in append mode for each output time and
closes it again (about as fast as keeping it open: the cost is in the data). DOLFINx rewrites
the XDMF XML in place on every ``write_function``, so it writes a working copy in
``OUTDIR/.fields/`` (whose ``fields.h5`` is a symbolic link to ``../fields.h5``) and rank 0
publishes it to ``OUTDIR/fields.xdmf`` atomically after each output time. ADIOS2's BP4 engine
(VTX) flushes data and index at every step by itself. A write error (HDF5, ENOSPC, ...) is
reduced over the ranks and raised on all of them as
:class:`tumorpde.output.rundir.OutputWriteError` naming the file; before each output time the
free space is checked against the size of one output, so a full disk is usually caught before
HDF5 sees it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
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

from tumorpde.output.rundir import OutputWriteError

if TYPE_CHECKING:
    from tumorpde.fem.domain import Domain

__all__ = ["FieldWriter", "gather_p1", "stale_handles", "write_picture"]

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


class FieldWriter:
    """Writes a fixed set of P1 Functions at given times (collective).

    Args:
        outdir: The run directory.
        fmt: ``"xdmf"`` or ``"vtx"``.
        domain: The mesh with its region tags (written once with XDMF).
        functions: The Functions to write, in order.
        min_free_bytes: Extra free space required before each output time (besides one
            output's size).
        stem: File name stem (``fields``; a resumed run continues in ``fields.r1``, ...).

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
        if fmt == "vtx":
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
    def _check_space(self) -> None:
        """Raise ENOSPC on all ranks if the run directory lacks room for one more output."""
        need = 2 * self._bytes_per_output + self.min_free_bytes
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
        except (RuntimeError, OSError) as exc:
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
        if self.fmt == "vtx":
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
        s = self.stem
        return [f"{s}.bp"] if self.fmt == "vtx" else [f"{s}.xdmf", f"{s}.h5"]

    def cost_per_output(self) -> float:
        """Mean wall time (s) per output time so far."""
        return self.seconds / max(1, self.writes)


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
