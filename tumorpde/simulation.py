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
from tumorpde.forms import bdf_weights, build_forms
from tumorpde.mesh import Domain, load_domain
from tumorpde.metrics import QoIs
from tumorpde.model import derived_field_names
from tumorpde.observers import FieldWriter, Observer, Progress, QoIRecorder
from tumorpde.solver import solver_for
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
        self.breakpoints: list[float] = []
        self.hooks: list[Any] = []
        self._setup_extensions()
        self.forms = build_forms(config, self.state, config.time.dt, hooks=self.hooks)
        self.solver = solver_for(
            self.state,
            self.forms,
            config.solver.options(),
            flux_jacobian=config.solver.flux_jacobian,
        )
        self.qois = QoIs(self.state, self.forms, self._extra_qois())
        self._derived = {
            name: fem.Function(self.state.V, name=name) for name in derived_field_names(config)
        }
        self._derived_expr: dict[str, Any] = {}
        if self.therapy is not None:
            V = self.state.V
            for name, expr in self.therapy.derived_expressions(self.forms.context).items():
                self._derived_expr[name] = fem.Expression(
                    expr, V.element.interpolation_points, comm=self.comm
                )
        self._auc: dict[str, float] = {}
        self._auc_last: tuple[float, dict[str, float]] | None = None
        self._lumped_mass = self._mass_vector()
        self.update_derived()
        self.timings["setup_s"] = time.perf_counter() - t1
        self.timings["solve_s"] = 0.0

    def _setup_extensions(self) -> None:
        """Create the therapy layer (if the case has treatments) and register its hooks."""
        self.therapy = None
        if self.config.therapy is not None and self.config.therapy.treatments:
            from tumorpde.therapy import Therapy

            self.therapy = Therapy(self.config, self.state)
            self.hooks.append(self.therapy.hook)
            self.breakpoints = self.therapy.breakpoints()

    def _extra_qois(self) -> dict[str, Any]:
        if self.therapy is None:
            return {}
        return self.therapy.qoi_integrands(self.forms.context, self.forms.dx_lumped)

    # ------------------------------------------------------------------ QoIs
    def qoi_names(self) -> list[str]:
        """QoI columns: :class:`QoIs` plus plasma levels and exposure (AUC) with therapy."""
        names = self.qois.columns()
        if self.therapy is not None:
            names += list(self.therapy.plasma_values(0.0))
            names += [f"plasma_{n}_auc_nMh" for n in self.therapy.plasma]
            names += [self._auc_name(k) for k in self._auc_keys()]
        return names

    def _auc_keys(self) -> list[str]:
        assert self.therapy is not None
        return [k for k in self.qois.columns() if "_nM_" in k or k.endswith("_mean_nM")]

    @staticmethod
    def _auc_name(key: str) -> str:
        return key.replace("_mean_nM", "_mean").replace("_nM_", "_") + "_auc_nMh"

    def _accumulate_exposure(self) -> None:
        """Add the last step's trapezoid to the tissue AUCs (every accepted step, collective)."""
        if self.therapy is None:
            return
        keys = self._auc_keys()
        now = {k: self.qois.ratio(k) for k in keys}
        t = self.state.t
        if self._auc_last is None:
            self._auc = dict.fromkeys(keys, 0.0)
        elif t > self._auc_last[0]:
            t0, before = self._auc_last
            for k in keys:
                self._auc[k] += 0.5 * (before[k] + now[k]) * (t - t0)
        self._auc_last = (t, now)

    def qoi_values(self) -> dict[str, float]:
        """Current QoIs (collective; same on all ranks), accumulating tissue AUC over time."""
        q = self.qois.evaluate()
        if self.therapy is None:
            return q
        t = self.state.t
        q.update(self.therapy.plasma_values(t))
        for name, pk in self.therapy.plasma.items():
            spec = next(s for s in self.therapy.specs if s.name == name)
            q[f"plasma_{name}_auc_nMh"] = pk.auc(0.0, t) * spec.nM_per_mg_L if t > 0 else 0.0
        for k in self._auc_keys():
            q[self._auc_name(k)] = self._auc.get(k, 0.0)
        return q

    def _mass_vector(self) -> Any:
        import ufl
        from dolfinx import fem

        v = ufl.TestFunction(self.state.V)
        dxl = ufl.Measure(
            "dx",
            domain=self.domain.mesh,
            metadata={"quadrature_rule": "vertex", "quadrature_degree": 1},
        )
        m = fem.assemble_vector(fem.form(v * dxl))
        n = self.state.V.dofmap.index_map.size_local
        return m.array[:n].copy()

    # ------------------------------------------------------------------ fields
    @property
    def fields(self) -> dict[str, Any]:
        """Current species Functions by name."""
        return self.state.fields

    def update_derived(self) -> None:
        """Refresh derived nodal fields (receptor occupancy (C + I)/(R + C + I) per pathway)."""
        f = self.state.fields
        for p, pw in self.config.pathways.items():
            if pw.ligand is None:
                continue
            bound = f[f"{p}_complex"].x.array.copy()
            if pw.receptor.internalized:
                bound += f[f"{p}_internal"].x.array
            tot = f[p].x.array + bound
            self._derived[f"{p}_occupancy"].x.array[:] = np.divide(
                bound, tot, out=np.zeros_like(bound), where=tot > 0
            )
        for name, expr in self._derived_expr.items():
            self._derived[name].interpolate(expr)
            self._derived[name].x.scatter_forward()

    def output_function(self, name: str) -> Any:
        """The Function written for output field ``name``."""
        if name in self._derived:
            return self._derived[name]
        return self.state.fields[name]

    def output_names(self) -> list[str]:
        """Fields written to the run directory (``output.fields``, default all)."""
        if self.config.output.fields is not None:
            return list(self.config.output.fields)
        return self.state.names + list(self._derived)

    # ------------------------------------------------------------------ error control
    def error_estimate(self, h: float) -> float | None:
        """Local error of the step just solved, scaled so that 1 is ``time.tolerance``.

        Milne's device: the difference between the solution and the polynomial predictor through
        the last accepted values (linear for backward Euler, quadratic for BDF2), times the
        error-constant ratio (1/2 for BE, 2/11 for BDF2 at constant steps), measured per species in
        the lumped L2 norm relative to ``tolerance * ||w|| + 1e-3 * tolerance * scale``;
        quasi-steady species are excluded. None while there is too little history.
        """
        from mpi4py import MPI

        st, tc = self.state, self.config.time
        hist = st.dt_history
        if not hist:
            return None
        n = st.V.dofmap.index_map.size_local
        m = self._lumped_mass
        bdf2 = tc.scheme == "bdf2" and len(hist) >= 2
        local = []
        for sp in st.species:
            if sp.kind == "algebraic":
                continue
            w = st.fields[sp.name].x.array[:n]
            w0 = st.previous[sp.name].x.array[:n]
            w1 = st.older[sp.name].x.array[:n]
            if bdf2:
                h1, h2 = hist[0], hist[1]
                w2 = st.oldest[sp.name].x.array[:n]
                # quadratic extrapolation through (t_n, w0), (t_n - h1, w1), (t_n - h1 - h2, w2)
                d1 = (w0 - w1) / h1
                d2 = ((w1 - w2) / h2 - d1) / (h1 + h2)  # = -(divided difference of order 2)
                pred = w0 + h * d1 - h * (h + h1) * d2
                c = 2.0 / 11.0
            else:
                h1 = hist[0]
                pred = w0 + h * (w0 - w1) / h1
                c = h / (h + h1)
            e = c * (w - pred)
            local += [float(m @ (e * e)), float(m @ (w * w)), float(m @ (w0 * w0))]
        tot = np.array(self.comm.allreduce(np.array(local), op=MPI.SUM)).reshape(-1, 3)
        vol = self.qois_volume
        err = 0.0
        for ee, ww, w0w0 in tot:
            scale = max(np.sqrt(ww), np.sqrt(w0w0))
            denom = tc.tolerance * scale + 1e-3 * tc.tolerance * np.sqrt(vol) * 1e-3
            err = max(err, np.sqrt(ee) / denom)
        return float(err)

    @property
    def qois_volume(self) -> float:
        """Domain volume (mm³)."""
        if not hasattr(self, "_volume"):
            from mpi4py import MPI

            self._volume = float(self.comm.allreduce(self._lumped_mass.sum(), op=MPI.SUM))
        return self._volume

    # ------------------------------------------------------------------ time loop
    def steps(self) -> Iterator[StepInfo]:
        """Advance to ``time.t_end``, yielding each accepted step (observers are notified).

        Yields:
            Step information, identical on all ranks.
        """
        tc = self.config.time
        k = self.forms.constants
        st = self.state
        breaks = {round(b, 9) for b in self.breakpoints}

        def set_dt(h: float) -> None:
            k["dt"].value = h
            k["t"].value = st.t + h  # time-dependent terms are evaluated at t_{n+1}
            if self.therapy is not None:
                self.therapy.set_time(st.t + h)
            a = bdf_weights(tc.scheme, h, st.dt_history[0] if st.dt_history else None)
            k["a0"].value, k["a1"].value, k["a2"].value = a

        def timed_solve() -> Any:
            t0 = time.perf_counter()
            res = self.solver.solve()
            self.timings["solve_s"] += time.perf_counter() - t0
            return res

        def accept(t: float) -> None:
            self.qois.update_balance()
            st.accept(t - st.t)
            st.t = t
            if round(t, 9) in breaks:  # a dose: restart the multistep history with BE
                st.dt_history = []
            self._accumulate_exposure()

        self._accumulate_exposure()
        for obs in self.observers:
            obs.on_start(self)
        for info in steps(
            timed_solve,
            set_dt,
            accept,
            st.restore,
            t_end=tc.t_end,
            dt=tc.dt,
            stops=output_times(tc.t_end, tc.output_every),
            max_retries=tc.max_retries,
            t0=st.t,
            breakpoints=self.breakpoints,
            error=self.error_estimate if tc.adaptive else None,
            order=2 if tc.scheme == "bdf2" else 1,
            dt_min=tc.dt_min,
            dt_max=tc.dt_max,
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
            writer = FieldWriter(out, self.config.output.format, self.output_names())
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
            "species": [
                {"name": sp.name, "kind": sp.kind, "unit": sp.unit, "pathway": sp.pathway}
                for sp in self.state.species
            ],
            "derived": {
                "receptor_total_nM": {
                    p: self.config.receptor_total_nM(p) for p in self.config.pathways
                }
            },
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
        names, labels = ["tumor"], {"tumor": "tumor density u"}
        for p, pw in self.config.pathways.items():
            if pw.ligand is not None:
                names += [pw.ligand.name, f"{p}_occupancy"]
                labels[pw.ligand.name] = f"{pw.ligand.name} [nM]"
                labels[f"{p}_occupancy"] = f"{p} occupancy"
                break
        else:
            for p, pw in self.config.pathways.items():
                if pw.signal.enabled:
                    names.append(f"{p}_signal")
                    labels[f"{p}_signal"] = f"{p} signal"
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
                labels=labels,
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
