"""Simulation: wires model -> domain -> state -> forms -> solver -> stepper -> observers.

``Simulation(cfg, comm).steps()`` is a generator over accepted steps that writes nothing;
``Simulation.run(outdir)`` (or :func:`run`) adds the standard observers and fills a run
directory. A Simulation owns PETSc objects: use it as a context manager (or call
:meth:`Simulation.close`) so they are destroyed collectively.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np
import ufl
from dolfinx import fem

from tumorpde.config import CaseConfig, load_config
from tumorpde.fem.domain import Domain, load_domain
from tumorpde.fem.forms import bdf_weights, build_forms
from tumorpde.fem.solver import NewtonResult, solver_for
from tumorpde.fem.state import create_state
from tumorpde.model import Model, build_model
from tumorpde.output import rundir
from tumorpde.output.fields import write_picture
from tumorpde.output.qoi import QoIs
from tumorpde.simulation.observers import Exposure, FieldOutput, Observer, Progress, QoIRecorder
from tumorpde.simulation.stepper import ErrorEstimator, StepInfo, output_times, steps

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
    """One coupled simulation of a case.

    Args:
        config: A validated case.
        comm: Communicator to run on (default ``MPI.COMM_WORLD``).
        observers: Extra observers notified by :meth:`steps`.
        model: The compiled case (default ``build_model(config)``).
    """

    def __init__(
        self,
        config: CaseConfig,
        comm: Any = None,
        observers: Sequence[Observer] = (),
        *,
        model: Model | None = None,
    ) -> None:
        from mpi4py import MPI

        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.config = config
        self.model = model if model is not None else build_model(config)
        self.observers: list[Observer] = list(observers)
        self.timings: dict[str, float] = {}
        t0 = time.perf_counter()
        self.domain: Domain = load_domain(config.mesh, self.comm)
        self.timings["mesh_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        self.state = create_state(self.model, self.domain)
        self.breakpoints = self.model.breakpoints()
        self.forms = build_forms(self.model, self.state, config.time.dt)
        self.solver = solver_for(
            self.state,
            self.forms,
            config.solver.options(),
            flux_jacobian=config.solver.flux_jacobian,
        )
        self.qois = QoIs(self.model, self.state, self.forms)
        V = self.state.V
        self._derived = {n: fem.Function(V, name=n) for n in self.model.derived_names()}
        self._derived_expr = {
            n: fem.Expression(e, V.element.interpolation_points, comm=self.comm)
            for n, e in self.model.derived(self.forms.context).items()
        }
        self.exposure = Exposure(self.model.exposures(list(self.domain.regions)))
        tc = config.time
        self.error_estimator = ErrorEstimator(
            self.state, self._mass_vector(), self.comm, tc.scheme, tc.tolerance
        )
        self._closed = False
        self.update_derived()
        self.timings["setup_s"] = time.perf_counter() - t1
        self.timings["solve_s"] = 0.0

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Destroy the PETSc objects (collective; idempotent)."""
        if not self._closed:
            self.solver.destroy()
            self._closed = True

    def __enter__(self) -> Simulation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ QoIs
    def qoi_names(self) -> list[str]:
        """QoI columns: integrals and extrema, then the components' scalar QoIs and exposures."""
        return (
            self.qois.columns()
            + list(self.model.scalar_qois(0.0))
            + list(self.exposure.columns)
        )

    def qoi_values(self) -> dict[str, float]:
        """Current QoIs (collective; same on all ranks)."""
        q = self.qois.evaluate()
        q.update(self.model.scalar_qois(self.state.t))
        q.update(self.exposure.values())
        return q

    def _mass_vector(self) -> np.ndarray:
        v = ufl.TestFunction(self.state.V)
        m = fem.assemble_vector(fem.form(v * self.forms.dx_lumped))
        n = self.state.V.dofmap.index_map.size_local
        return m.array[:n].copy()

    # ------------------------------------------------------------------ fields
    @property
    def fields(self) -> dict[str, fem.Function]:
        """Current species Functions by name."""
        return self.state.fields

    def update_derived(self) -> None:
        """Refresh the derived nodal fields (occupancies, drug responses, rates)."""
        for name, expr in self._derived_expr.items():
            self._derived[name].interpolate(expr)
            self._derived[name].x.scatter_forward()

    def output_function(self, name: str) -> fem.Function:
        """The Function written for output field ``name``."""
        if name in self._derived:
            return self._derived[name]
        return self.state.fields[name]

    def output_names(self) -> list[str]:
        """Fields written to the run directory (``output.fields``, default all)."""
        if self.config.output.fields is not None:
            return list(self.config.output.fields)
        return self.model.output_names()

    def error_estimate(self, h: float) -> float | None:
        """Scaled local error of the step just solved (see :class:`ErrorEstimator`)."""
        return self.error_estimator(h)

    # ------------------------------------------------------------------ time loop
    def steps(self) -> Iterator[StepInfo]:
        """Advance to ``time.t_end``, yielding each accepted step (observers are notified).

        Yields:
            Step information, identical on all ranks.
        """
        tc = self.config.time
        st = self.state
        breaks = {round(b, 9) for b in self.breakpoints}
        observers = [self.exposure, *self.observers]

        def set_dt(h: float) -> None:
            prev = st.dt_history[0] if st.dt_history else None
            self.forms.set_step(h, bdf_weights(tc.scheme, h, prev))
            self.forms.set_time(st.t + h)  # time-dependent terms are evaluated at t_{n+1}

        def timed_solve() -> NewtonResult:
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

        for obs in observers:
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
            error=self.error_estimator if tc.adaptive else None,
            order=2 if tc.scheme == "bdf2" else 1,
            dt_min=tc.dt_min,
            dt_max=tc.dt_max,
        ):
            for obs in observers:
                obs.on_step(self, info)
            yield info
        self.update_derived()
        for obs in observers:
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
            outdir: Run directory (created; see :mod:`tumorpde.output.rundir` for the layout).
            overwrite: Replace an earlier tumorpde run in ``outdir``.
            case_text: The case file's text, copied to ``case.toml``.
            progress: Print progress lines on rank 0.

        Returns:
            The QoI table, the manifest and the written files.
        """
        t_start = time.perf_counter()
        out = rundir.prepare(outdir, overwrite, self.comm, self.config.name)
        recorder = QoIRecorder(out / "qoi.csv" if out else None)
        observers: list[Observer] = [recorder]
        writer = None
        if out is not None:
            writer = FieldOutput(out, self.config.output.format, self.output_names())
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
            assert writer is not None
            files["qoi"] = str(out / "qoi.csv")
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
            files["manifest"] = str(out / rundir.MANIFEST)
            manifest["files"] = files
            rundir.write_json_atomic(out / rundir.MANIFEST, manifest)
        self.comm.barrier()
        return RunResult(outdir=out, qoi=recorder.table(), manifest=manifest, files=files)

    def manifest(self, recorder: QoIRecorder, files: dict[str, str]) -> dict[str, Any]:
        """Provenance record of the run (identical on all ranks)."""
        return rundir.manifest(
            self.config,
            self.model,
            self.domain,
            num_unknowns=self.state.num_dofs_global(),
            mpi_ranks=self.comm.size,
            solver={
                "petsc_prefix": self.solver.prefix,
                "petsc_options": self.config.solver.options(),
                **self.solver.describe(),
            },
            rows=recorder.rows,
            timings=self.timings,
            files=files,
        )

    def picture(self, path: str | Path) -> Path | None:
        """Render the current fields to a PNG on rank 0 (collective; None without pyvista)."""
        self.update_derived()
        labels = self.model.picture_fields()
        funcs = {n: self.output_function(n) for n in labels}
        return write_picture(
            path, self.domain, funcs, labels, title=self.config.name, time_h=self.state.t
        )


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
    with Simulation(case, comm) as sim:
        return sim.run(outdir, overwrite=overwrite, case_text=text, progress=progress)
