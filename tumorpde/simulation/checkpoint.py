"""Checkpoints: the complete state of a run at an accepted step, restorable on any number of ranks.

A checkpoint is one ``.npz`` file (numpy's zip container: every array carries a CRC, so a
truncated or damaged file is detected on load) written by rank 0 to a temporary name and
renamed into place, so a crash never leaves a half-written checkpoint under a valid name. It
holds:

- every species' current value and its three history levels (BDF2 and its error predictor),
  as P1 nodal values **in the order of the mesh file's nodes**
  (``mesh.geometry.input_global_indices``), so a run written on N ranks restores on M ranks;
- the stepper's state: time, step number, the next step size, the recent step sizes (BDF2
  weights and the error estimator), and the position in the dose schedule (implied by t);
- the accumulated tissue exposures (AUC) and the solver's Jacobian-reuse state, including the
  unknowns its kept flux Jacobian blocks were assembled at (so the resumed solver rebuilds the
  same blocks and follows the uninterrupted run to round-off);
- the case name, species names and the mesh's node count, checked on restore.

Restarting needs the same mesh file (a mesh rewritten by another run has another node order).
:class:`Checkpointer` is an observer that writes checkpoints every N steps, every M minutes of
wall time and at output times; :func:`latest`, :func:`find_at` and :func:`restore` read them.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tumorpde.simulation.simulation import Simulation
    from tumorpde.simulation.stepper import StepInfo

__all__ = [
    "FORMAT",
    "CheckpointError",
    "Checkpointer",
    "find_at",
    "latest",
    "list_checkpoints",
    "p1_input_index",
    "read",
    "restore",
    "write",
]

#: Version of the checkpoint layout (stored in every file).
FORMAT = 1
#: History levels stored per species, in this order.
LEVELS = ("fields", "previous", "older", "oldest")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used (missing, damaged, or of another case or mesh)."""


def p1_input_index(V: Any) -> np.ndarray:
    """Mesh-file node index of every local P1 dof (owned and ghost) on an affine mesh."""
    g = V.mesh.geometry.dofmaps[0]
    assert V.dofmap.list.shape == g.shape and V.dofmap.index_map_bs == 1
    n = V.dofmap.index_map.size_local + V.dofmap.index_map.num_ghosts
    node = np.empty(n, dtype=np.int64)
    node[V.dofmap.list.ravel()] = g.ravel()
    return np.asarray(V.mesh.geometry.input_global_indices, dtype=np.int64)[node]


def _gather_nodal(sim: Simulation) -> np.ndarray | None:
    """``(levels, species, nodes)`` array in mesh-file order on rank 0 (None elsewhere).

    The levels are :data:`LEVELS`, plus the solver's flux state (the unknowns its kept flux
    Jacobian blocks were assembled at) when it has one.
    """
    st = sim.state
    V = st.V
    n = V.dofmap.index_map.size_local
    idx = p1_input_index(V)[:n]
    levels = [[getattr(st, lvl)[s].x.array[:n] for s in st.names] for lvl in LEVELS]
    flux = sim.solver.flux_state()
    if sim.comm.allreduce(flux is not None, op=_land()):
        assert flux is not None
        levels.append([a[:n] for a in flux])
    local = np.stack([np.stack(level) for level in levels])
    parts = sim.comm.gather((idx, local), root=0)
    if sim.comm.rank != 0:
        return None
    assert parts is not None
    n_nodes = int(V.mesh.geometry.index_map().size_global)
    out = np.empty((len(levels), len(st.names), n_nodes))
    for i, vals in parts:
        out[:, :, i] = vals
    return out


def _land() -> Any:
    from mpi4py import MPI

    return MPI.LAND


