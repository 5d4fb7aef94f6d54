"""Observers: things the time loop notifies (QoI table, field files, exposure, progress log).

An observer has ``on_start(sim)``, ``on_step(sim, info)`` and ``on_finish(sim)``. They are called
on every rank in the same order; file writes that are not collective happen on rank 0 only.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from tumorpde.output.fields import FieldWriter, output_files
from tumorpde.output.load import field_units
from tumorpde.progress import Meter
from tumorpde.progress import info as progress_info
from tumorpde.simulation.stepper import StepInfo

if TYPE_CHECKING:
    from tumorpde.simulation import Simulation

__all__ = ["Exposure", "FieldOutput", "Observer", "Progress", "QoIRecorder"]


def qoi_columns(sim: Simulation) -> list[str]:
    """CSV columns of a run: step info, the case's QoIs (see :mod:`tumorpde.output.qoi`), solver."""
    solver = ["newton_iterations", "linear_iterations", "rejected_steps", "error_estimate"]
    return ["step", "t_h", "dt_h", *sim.qoi_names(), *solver, "wall_s"]


class Observer(Protocol):
    """Protocol of time-loop observers."""

    def on_start(self, sim: Simulation) -> None:
        """Called once before the first step, with the initial state."""

    def on_step(self, sim: Simulation, info: StepInfo) -> None:
        """Called after each accepted step."""

    def on_finish(self, sim: Simulation) -> None:
        """Called once after the last step."""


