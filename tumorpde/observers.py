"""Observers: things the time loop notifies (QoI table, field files, progress log).

An observer has ``on_start(sim)``, ``on_step(sim, info)`` and ``on_finish(sim)``. They are called
on every rank in the same order; file writes that are not collective happen on rank 0 only.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

import tumorpde.backend  # noqa: F401  (before any dolfinx import)
from tumorpde.stepper import StepInfo

if TYPE_CHECKING:
    from tumorpde.simulation import Simulation

__all__ = ["FieldWriter", "Observer", "Progress", "QoIRecorder"]


def qoi_columns(sim: Simulation) -> list[str]:
    """CSV columns of a run: step info, the case's QoIs (see :mod:`tumorpde.metrics`), solver."""
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

    The CSV is flushed after every row, so a crashed run keeps the rows it had.
    """

    def __init__(self, path: str | Path | None = None) -> None:
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
        """Open the CSV (rank 0) and record the initial state."""
        self._t0 = time.perf_counter()
        self.columns = qoi_columns(sim)
        if self.path is not None and sim.comm.rank == 0:
            self._file = self.path.open("w", newline="")
            self._writer = csv.DictWriter(self._file, fieldnames=self.columns)
            self._writer.writeheader()
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


class FieldWriter:
    """Writes the selected fields at t = 0 and every output time (collective).

    XDMF (default) writes ``fields.xdmf`` + ``fields.h5`` with the region tags; VTX writes
    ``fields.bp`` (ADIOS2). Both open in ParaView.
    """

    def __init__(self, outdir: str | Path, fmt: str, names: list[str]) -> None:
        self.outdir = Path(outdir)
        self.fmt = fmt
        self.names = names
        self._writer: Any = None
        self.seconds = 0.0

    def on_start(self, sim: Simulation) -> None:
        """Open the file and write the initial fields."""
        from dolfinx import io

        t0 = time.perf_counter()
        funcs = [sim.output_function(n) for n in self.names]
        comm = sim.comm
        if self.fmt == "vtx":
            self._writer = io.VTXWriter(comm, str(self.outdir / "fields.bp"), funcs, engine="BP4")
        else:
            self._writer = io.XDMFFile(comm, str(self.outdir / "fields.xdmf"), "w")
            self._writer.write_mesh(sim.domain.mesh)
            self._writer.write_meshtags(sim.domain.cell_tags, sim.domain.mesh.geometry)
        self._funcs = funcs
        self.seconds += time.perf_counter() - t0
        self._write(sim, 0.0)

    def _write(self, sim: Simulation, t: float) -> None:
        t0 = time.perf_counter()
        sim.update_derived()
        if self.fmt == "vtx":
            self._writer.write(t)
        else:
            for f in self._funcs:
                self._writer.write_function(f, t)
        self.seconds += time.perf_counter() - t0

    def on_step(self, sim: Simulation, info: StepInfo) -> None:
        """Write at output times."""
        if info.is_output:
            self._write(sim, info.t)

    def on_finish(self, sim: Simulation) -> None:
        """Close the file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def files(self) -> list[str]:
        """Names of the files written."""
        return ["fields.bp"] if self.fmt == "vtx" else ["fields.xdmf", "fields.h5"]


class Progress:
    """Prints one line per step on rank 0 (step, t, dt, Newton/linear iterations, burden)."""

    def __init__(self, stream: Any = None, every: int = 1) -> None:
        self.stream = stream or sys.stdout
        self.every = max(1, every)

    def on_start(self, sim: Simulation) -> None:
        """Print the problem size."""
        if sim.comm.rank == 0:
            print(
                f"tumorpde: case '{sim.config.name}': {sim.domain.num_cells_global()} cells, "
                f"{sim.state.num_dofs_global()} unknowns, {sim.comm.size} MPI rank(s)",
                file=self.stream,
                flush=True,
            )

    def on_step(self, sim: Simulation, info: StepInfo) -> None:
        """Print a progress line."""
        if sim.comm.rank == 0 and (info.step % self.every == 0 or info.is_last):
            extra = f" ({info.rejected} rejected)" if info.rejected else ""
            print(
                f"  step {info.step:4d}  t = {info.t:9.3f} h ({info.t / 24:7.3f} d)  "
                f"dt = {info.dt:8.4f} h  newton {info.newton_iterations:2d}  "
                f"linear {info.linear_iterations:4d}{extra}",
                file=self.stream,
                flush=True,
            )

    def on_finish(self, sim: Simulation) -> None:
        """Nothing to do (the CLI prints the summary)."""
