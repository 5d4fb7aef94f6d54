"""Simulation facade: wires config -> domain -> state -> forms -> solver -> stepper -> observers.

``Simulation(cfg, comm).steps()`` is a generator over accepted steps that writes nothing;
``Simulation.run(outdir)`` (or :func:`run`) adds the standard observers and fills a run directory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import tumorpde.backend  # noqa: F401  (before any dolfinx import)
from tumorpde import io as tio
from tumorpde.config import CaseConfig, load_config
from tumorpde.forms import build_forms
from tumorpde.mesh import Domain, load_domain
from tumorpde.metrics import QoIs
from tumorpde.observers import FieldWriter, Observer, Progress, QoIRecorder
from tumorpde.solver import NewtonSolver
from tumorpde.state import create_state
from tumorpde.stepper import StepInfo, output_times, steps

__all__ = ["RunResult", "Simulation", "run"]


@dataclass
class RunResult:
    """What a finished run returns (same on all ranks)."""

    outdir: Path | None
    qoi: dict[str, np.ndarray]
    manifest: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)

    def final(self) -> dict[str, float]:
        """QoIs at the final time."""
        return {k: float(v[-1]) for k, v in self.qoi.items()}


class Simulation:
    """One coupled tumor-growth-factor-receptor simulation.

    Args:
        config: A validated case.
        comm: Communicator to run on (default ``MPI.COMM_WORLD``).
        observers: Extra observers notified by :meth:`steps`.
    """

    def __init__(
        self, config: CaseConfig, comm: Any = None, observers: Sequence[Observer] = ()
    ) -> None:
        from mpi4py import MPI

        from dolfinx import fem

        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.config = config
        self.observers: list[Observer] = list(observers)
        self.timings: dict[str, float] = {}
        t0 = time.perf_counter()
        self.domain: Domain = load_domain(config.mesh, self.comm)
        self.timings["mesh_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        self.state = create_state(config, self.domain)
        self.forms = build_forms(config, self.state, config.time.dt)
        self.solver = NewtonSolver(
            self.forms.residuals, self.state.unknowns(), config.solver.options()
        )
        self.qois = QoIs(self.state.fields, self.forms.dx_lumped)
        self._occupancy = fem.Function(self.state.V, name="occupancy")
        self.update_derived()
        self.timings["setup_s"] = time.perf_counter() - t1
        self.timings["solve_s"] = 0.0

    # ------------------------------------------------------------------ fields
    @property
    def fields(self) -> dict[str, Any]:
        """Current species Functions by name."""
        return self.state.fields

    def update_derived(self) -> None:
        """Refresh derived nodal fields (receptor occupancy C/(R+C))."""
        R = self.state.fields["receptor"].x.array
        C = self.state.fields["complex"].x.array
        tot = R + C
        self._occupancy.x.array[:] = np.divide(C, tot, out=np.zeros_like(C), where=tot > 0)

    def output_function(self, name: str) -> Any:
        """The Function written for output field ``name``."""
        if name == "occupancy":
            return self._occupancy
        return self.state.fields[name]

    # ------------------------------------------------------------------ time loop
    def steps(self) -> Iterator[StepInfo]:
        """Advance to ``time.t_end``, yielding each accepted step (observers are notified).

        Yields:
            Step information, identical on all ranks.
        """
        tc = self.config.time
        dt_const = self.forms.dt

        t_const = self.forms.constants.get("t")

        def set_dt(h: float) -> None:
            dt_const.value = h
            if t_const is not None:  # time-dependent terms are evaluated at t_{n+1}
                t_const.value = self.state.t + h

        def timed_solve() -> Any:
            t0 = time.perf_counter()
            res = self.solver.solve()
            self.timings["solve_s"] += time.perf_counter() - t0
            return res

        def accept(t: float) -> None:
            self.state.accept()
            self.state.t = t

        for obs in self.observers:
            obs.on_start(self)
        for info in steps(
            timed_solve,
            set_dt,
            accept,
            self.state.restore,
            t_end=tc.t_end,
            dt=tc.dt,
            stops=output_times(tc.t_end, tc.output_every),
            max_retries=tc.max_retries,
            t0=self.state.t,
        ):
            for obs in self.observers:
                obs.on_step(self, info)
            yield info
        self.update_derived()
        for obs in self.observers:
            obs.on_finish(self)

    # ------------------------------------------------------------------ full run
    def run(
        self,
        outdir: str | Path | None = None,
        *,
        overwrite: bool = False,
        case_text: str | None = None,
        progress: bool = True,
    ) -> RunResult:
        """Run to the end, writing a run directory if ``outdir`` is given.

        Args:
            outdir: Run directory (created; see :mod:`tumorpde.io` for the layout).
            overwrite: Replace an earlier tumorpde run in ``outdir``.
            case_text: The case file's text, copied to ``case.toml``.
            progress: Print progress lines on rank 0.

        Returns:
            The QoI table, the manifest and the written files.
        """
        t_start = time.perf_counter()
        out = self._prepare(outdir, overwrite)
        recorder = QoIRecorder(out / "qoi.csv" if out else None)
        observers: list[Observer] = [recorder]
        writer = None
        if out is not None:
            writer = FieldWriter(out, self.config.output.format, list(self.config.output.fields))
            observers.append(writer)
            if case_text is not None and self.comm.rank == 0:
                (out / "case.toml").write_text(case_text)
        if progress:
            observers.append(Progress())
        saved = self.observers
        self.observers = saved + observers
        try:
            for _ in self.steps():
                pass
        finally:
            self.observers = saved
        files: dict[str, str] = {}
        if out is not None:
            files["qoi"] = str(out / "qoi.csv")
            assert writer is not None
            files["fields"] = str(out / writer.files()[0])
            self.timings["output_s"] = writer.seconds
            if self.config.output.picture:
                t0 = time.perf_counter()
                png = self.picture(out / "final.png")
                self.timings["picture_s"] = time.perf_counter() - t0
                if png is not None:
                    files["picture"] = str(png)
        self.timings["total_s"] = time.perf_counter() - t_start + self.timings["mesh_s"]
        self.timings["total_s"] += self.timings["setup_s"]
        manifest = self.manifest(recorder, files)
        if out is not None and self.comm.rank == 0:
            files["manifest"] = str(out / tio.MANIFEST)
            manifest["files"] = files
            tio.write_json_atomic(out / tio.MANIFEST, manifest)
        self.comm.barrier()
        return RunResult(outdir=out, qoi=recorder.table(), manifest=manifest, files=files)

    def _prepare(self, outdir: str | Path | None, overwrite: bool) -> Path | None:
        if outdir is None:
            return None
        err = None
        path = Path(outdir).resolve()
        if self.comm.rank == 0:
            try:
                path = tio.prepare_run_dir(outdir, overwrite=overwrite)
                path.mkdir(parents=True, exist_ok=True)
                tio.clear_run_outputs(path)
                tio.write_json_atomic(
                    path / tio.MANIFEST, {"status": "running", "case": self.config.name}
                )
            except (OSError, tio.OutputDirError) as exc:
                err = str(exc)
        err = self.comm.bcast(err, root=0)
        if err is not None:
            raise tio.OutputDirError(err)
        return path

    def manifest(self, recorder: QoIRecorder, files: dict[str, str]) -> dict[str, Any]:
        """Provenance record of the run (identical on all ranks)."""
        from petsc4py import PETSc

        vols = self.domain.region_volumes()
        final = recorder.rows[-1] if recorder.rows else {}
        return {
            "status": "complete",
            "case": self.config.name,
            "description": self.config.description,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "units": {"length": "mm", "time": "h", "concentration": "nM"},
            "resolved": self.config.model_dump(mode="json"),
            "derived": {"receptor_total_nM": self.config.receptor_total_nM},
            "mesh": {
                "cells": self.domain.num_cells_global(),
                "vertices": self.domain.num_vertices_global(),
                "regions": self.domain.regions,
                "boundaries": self.domain.boundaries,
                "region_volumes_mm3": vols,
            },
            "unknowns": self.state.num_dofs_global(),
            "mpi_ranks": self.comm.size,
            "solver": {
                "petsc_prefix": self.solver.prefix,
                "petsc_options": self.config.solver.options(),
                "petsc_version": ".".join(str(v) for v in PETSc.Sys.getVersion()),
                **self.solver.describe(),
            },
            "steps": len(recorder.rows) - 1,
            "final": final,
            "timings_s": dict(self.timings),
            "versions": tio.versions(),
            "files": files,
        }

    def picture(self, path: str | Path) -> Path | None:
        """Render the current fields to a PNG on rank 0 (collective gather; None if no pyvista)."""
        from tumorpde import viz

        self.update_derived()
        names = ["tumor", "ligand", "occupancy"]
        data = gather_p1(self.state.V, [self.output_function(n) for n in names], self.domain)
        result: str | None = None
        if self.comm.rank == 0:
            assert data is not None
            points, cells, values, regions = data
            result = viz.render_fields(
                points,
                cells,
                dict(zip(names, values, strict=True)),
                path,
                cell_regions=regions,
                title=self.config.name,
                time_h=self.state.t,
                labels={
                    "tumor": "tumor density u",
                    "ligand": f"{self.config.ligand.name} [nM]",
                    "occupancy": f"{self.config.receptor.name} occupancy",
                },
            )
        result = self.comm.bcast(result, root=0)
        return Path(result) if result else None


def gather_p1(
    V: Any, funcs: list[Any], domain: Domain
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray] | None:
    """Gather owned tetrahedra, their vertex coordinates and P1 values to rank 0.

    Returns:
        ``(points, cells, values per function, cell region tags)`` on rank 0, None elsewhere.
        Points on partition boundaries are duplicated (harmless for rendering).
    """
    from dolfinx import plot

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


def run(
    case: CaseConfig | str | Path,
    outdir: str | Path | None = None,
    *,
    comm: Any = None,
    overwrite: bool = False,
    progress: bool = True,
) -> RunResult:
    """Load (if needed), run a case and write its run directory.

    Args:
        case: A validated config or the path of a TOML case file.
        outdir: Run directory; None runs without writing files.
        comm: Communicator (default ``MPI.COMM_WORLD``).
        overwrite: Replace an earlier tumorpde run in ``outdir``.
        progress: Print progress on rank 0.

    Returns:
        The run result.
    """
    text = None
    if not isinstance(case, CaseConfig):
        text = Path(case).read_text()
        case = load_config(case)
    sim = Simulation(case, comm)
    try:
        return sim.run(outdir, overwrite=overwrite, case_text=text, progress=progress)
    finally:
        sim.solver.destroy()