def _meta(sim: Simulation, info: StepInfo | None, reason: str) -> dict[str, Any]:
    st = sim.state
    return {
        "format": FORMAT,
        "case": sim.config.name,
        "species": st.names,
        "nodes": int(st.V.mesh.geometry.index_map().size_global),
        "t": st.t,
        "step": info.step if info is not None else 0,
        "h_next": info.h_next if info is not None else None,
        "dt_history": list(st.dt_history),
        "estimator": sim.error_estimator.memory(),
        "exposure": sim.exposure.state(),
        "solver": sim.solver.reuse_state(),
        "ranks": sim.comm.size,
        "reason": reason,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write(sim: Simulation, path: str | Path, info: StepInfo | None, reason: str = "") -> Path:
    """Write the state of ``sim`` after the step ``info`` to ``path`` (collective).

    Args:
        sim: The simulation (at an accepted step).
        path: The ``.npz`` file; written to a temporary name in its folder, then renamed.
        info: The step just accepted (None: the initial state).
        reason: Why (``"steps"``, ``"minutes"``, ``"output"``, ``"SIGTERM"``...), recorded.

    Returns:
        The path.
    """
    path = Path(path)
    data = _gather_nodal(sim)
    meta = _meta(sim, info, reason)
    err = None
    if sim.comm.rank == 0:
        assert data is not None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, state=data, meta=np.array(json.dumps(meta)))
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o666 & ~_umask())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            err = f"cannot write checkpoint {path}: {exc}"
    err = sim.comm.bcast(err, root=0)
    if err is not None:
        raise CheckpointError(err)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Load a checkpoint file (every rank may call this).

    Returns:
        ``(state array (levels, species, nodes), metadata)``.

    Raises:
        CheckpointError: If the file is missing, damaged or of an unknown format.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = np.array(z["state"])
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from None
    except Exception as exc:  # zipfile.BadZipFile and CRC errors
        raise CheckpointError(f"checkpoint {path} is damaged: {exc}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')}, not {FORMAT}")
    return data, meta


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Checkpoint files in ``directory``, oldest first (by step number in the name)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(d.glob("step-*.npz"), key=lambda p: (_step_of(p), p.name))


def _step_of(path: Path) -> int:
    try:
        return int(path.stem.split("-")[1])
    except (IndexError, ValueError):
        return -1


def latest(directory: str | Path, comm: Any) -> Path | None:
    """The newest checkpoint in ``directory`` that loads (rank 0 decides; collective)."""
    found = None
    if comm.rank == 0:
        for p in reversed(list_checkpoints(directory)):
            try:
                read(p)
            except CheckpointError:
                continue
            found = str(p)
            break
    found = comm.bcast(found, root=0)
    return Path(found) if found else None


def find_at(directory: str | Path, t: float, comm: Any) -> Path:
    """The checkpoint at time ``t`` (h) in ``directory`` (collective).

    Raises:
        CheckpointError: If there is none; the message lists the times that exist.
    """
    found, times = None, []
    if comm.rank == 0:
        for p in list_checkpoints(directory):
            try:
                _, meta = read(p)
            except CheckpointError:
                continue
            times.append(float(meta["t"]))
            if abs(float(meta["t"]) - t) <= 1e-9 * max(1.0, abs(t)):
                found = str(p)
    found, times = comm.bcast((found, times), root=0)
    if found is None:
        have = ", ".join(f"{x:g} h" for x in sorted(set(times))) or "none"
        raise CheckpointError(
            f"no checkpoint at t = {t:g} h in {directory}; checkpoints exist at: {have} "
            "(every output time has one)"
        )
    return Path(found)