class QoIRecorder:
    """Keeps the QoI rows in memory (all ranks) and writes ``qoi.csv`` on rank 0 if given a path.

    The CSV is flushed after every row, so a crashed run keeps the rows it had. With
    ``continue_after`` (a resumed run) the existing CSV keeps its rows up to that time, later
    rows (written after the checkpoint, before the interruption) are dropped, and new rows are
    appended; the in-memory table holds the whole history.
    """

    def __init__(self, path: str | Path | None = None, continue_after: float | None = None) -> None:
        self.continue_after = continue_after
        self.path = Path(path) if path is not None else None
        self.rows: list[dict[str, float]] = []
        self._file: Any = None
        self._writer: Any = None
        self._t0 = time.perf_counter()
        self.columns: list[str] = []

    def _record(self, sim: Simulation, info: StepInfo | None) -> None:
        row: dict[str, float] = {
            "step": info.step if info else 0,
            "t_h": info.t if info else sim.state.t,
            "dt_h": info.dt if info else 0.0,
        }
        row.update(sim.qoi_values())
        row["newton_iterations"] = info.newton_iterations if info else 0
        row["linear_iterations"] = info.linear_iterations if info else 0
        row["rejected_steps"] = info.rejected if info else 0
        row["error_estimate"] = info.error if info else float("nan")
        row["wall_s"] = time.perf_counter() - self._t0
        self.rows.append(row)
        if self._writer is not None:
            self._writer.writerow({k: f"{v:.12g}" for k, v in row.items()})
            self._file.flush()

    def on_start(self, sim: Simulation) -> None:
        """Open the CSV (rank 0) and record the initial state (or continue a resumed table)."""
        self._t0 = time.perf_counter()
        self.columns = qoi_columns(sim)
        if self.continue_after is not None:
            self._continue(sim, self.continue_after)
            return
        if self.path is not None and sim.comm.rank == 0:
            self._file = self.path.open("w", newline="")
            self._writer = csv.DictWriter(self._file, fieldnames=self.columns)
            self._writer.writeheader()
        self._record(sim, None)

    def _continue(self, sim: Simulation, t: float) -> None:
        """Keep the rows up to ``t`` of the existing CSV and append from there (collective)."""
        kept: list[dict[str, float]] = []
        if sim.comm.rank == 0 and self.path is not None and self.path.is_file():
            with self.path.open(newline="") as f:
                for row in csv.DictReader(f):
                    if list(row) != self.columns:
                        break  # another case's table: start afresh below
                    if float(row["t_h"]) > t * (1 + 1e-12) + 1e-12:
                        break
                    kept.append({k: float(v) for k, v in row.items()})
        kept = sim.comm.bcast(kept, root=0)
        self.rows = kept
        if self.path is not None and sim.comm.rank == 0:
            # the kept rows go to a new file that replaces the old one atomically
            tmp = self.path.with_name(f".{self.path.name}.resume")
            with tmp.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self.columns)
                w.writeheader()
                for row in kept:
                    w.writerow({k: f"{v:.12g}" for k, v in row.items()})
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._file = self.path.open("a", newline="")
            self._writer = csv.DictWriter(self._file, fieldnames=self.columns)
        if not kept:
            self._record(sim, None)

    def on_step(self, sim: Simulation, info: StepInfo) -> None:
        """Record one row."""
        self._record(sim, info)

    def on_finish(self, sim: Simulation) -> None:
        """Close the CSV."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def table(self) -> dict[str, np.ndarray]:
        """Columns as arrays."""
        cols = self.columns or (list(self.rows[0]) if self.rows else [])
        return {k: np.array([r[k] for r in self.rows]) for k in cols}


class FieldOutput:
    """Writes the selected fields at t = 0 and every output time (collective).

    Args:
        outdir: The run directory.
        fmt: ``"vtkhdf"``, ``"xdmf"`` or ``"vtx"`` (:class:`tumorpde.output.fields.FieldWriter`).
        names: The fields to write (species and derived).
        stem: File name stem; a resumed run writes a new segment (``fields.r1``, ...) that
            starts with the state it resumed from.
    """

    def __init__(
        self, outdir: str | Path, fmt: str, names: list[str], stem: str = "fields"
    ) -> None:
        self.outdir = Path(outdir)
        self.fmt = fmt
        self.names = names
        self.stem = stem
        self.writer: FieldWriter | None = None

    @property
    def seconds(self) -> float:
        """Wall time spent writing."""
        return self.writer.seconds if self.writer is not None else 0.0

    def on_start(self, sim: Simulation) -> None:
        """Open the file and write the fields at the start time."""
        funcs = [sim.output_function(n) for n in self.names]
        species = {sp.name: sp.unit for sp in sim.model.species}
        units = field_units([f.name for f in funcs], species)
        self.writer = FieldWriter(
            self.outdir, self.fmt, sim.domain, funcs, stem=self.stem, units=units
        )
        sim.update_derived()
        self.writer.write(sim.state.t)

    def on_step(self, sim: Simulation, info: StepInfo) -> None:
        """Write at output times."""
        if info.is_output and self.writer is not None:
            sim.update_derived()
            self.writer.write(info.t)

    def on_finish(self, sim: Simulation) -> None:
        """Close the file."""
        if self.writer is not None:
            self.writer.close()

    def files(self) -> list[str]:
        """Names of the files written."""
        return output_files(self.fmt, self.stem)


class Exposure:
    """Accumulates time integrals (AUC) of integral QoIs over the accepted steps (trapezoid).

    The model's components name what to integrate (:meth:`tumorpde.model.Model.exposures`,
    e.g. tissue drug levels by region). ``values()`` gives the integrals up to the last step.

    Args:
        columns: Column name -> name of the integral QoI.
    """

    def __init__(self, columns: dict[str, str]) -> None:
        self.columns = columns
        self.auc = dict.fromkeys(columns, 0.0)
        self._last: tuple[float, dict[str, float]] | None = None

    def _add(self, sim: Simulation) -> None:
        now = {k: sim.qois.ratio(q) for k, q in self.columns.items()}
        t = sim.state.t
        if self._last is not None and t > self._last[0]:
            t0, before = self._last
            # backward Euler: the end value stands for the whole step (the rule of the scheme's
            # own balance, exact for a species that follows its step-mean input at once);
            # BDF2: the trapezoid
            w = 1.0 if sim.config.time.scheme == "be" else 0.5
            for k in self.columns:
                self.auc[k] += ((1.0 - w) * before[k] + w * now[k]) * (t - t0)
        self._last = (t, now)

    def on_start(self, sim: Simulation) -> None:
        """Record the initial levels (a resumed run continues from its restored state)."""
        if self.columns and not getattr(self, "_resumed", False):
            self._add(sim)

    def on_step(self, sim: Simulation, info: StepInfo) -> None:
        """Add the step's trapezoid (collective)."""
        if self.columns:
            self._add(sim)

    def on_finish(self, sim: Simulation) -> None:
        """Nothing to do."""

    def values(self) -> dict[str, float]:
        """Integrals so far."""
        return dict(self.auc)

    def state(self) -> dict[str, Any]:
        """Everything needed to continue the integrals (for checkpoints; JSON-ready)."""
        return {"auc": dict(self.auc), "last": list(self._last) if self._last else None}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state` (a resumed run)."""
        self.auc = {k: float(state["auc"].get(k, 0.0)) for k in self.columns}
        last = state.get("last")
        self._last = (float(last[0]), {k: float(v) for k, v in last[1].items()}) if last else None
        self._resumed = True


class Progress:
    """Progress of a run on rank 0, with the percentage of simulated time done and an ETA.

    By default one line per step: step, t, dt, Newton/linear iterations, percentage, elapsed
    time and ETA. With ``percent_step`` a line only each time another ``percent_step`` % of
    the case's ``t_end`` is done (an arm of ``compare`` or ``batch``). The percentage is the
    simulated time done of ``t_end``; the ETA extrapolates the wall time per simulated hour of
    this run (a resumed run counts from its resume time). The lines go to the ``tumorpde``
    logger (:mod:`tumorpde.progress`: stdout unless the command line's ``--quiet`` or
    ``--log-file`` say otherwise), or to ``stream`` if one is given.

    Args:
        stream: Print the lines to this stream instead of the logger.
        every: Print every ``every``-th step (and the last).
        percent_step: Print at every multiple of this percentage instead (no start line).
        label: Start of the lines with ``percent_step`` (default ``run <case name>``).
    """

    def __init__(
        self,
        stream: Any = None,
        every: int = 1,
        *,
        percent_step: float | None = None,
        label: str | None = None,
    ) -> None:
        self.stream = stream
        self.every = max(1, every)
        self.percent_step = percent_step
        self.label = label
        self.meter: Meter | None = None
        self._next = 0.0

    def _say(self, text: str) -> None:
        if self.stream is not None:
            print(text, file=self.stream, flush=True)
        else:
            progress_info(text)

    def on_start(self, sim: Simulation) -> None:
        """Print the problem size; start the clock of the ETA."""
        t0 = float(sim.state.t)
        label = self.label or f"run {sim.config.name}"
        self.meter = Meter(label, float(sim.config.time.t_end), start=t0)
        if self.percent_step is not None:
            step = self.percent_step
            self._next = (int(100 * self.meter.fraction(t0) / step) + 1) * step
        elif sim.comm.rank == 0:
            self._say(
                f"tumorpde: case '{sim.config.name}': {sim.domain.num_cells_global()} cells, "
                f"{sim.state.num_dofs_global()} unknowns, {sim.comm.size} MPI rank(s)"
            )

    def on_step(self, sim: Simulation, info: StepInfo) -> None:
        """Print a progress line."""
        if sim.comm.rank != 0 or self.meter is None:
            return
        if self.percent_step is not None:
            pct = 100 * self.meter.fraction(info.t)
            if pct + 1e-9 >= self._next or info.is_last:
                while self._next <= pct + 1e-9:
                    self._next += self.percent_step
                self._say(self.meter.line(info.t, f"step {info.step}, t = {info.t / 24:.4g} d"))
            return
        if info.step % self.every == 0 or info.is_last:
            extra = f" ({info.rejected} rejected)" if info.rejected else ""
            self._say(
                f"  step {info.step:4d}  t = {info.t:9.3f} h ({info.t / 24:7.3f} d)  "
                f"dt = {info.dt:8.4f} h  newton {info.newton_iterations:2d}  "
                f"linear {info.linear_iterations:4d}{extra}  {self.meter.status(info.t)}"
            )

    def on_finish(self, sim: Simulation) -> None:
        """Nothing to do (the CLI prints the summary)."""
