"""Simulation: wires model -> domain -> state -> forms -> solver -> stepper -> observers.

``Simulation(cfg, comm).steps()`` is a generator over accepted steps that writes nothing;
``Simulation.run(outdir)`` (or :func:`run`) adds the standard observers and fills a run
directory. A Simulation owns PETSc objects: use it as a context manager (or call
:meth:`Simulation.close`) so they are destroyed collectively.
"""

from __future__ import annotations

import signal
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
from tumorpde.simulation import checkpoint, interrupt
from tumorpde.simulation.checkpoint import Checkpointer
from tumorpde.simulation.observers import Exposure, FieldOutput, Observer, Progress, QoIRecorder
from tumorpde.simulation.stepper import (
    ErrorEstimator,
    StepFailedError,
    StepInfo,
    output_times,
    steps,
)

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
        for fixed in self.forms.fixed:
            self.error_estimator.exclude(fixed.species, fixed.dofs)
        if tc.adaptive and tc.error_filter == "diagonal":
            self.error_estimator.filter = self._stiffness_filter
        self._closed = False
        self.checkpointer: Checkpointer | None = None
        self._resume: dict[str, Any] | None = None
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
        return self.qois.columns() + list(self.model.scalar_qois(0.0)) + list(self.exposure.columns)

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

    def _stiffness_filter(self, h: float) -> dict[str, np.ndarray] | None:
        """Per species, the filter factors (a0 m_i/h)/A_ii of the step just solved.

        ``A`` is the Newton matrix the last iteration used (blocked layout: each species'
        owned nodes in turn); see :class:`tumorpde.simulation.stepper.ErrorEstimator`.
        """
        A = self.solver.snes.getJacobian()[0]
        if A is None or A.getSize()[0] == 0:
            return None
        diag = A.getDiagonal()
        d = diag.array_r.copy()
        diag.destroy()
        n = self.state.V.dofmap.index_map.size_local
        if d.size != n * len(self.state.species):
            return None  # not the blocked layout of one P1 field per species
        a0 = float(self.forms.constants["a0"].value)
        scale = a0 * self.error_estimator.mass / h
        out: dict[str, np.ndarray] = {}
        for i, sp in enumerate(self.state.species):
            if sp.kind == "algebraic":
                continue
            aii = d[i * n : (i + 1) * n]
            with np.errstate(divide="ignore", invalid="ignore"):
                phi = np.where(aii > scale, scale / aii, 1.0)
            out[sp.name] = np.clip(phi, 0.0, 1.0)
        return out

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
        observers: list[Observer] = [self.exposure, *self.observers]
        if self.checkpointer is not None and self.checkpointer not in observers:
            observers.append(self.checkpointer)

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

        resume = self._resume or {}
        try:
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
                h0=resume.get("h_next"),
                step0=int(resume.get("step", 0)),
            ):
                for obs in observers:
                    obs.on_step(self, info)
                signame = self._interrupt_requested()
                if signame is not None:
                    if self.checkpointer is not None:
                        self.checkpointer.write_now(self, info, signame)
                    raise interrupt.Interrupted(signame, info.t, info.step)
                yield info
            self.update_derived()
        finally:
            for obs in observers:  # closes the files also on failure or interruption
                obs.on_finish(self)

    def _interrupt_requested(self) -> str | None:
        """The signal any rank received since the handlers were installed (collective)."""
        from mpi4py import MPI

        name = interrupt.requested()
        code = int(signal.Signals[name]) if name else 0
        code = self.comm.allreduce(code, op=MPI.MAX)
        return signal.Signals(code).name if code else None

    # ------------------------------------------------------------------ checkpoints
    def enable_checkpoints(
        self,
        directory: str | Path,
        *,
        every_steps: int = 0,
        every_minutes: float = 0.0,
        at_outputs: bool = True,
        keep: int = 2,
    ) -> Checkpointer:
        """Write checkpoints into ``directory`` while stepping (see :class:`Checkpointer`)."""
        self.checkpointer = Checkpointer(
            directory,
            every_steps=every_steps,
            every_minutes=every_minutes,
            at_outputs=at_outputs,
            keep=keep,
        )
        return self.checkpointer

    def resume_from(self, path: str | Path) -> dict[str, Any]:
        """Continue a checkpointed run of this case: fields, history, step size, AUCs.

        Collective; the checkpoint may come from another number of ranks. The next
        :meth:`steps` continues after the checkpoint's step exactly as the uninterrupted run
        would have.

        Returns:
            The checkpoint's metadata.
        """
        meta = checkpoint.restore(self, path)
        self._resume = {"h_next": meta["h_next"], "step": meta["step"]}
        return meta

    def branch_from(self, path: str | Path) -> dict[str, Any]:
        """Start this case from the fields of another run's checkpoint (a therapy branch).

        The species both cases have take the checkpoint's values; the others (e.g. the drugs
        of a treatment arm) keep their initial values; time starts at the checkpoint's time
        with a fresh step history.

        Returns:
            The checkpoint's metadata.
        """
        _, meta = checkpoint.read(path)
        shared = [s for s in self.state.names if s in meta["species"]]
        meta = checkpoint.restore(self, path, species=shared, state=False)
        self._resume = None
        return meta

    # ------------------------------------------------------------------ full run
    def run(
        self,
        outdir: str | Path | None = None,
        *,
        overwrite: bool = False,
        case_text: str | None = None,
        progress: bool = True,
        resume: bool = False,
        branch_from: str | Path | None = None,
    ) -> RunResult:
        """Run to the end, writing a run directory if ``outdir`` is given.

        With a run directory, checkpoints go to ``outdir/checkpoints`` as ``output.checkpoint``
        says (every N steps, every M minutes, at output times, at SIGTERM/SIGINT).

        Args:
            outdir: Run directory (created; see :mod:`tumorpde.output.rundir` for the layout).
            overwrite: Replace an earlier tumorpde run in ``outdir``.
            case_text: The case file's text, copied to ``case.toml``.
            progress: Print progress lines on rank 0.
            resume: Continue the run in ``outdir`` from its newest valid checkpoint (from the
                start if it has none; a complete run is returned as it is). ``qoi.csv`` keeps
                its rows up to the checkpoint and goes on; fields continue in a new segment
                ``fields.r<k>.xdmf`` that starts at the checkpoint's time.
            branch_from: A checkpoint file of another run: start this case from its fields at
                its time (a therapy arm branched from a grown tumor).

        Returns:
            The QoI table, the manifest and the written files.
        """
        t_start = time.perf_counter()
        if resume and outdir is not None:
            # another case or other physics: refused; nothing there yet: a fresh run
            resume = self._resumable(Path(outdir))
            done = self._completed(Path(outdir)) if resume else None
            if done is not None:  # complete up to this t_end: nothing to do
                return done
        rd = self._open_run_dir(outdir, overwrite, resume) if outdir is not None else None
        if rd is not None:
            rd.update(physics_sha256=self.physics_hash())
        out = rd.path if rd is not None else None
        stem, after, resumed = "fields", None, None
        ck = self.config.output.checkpoint
        if out is not None and ck.enabled:
            self.enable_checkpoints(
                out / "checkpoints",
                every_steps=ck.every_steps,
                every_minutes=ck.every_minutes,
                at_outputs=ck.at_outputs,
                keep=ck.keep,
            )
        if resume and out is not None:
            path = checkpoint.latest(out / "checkpoints", self.comm)
            if path is not None:
                meta = self.resume_from(path)
                after = float(meta["t"])
                self._check_qoi_table(out / "qoi.csv", after)
                stem = self._next_segment(out)
                resumed = {"checkpoint": path.name, "t_h": after, "step": meta["step"]}
                if rd is not None:
                    history = list(rd.record.get("resumed", []))
                    if history:
                        history[-1] = {**history[-1], **resumed, "ranks": self.comm.size}
                    rd.update(resumed=history)
        if branch_from is not None:
            meta = self.branch_from(branch_from)
            if rd is not None:
                rd.update(branched_from={"checkpoint": str(branch_from), "t_h": meta["t"]})
        recorder = QoIRecorder(out / "qoi.csv" if out else None, continue_after=after)
        observers: list[Observer] = [recorder]
        if self.checkpointer is not None:
            observers.append(self.checkpointer)  # after the QoI row, before the fields
        writer = None
        if out is not None:
            writer = FieldOutput(out, self.config.output.format, self.output_names(), stem)
            observers.append(writer)
        if progress:
            observers.append(Progress())
        saved = self.observers
        try:
            if rd is not None:
                self._write_case_files(rd, case_text)
            self.observers = saved + observers
            for _ in self.steps():
                pass
            self.observers = saved
            files: dict[str, str] = {}
            if out is not None:
                assert writer is not None
                files["qoi"] = str(out / "qoi.csv")
                files["fields"] = str(out / writer.files()[0])
                if stem != "fields":  # resumed: the first segment, then the continuations
                    main = writer.files()[0].removeprefix(stem)  # ".vtkhdf.series", ".xdmf", ...
                    files["fields"] = str(out / f"fields{main}")
                    segs = sorted(out.glob(f"fields.r[0-9]*{main}"))
                    files["field_segments"] = ", ".join(str(p) for p in segs)
                files["resolved"] = str(out / rundir.RESOLVED)
                self.timings["output_s"] = writer.seconds
                if self.checkpointer is not None:
                    self.timings["checkpoint_s"] = self.checkpointer.seconds
                    self.timings["checkpoints"] = float(len(self.checkpointer.written))
                if writer.writer is not None:
                    self.timings["output_per_time_s"] = writer.writer.cost_per_output()
                if self.config.output.picture:
                    t0 = time.perf_counter()
                    png = self.picture(out / "final.png")
                    self.timings["picture_s"] = time.perf_counter() - t0
                    if png is not None:
                        files["picture"] = str(png)
            self.timings["total_s"] = time.perf_counter() - t_start + self.timings["mesh_s"]
            self.timings["total_s"] += self.timings["setup_s"]
            manifest = self.manifest(recorder, files)
            if rd is not None:
                assert out is not None
                files["manifest"] = str(out / rundir.MANIFEST)
                manifest["files"] = files
                manifest = rd.finish(manifest)
            self.comm.barrier()
        except interrupt.Interrupted as exc:  # raised on every rank together
            if rd is not None:
                rd.mark("interrupted", reason=exc.signal_name, t=exc.t, step=exc.step)
                self.comm.barrier()  # every rank returns after the manifest says so
            raise
        except BaseException as exc:
            # Rank-local work, except for the errors every rank raises together: the ranks may
            # not agree on other errors, so no collective call for those.
            if rd is not None:
                last = recorder.rows[-1] if recorder.rows else {}
                t_last, step_last = last.get("t_h"), last.get("step")
                rd.mark_exception(
                    exc,
                    t=t_last,
                    step=int(step_last) if step_last is not None else None,
                )
                if isinstance(exc, StepFailedError | rundir.OutputWriteError):
                    self.comm.barrier()
            raise
        finally:
            self.observers = saved
            if rd is not None:
                rd.close()
        return RunResult(outdir=out, qoi=recorder.table(), manifest=manifest, files=files)

    def _open_run_dir(
        self, outdir: str | Path, overwrite: bool, resume: bool = False
    ) -> rundir.RunDir:
        """Lock and prepare the run directory, recording how the run was started (collective)."""
        info = rundir.provenance(self.config, comm=self.comm) if self.comm.rank == 0 else None
        info = self.comm.bcast(info, root=0)
        return rundir.RunDir.open(
            outdir,
            overwrite=overwrite,
            comm=self.comm,
            case=self.config.name,
            info=info,
            resume=resume,
        )

    def _completed(self, out: Path) -> RunResult | None:
        """The result of a run in ``out`` complete up to this ``t_end``, else None (collective).

        A complete run with an earlier end is continued (extended) from its last checkpoint.
        """
        import csv
        import json

        found = None
        if self.comm.rank == 0:
            try:
                manifest = json.loads((out / rundir.MANIFEST).read_text())
                same = manifest.get("case") == self.config.name
                t_final = float(manifest.get("final", {}).get("t_h", -1.0))
                reached = t_final >= self.config.time.t_end * (1 - 1e-12)
                if manifest.get("status") == "complete" and same and reached:
                    with (out / "qoi.csv").open(newline="") as f:
                        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
                    found = (manifest, rows)
            except (OSError, ValueError):
                found = None
        found = self.comm.bcast(found, root=0)
        if found is None:
            return None
        manifest, rows = found
        qoi = {k: np.array([r[k] for r in rows]) for k in (rows[0] if rows else {})}
        return RunResult(outdir=out, qoi=qoi, manifest=manifest, files=manifest.get("files", {}))

    #: Case sections that may change between an interrupted run and its resume.
    RESUMABLE_CHANGES = ("name", "description", "time", "output", "solver", "compare")

    def physics_hash(self) -> str:
        """SHA-256 of the resolved case without :data:`RESUMABLE_CHANGES` (what a resume keeps)."""
        import hashlib
        import json

        data = {
            k: v
            for k, v in self.config.model_dump(mode="json").items()
            if k not in self.RESUMABLE_CHANGES
        }
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def _resumable(self, out: Path) -> bool:
        """Whether ``out`` holds a run of this case to continue (collective).

        False for a missing or empty directory (the run starts afresh, so a job script may
        always pass ``--resume``).

        Raises:
            rundir.OutputDirError: If ``out`` holds a run of another case, or of this case with
                other physics (resuming would splice two models).
        """
        import json

        verdict: tuple[bool, str | None] = (True, None)
        if self.comm.rank == 0:
            if not out.is_dir() or not any(out.iterdir()):
                verdict = (False, None)
            else:
                try:
                    old = json.loads((out / rundir.MANIFEST).read_text())
                except (OSError, ValueError):
                    old = None
                if isinstance(old, dict) and old.get("case") not in (None, self.config.name):
                    verdict = (
                        False,
                        f"{out} holds a run of case '{old.get('case')}', not "
                        f"'{self.config.name}': resume it with its own case file, or choose "
                        "another -o",
                    )
                elif isinstance(old, dict) and old.get("physics_sha256") not in (
                    None,
                    self.physics_hash(),
                ):
                    verdict = (
                        False,
                        f"{out} holds a run of '{self.config.name}' with other physics (the "
                        "case differs in more than time, output and solver settings): "
                        "resuming would splice two models; use --overwrite or another -o",
                    )
        ok, err = self.comm.bcast(verdict, root=0)
        if err is not None:
            raise rundir.OutputDirError(err)
        return bool(ok)

    def _check_qoi_table(self, path: Path, t: float) -> None:
        """Refuse to continue a ``qoi.csv`` missing the rows up to the checkpoint (collective)."""
        import csv

        err = None
        if self.comm.rank == 0:
            last = None
            try:
                with path.open(newline="") as f:
                    for row in csv.DictReader(f):
                        last = float(row["t_h"])
            except (OSError, ValueError, KeyError):
                last = None
            if last is None or last < t * (1 - 1e-9) - 1e-9:
                have = "is missing" if last is None else f"ends at t = {last:g} h"
                err = (
                    f"{path} {have}, before the checkpoint at t = {t:g} h: the QoI table cannot "
                    "be continued; run again with --overwrite (or restore the file)"
                )
        err = self.comm.bcast(err, root=0)
        if err is not None:
            raise rundir.OutputDirError(err)

    def _next_segment(self, out: Path) -> str:
        """Stem of the next field-file segment of a resumed run (``fields.r1``, ...)."""
        k = 0
        if self.comm.rank == 0:
            k = 1
            while any(out.glob(f"fields.r{k}.*")):
                k += 1
        k = self.comm.bcast(k, root=0)
        return f"fields.r{k}"

    def _write_case_files(self, rd: rundir.RunDir, case_text: str | None) -> None:
        """``case.toml`` (as given) and ``resolved.toml`` (rank 0; errors reach every rank)."""
        err = None
        if rd.is_root:
            try:
                if case_text is not None:
                    rd.write_text("case.toml", case_text)
                rd.write_text(rundir.RESOLVED, rundir.resolved_toml(self.config))
            except OSError as exc:
                err = (exc.errno, exc.strerror or str(exc), str(exc.filename or rd.path))
        err = self.comm.bcast(err, root=0)
        if err is not None:
            raise rundir.OutputWriteError(*err)

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