def restore(
    sim: Simulation, path: str | Path, *, species: Sequence[str] | None = None, state: bool = True
) -> dict[str, Any]:
    """Load a checkpoint into ``sim`` (collective; any number of ranks).

    Args:
        sim: A freshly built simulation on the same mesh file.
        path: The checkpoint.
        species: Restore only these (a branched case may add species, e.g. drugs, which keep
            their initial values); default: all, and the species lists must match.
        state: Also restore the stepper, exposure and solver state (a resume). False for a
            branch: only the fields and the time are taken.

    Returns:
        The checkpoint's metadata.

    Raises:
        CheckpointError: If the checkpoint does not fit the simulation.
    """
    data, meta = read(path)
    st = sim.state
    n_nodes = int(st.V.mesh.geometry.index_map().size_global)
    if meta["nodes"] != n_nodes:
        raise CheckpointError(
            f"checkpoint {path} has {meta['nodes']} mesh nodes, this mesh has {n_nodes}: "
            "restart on the same mesh file"
        )
    names = list(meta["species"])
    wanted = list(species) if species is not None else st.names
    if species is None and names != st.names:
        raise CheckpointError(
            f"checkpoint {path} has species {names}, this case has {st.names}; "
            "resume the same case (or branch with --restart-from)"
        )
    missing = [s for s in wanted if s not in names]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks species {missing}")
    idx = p1_input_index(st.V)
    for k, lvl in enumerate(LEVELS):
        for s in wanted:
            getattr(st, lvl)[s].x.array[:] = data[k, names.index(s), idx]
    st.t = float(meta["t"])
    if state:
        st.dt_history = [float(x) for x in meta["dt_history"]]
        sim.error_estimator.set_memory(meta.get("estimator"))
        sim.exposure.set_state(meta["exposure"])
        flux = None
        if data.shape[0] > len(LEVELS):  # the unknowns of the kept flux Jacobian blocks
            flux = [data[len(LEVELS), names.index(s), idx] for s in st.names]
        sim.solver.set_reuse_state(meta["solver"], flux)
    else:
        for s in wanted:  # a branch starts a new history: backward Euler first
            for lvl in LEVELS[1:]:
                getattr(st, lvl)[s].x.array[:] = st.fields[s].x.array
        st.dt_history = []
    sim.forms.set_time(st.t)
    sim.update_derived()
    return meta


class Checkpointer:
    """Observer that writes checkpoints into a folder.

    Checkpoints are written after every ``every_steps`` accepted steps, when ``every_minutes``
    of wall time have passed since the last one (rank 0's clock, broadcast), at every output
    time (they stay, for branching with ``--restart-from DIR --at T``) and on request
    (:meth:`write_now`, e.g. at SIGTERM). Of the others only the newest ``keep`` are kept.

    Args:
        directory: Where the ``step-<n>.npz`` files go.
        every_steps: Step interval (0: off).
        every_minutes: Wall-time interval (0: off).
        at_outputs: Also at every output time.
        keep: How many of the periodic checkpoints to keep.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        every_steps: int = 0,
        every_minutes: float = 0.0,
        at_outputs: bool = True,
        keep: int = 2,
    ) -> None:
        self.directory = Path(directory)
        self.every_steps = every_steps
        self.every_minutes = every_minutes
        self.at_outputs = at_outputs
        self.keep = max(1, keep)
        self.written: list[Path] = []
        self._periodic: list[Path] = []
        self._last_wall = time.monotonic()
        self.seconds = 0.0

    def _name(self, info: StepInfo | None) -> Path:
        return self.directory / f"step-{(info.step if info else 0):07d}.npz"

    def write_now(self, sim: Simulation, info: StepInfo | None, reason: str) -> Path:
        """Write a checkpoint of the current (accepted) state (collective)."""
        t0 = time.perf_counter()
        path = write(sim, self._name(info), info, reason)
        self.written.append(path)
        self._last_wall = time.monotonic()
        self.seconds += time.perf_counter() - t0
        return path

    def on_start(self, sim: Simulation) -> None:
        """Start the wall clock."""
        self._last_wall = time.monotonic()

    def on_step(self, sim: Simulation, info: StepInfo) -> None:
        """Write when a step, wall-time or output trigger is due (collective decision)."""
        reason = ""
        if self.at_outputs and info.is_output:
            reason = "output"
        elif self.every_steps and info.step % self.every_steps == 0:
            reason = "steps"
        elif self.every_minutes:
            due = time.monotonic() - self._last_wall >= 60.0 * self.every_minutes
            if sim.comm.bcast(due, root=0):
                reason = "minutes"
        if not reason:
            return
        path = self.write_now(sim, info, reason)
        if reason != "output":
            self._periodic.append(path)
            while len(self._periodic) > self.keep:
                old = self._periodic.pop(0)
                if sim.comm.rank == 0:
                    old.unlink(missing_ok=True)

    def on_finish(self, sim: Simulation) -> None:
        """Nothing to do (the final state is an output time)."""
