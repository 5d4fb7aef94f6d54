"""Batch execution of a sweep on MPI sub-communicators, resumable, with one summary table.

``mpiexec -n N tumorpde batch SWEEP -o OUT --procs-per-run K`` (:func:`run_batch`):

* **Groups.** ``COMM_WORLD`` is split into ``N // K`` groups of ``K`` consecutive ranks
  (:func:`split_groups`). Leftover ranks (``N % K``) are folded into the last group by default
  (it runs with ``K + N % K`` ranks); ``leftover="idle"`` leaves them out (they wait at the
  end). With ``N < K`` there is one group of ``N`` ranks. Each run records its rank count.
* **Scheduling.** World rank 0 coordinates *and* works as the leader of group 0. Runs are
  handed out one at a time, largest estimated cost first (time steps × mesh cells × species,
  :func:`tumorpde.studies.sweep.estimate_cost`), to whichever group asks next. Group leaders
  ask rank 0 with a point-to-point message when they are idle; rank 0 answers between its own
  runs and at every time step of its own run (an observer), so the answer waits at most one
  time step (or the set-up of rank 0's current run). Waiting ranks poll with short sleeps
  instead of spinning in a blocking MPI call.
* **Runs.** Each run is ``Simulation(cfg, comm=group).run(OUT/runs/<id>, resume=...,
  progress=False)`` in its own directory; a log per run goes to ``OUT/logs/<id>.log``.
* **Failure isolation.** Any exception of a run (``StepFailedError``, ``ConfigError``, ...) is
  caught on each rank; the group then agrees on the outcome with one ``allreduce`` and gathers
  the messages to its leader, so a failed run is recorded (summary, ``OUT/records/<id>.json``,
  log) and the group takes the next run. Remaining risk: a rank that raises (or dies) while the
  others of its group are inside a collective call of the solver leaves that group hanging;
  tumorpde raises its solver errors on all ranks together, so this needs a rank-local fault
  (e.g. a killed process or out-of-memory on one rank): use the scheduler's time limit.
* **Resume.** A run whose manifest says ``complete`` is never touched again; runs that are
  ``interrupted``/``failed``/``running`` (killed) resume from their newest checkpoint, a run
  directory without a manifest is redone from scratch. ``retry_failed=False`` keeps recorded
  failures as they are.
* **Summary.** ``OUT/summary.csv`` (and ``summary.parquet`` with pyarrow) has one row per run:
  id, arm, every varied input, status, error, final/peak/time-averaged QoIs from the run's
  ``qoi.csv``, wall time and ranks; rank 0 rewrites it atomically after every finished run.

Nothing is assumed about node-local storage: every file lives under ``OUT``, which all ranks
must see (a shared file system).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tumorpde.output.rundir import is_tumorpde_manifest, write_json_atomic, write_text_atomic
from tumorpde.progress import Meter
from tumorpde.studies.sweep import RunSpec, Sweep
from tumorpde.units import format_duration

__all__ = [
    "Scheduler",
    "dispatch",
    "qoi_stats",
    "read_summary",
    "run_batch",
    "scan_status",
    "split_groups",
    "summary_rows",
    "write_summary",
]

_TAG_REQUEST = 7101
_TAG_ASSIGN = 7102
#: QoIs whose first value is also summarised (``<q>_initial``: the cohort's start burden).
_INITIAL = ("tumor_burden_mm3",)
#: QoI columns that are bookkeeping, not model outputs (left out of the summary's statistics).
_BOOKKEEPING = {
    "step",
    "t_h",
    "dt_h",
    "newton_iterations",
    "linear_iterations",
    "rejected_steps",
    "error_estimate",
    "wall_s",
}


# ------------------------------------------------------------------------------ groups
def split_groups(size: int, procs_per_run: int, leftover: str = "fold") -> list[int | None]:
    """The group (color) of each world rank: ``size // procs_per_run`` groups.

    Args:
        size: World size.
        procs_per_run: Ranks per run (K).
        leftover: ``"fold"``: the ``size % K`` leftover ranks join the last group; ``"idle"``:
            they get no group (None) and only wait.

    Returns:
        One color per rank (consecutive ranks share a group; rank 0 is in group 0).

    Raises:
        ValueError: If ``procs_per_run < 1`` or ``leftover`` is unknown.
    """
    if procs_per_run < 1:
        raise ValueError(f"--procs-per-run must be >= 1 (got {procs_per_run})")
    if leftover not in ("fold", "idle"):
        raise ValueError(f"leftover must be 'fold' or 'idle' (got {leftover!r})")
    groups = max(1, size // procs_per_run)
    colors: list[int | None] = []
    for r in range(size):
        g: int | None = r // procs_per_run
        if g is not None and g >= groups:
            g = groups - 1 if (leftover == "fold" or size < procs_per_run) else None
        colors.append(g)
    return colors


class Scheduler:
    """The queue of runs: largest estimated cost first (ties: sweep order)."""

    def __init__(self, costs: Sequence[float], todo: Iterable[int] | None = None) -> None:
        items = list(range(len(costs))) if todo is None else list(todo)
        self.queue = deque(sorted(items, key=lambda i: (-float(costs[i] or 0.0), i)))
        self.running: set[int] = set()
        self.finished: list[int] = []

    def take(self) -> int:
        """The next run index, or -1 when the queue is empty."""
        if not self.queue:
            return -1
        i = self.queue.popleft()
        self.running.add(i)
        return i

    def done(self, i: int) -> None:
        """Mark run ``i`` finished."""
        self.running.discard(i)
        self.finished.append(i)


def _wait(req: Any) -> None:
    """Complete an MPI request by polling with short sleeps (no busy spin)."""
    pause = 1e-4
    while not req.Test():
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def _bcast_index(group: Any, index: int | None) -> int:
    buf = np.array([index if index is not None else -1], dtype=np.int64)
    if group.size > 1:
        _wait(group.Ibcast(buf, root=0))
    return int(buf[0])


class _Coordinator:
    """World rank 0: hands out run indices to the group leaders and collects their results."""

    def __init__(
        self,
        world: Any,
        scheduler: Scheduler,
        leaders: Iterable[int],
        on_result: Callable[[dict[str, Any]], None],
    ) -> None:
        self.world = world
        self.scheduler = scheduler
        self.active = set(leaders)
        self.on_result = on_result
        self.stopping = False

    def _next(self) -> int:
        from tumorpde.simulation import interrupt

        if interrupt.requested():
            self.stopping = True
        return -1 if self.stopping else self.scheduler.take()

    def result(self, res: dict[str, Any] | None) -> None:
        if res is None:
            return
        self.scheduler.done(int(res["index"]))
        if res.get("status") == "interrupted":
            self.stopping = True
        self.on_result(res)

    def service(self) -> None:
        """Answer every pending request (non-blocking; safe to call at any time on rank 0)."""
        from mpi4py import MPI

        status = MPI.Status()
        while self.world.iprobe(source=MPI.ANY_SOURCE, tag=_TAG_REQUEST, status=status):
            src = status.Get_source()
            res, stop = self.world.recv(source=src, tag=_TAG_REQUEST)
            self.result(res)
            if stop:
                self.stopping = True
            index = -1 if stop else self._next()
            self.world.Send(np.array([index], dtype=np.int64), dest=src, tag=_TAG_ASSIGN)
            if index < 0:
                self.active.discard(src)

    def finish(self) -> None:
        """Serve until every other group leader has been told to stop."""
        pause = 1e-4
        while self.active:
            self.service()
            time.sleep(pause)
            pause = min(pause * 2, 0.02)


def dispatch(
    world: Any,
    group: Any | None,
    costs: Sequence[float],
    execute: Callable[[int, Any, Callable[[], None] | None], dict[str, Any] | None],
    on_result: Callable[[dict[str, Any]], None] | None = None,
    *,
    todo: Iterable[int] | None = None,
    scheduler: Scheduler | None = None,
) -> None:
    """Run ``execute(index, group, poll)`` for every index, dynamically over the groups.

    Collective over ``world``. World rank 0 must be rank 0 of its group. ``execute`` is called
    on every rank of a group with the same index; on the group's rank 0 it returns the result
    (a dict with at least ``"index"``; ``"status": "interrupted"`` stops the handing out),
    which reaches ``on_result`` on world rank 0. ``poll`` (rank 0 only, else None) must be
    called often during a long ``execute`` (e.g. every time step) to answer the other groups.

    Args:
        world: The communicator of the whole batch.
        group: This rank's group communicator (None: an idle rank).
        costs: Cost estimate of each index (largest first).
        execute: Runs one index on a group.
        on_result: Called on world rank 0 with each result, as it arrives.
        todo: The indices to run (default all).
        scheduler: The queue to use on rank 0 (default ``Scheduler(costs, todo)``).
    """
    leader = group is not None and group.rank == 0
    leaders = world.gather(world.rank if leader else -1, root=0)
    if world.rank == 0:
        assert leader, "world rank 0 must lead group 0"
        sched = scheduler if scheduler is not None else Scheduler(costs, todo)
        coord = _Coordinator(
            world, sched, [r for r in leaders if r > 0], on_result or (lambda r: None)
        )
        while True:
            coord.service()
            index = _bcast_index(group, coord._next())
            if index < 0:
                break
            coord.result(execute(index, group, coord.service))
        coord.finish()
    elif leader:
        from tumorpde.simulation import interrupt

        res: dict[str, Any] | None = None
        while True:
            stop = bool(interrupt.requested()) or (res or {}).get("status") == "interrupted"
            world.send((res, stop), dest=0, tag=_TAG_REQUEST)
            buf = np.empty(1, dtype=np.int64)
            _wait(world.Irecv(buf, source=0, tag=_TAG_ASSIGN))
            index = _bcast_index(group, int(buf[0]))
            if index < 0:
                break
            res = execute(index, group, None)
    elif group is not None:
        while True:
            index = _bcast_index(group, None)
            if index < 0:
                break
            execute(index, group, None)
    _wait(world.Ibarrier())


# ------------------------------------------------------------------------------ one run
class _Poll:
    """Observer that lets world rank 0 answer the other groups at every time step."""

    def __init__(self, poll: Callable[[], None]) -> None:
        self.poll = poll

    def on_start(self, sim: Any) -> None:
        self.poll()

    def on_step(self, sim: Any, info: Any) -> None:
        self.poll()

    def on_finish(self, sim: Any) -> None:
        self.poll()


#: Outcome codes agreed within a group (the largest wins).
_CODES = {"complete": 0, "busy": 1, "failed": 2, "interrupted": 3}


def _prepare_dir(rdir: Path) -> bool:
    """Whether ``rdir`` holds a tumorpde run to resume; a directory without one is cleared."""
    if is_tumorpde_manifest(rdir / "manifest.json"):
        return True
    if rdir.exists():  # created, then killed before the manifest: redo it from scratch
        shutil.rmtree(rdir, ignore_errors=True)
    return False


def _log(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def execute_run(
    sweep: Sweep,
    run: RunSpec,
    group: Any,
    out: Path,
    poll: Callable[[], None] | None,
    progress: bool = False,
) -> dict[str, Any] | None:
    """Run one sweep run on ``group`` into ``out/runs/<id>`` (collective over ``group``).

    Every exception is caught; the group agrees on the outcome (``complete``, ``failed``,
    ``interrupted``, or ``busy`` when a live process holds the directory). With ``progress``
    the group's rank 0 prints the run's percentage and ETA at every 10 % of its simulated time.

    Returns:
        On the group's rank 0 the result (index, id, status, error, wall_s, ranks, host);
        None on the other ranks.
    """
    from mpi4py import MPI

    from tumorpde.output.rundir import RunDirBusyError
    from tumorpde.simulation import Simulation, interrupt
    from tumorpde.simulation.observers import Progress

    t0 = time.perf_counter()
    rdir = out / run.rel_dir
    log = out / "logs" / f"{run.id}.log"
    resume = None
    if group.rank == 0:
        resume = _prepare_dir(rdir)
        _log(
            log,
            f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] start run {run.id} (index {run.index}, "
            f"arm {run.arm}) on {group.size} rank(s), host {socket.gethostname()}, "
            f"{'resume' if resume else 'fresh'}; values {json.dumps(run.values, default=str)}",
        )
    resume = bool(group.bcast(resume, root=0))
    status, error, tb, signame = "complete", "", "", None
    try:
        cfg = sweep.config(run)
        observers: list[Any] = [_Poll(poll)] if poll is not None else []
        if progress:
            name = f"run {run.id}" + (f" (arm {run.arm})" if run.arm else "")
            observers.append(Progress(percent_step=10.0, label=f"  {name}"))
        with Simulation(cfg, group, observers) as sim:
            sim.run(rdir, resume=resume, progress=False, case_text=sweep.case_text(run))
    except interrupt.Interrupted as exc:
        status, error, signame = "interrupted", str(exc), exc.signal_name
    except RunDirBusyError as exc:
        status, error = "busy", str(exc)
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        tb = traceback.format_exc()
    code = group.allreduce(_CODES[status], op=MPI.MAX)
    reports = group.gather((status, error, tb), root=0)
    if group.rank != 0:
        return None
    agreed = next(s for s, c in _CODES.items() if c == code)
    errors = [(r, e) for r, (s, e, _) in enumerate(reports) if s == agreed and e]
    msg = errors[0][1] if errors else ""
    if len({e for _, e in errors}) > 1:
        msg = "; ".join(f"rank {r}: {e}" for r, e in errors)
    elif agreed == "failed" and len(errors) < group.size:
        msg += f" (on rank(s) {', '.join(str(r) for r, _ in errors)} of the group)"
    wall = time.perf_counter() - t0
    for r, (s, _e, t) in enumerate(reports):
        if t:
            _log(log, f"group rank {r} ({s}):\n{t}")
    _log(
        log,
        f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {agreed} after {wall:.2f} s"
        + (f": {msg}" if msg else ""),
    )
    return {
        "index": run.index,
        "id": run.id,
        "status": agreed,
        "error": msg.replace("\n", " | "),
        "wall_s": wall,
        "ranks": group.size,
        "host": socket.gethostname(),
        "signal": signame,
    }


# ------------------------------------------------------------------------------ summary
def qoi_stats(path: Path) -> dict[str, float]:
    """Final, peak (maximum) and time-averaged value of each model QoI in a ``qoi.csv``.

    Columns ``<q>_final``, ``<q>_peak``, ``<q>_timeavg`` (trapezoidal mean over time), plus
    ``tumor_burden_mm3_initial``, ``t_final_h`` and ``steps``. Bookkeeping columns
    (iterations, wall time) are left out.
    """
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return {}
    if not rows:
        return {}
    table: dict[str, np.ndarray] = {}
    for k in rows[0]:
        try:
            table[k] = np.array([float(r[k]) for r in rows])
        except (TypeError, ValueError):
            continue
    t = table.get("t_h")
    out: dict[str, float] = {}
    if t is not None:
        out["t_final_h"] = float(t[-1])
        out["steps"] = float(len(t) - 1)
    for k, v in table.items():
        if k in _BOOKKEEPING:
            continue
        if k in _INITIAL:
            out[f"{k}_initial"] = float(v[0])
        out[f"{k}_final"] = float(v[-1])
        out[f"{k}_peak"] = float(np.max(v))
        if t is not None and len(t) > 1 and t[-1] > t[0]:
            out[f"{k}_timeavg"] = float(np.trapezoid(v, t) / (t[-1] - t[0]))
        else:
            out[f"{k}_timeavg"] = float(v[-1])
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def scan_status(out: Path, run: RunSpec) -> str:
    """Status of a run on disk: the manifest's ``complete``, else the record's, else ``pending``."""
    manifest = _read_json(out / run.rel_dir / "manifest.json")
    if manifest is not None and manifest.get("status") == "complete":
        return "complete"
    record = _read_json(out / "records" / f"{run.id}.json")
    if record is not None and record.get("status") in ("failed", "interrupted"):
        return str(record["status"])
    if manifest is not None and isinstance(manifest.get("status"), str):
        return "interrupted" if manifest["status"] == "running" else str(manifest["status"])
    return "pending"


def _cell(v: Any) -> Any:
    if isinstance(v, dict | list):
        return json.dumps(v, default=str)
    return v


def summary_row(sweep: Sweep, run: RunSpec, out: Path) -> dict[str, Any]:
    """The summary row of one run, from its manifest, record and ``qoi.csv`` on disk."""
    rdir = out / run.rel_dir
    manifest = _read_json(rdir / "manifest.json") or {}
    record = _read_json(out / "records" / f"{run.id}.json") or {}
    status = scan_status(out, run)
    row: dict[str, Any] = {
        "run": run.id,
        "index": run.index,
        "arm": run.arm or "",
        "sample": run.sample,
    }
    for p in sweep.params:
        row[p] = _cell(run.values.get(p, ""))
    row["status"] = status
    error = "" if status == "complete" else str(record.get("error") or manifest.get("reason") or "")
    row["error"] = error
    row.update(qoi_stats(rdir / "qoi.csv") if status != "pending" else {})
    wall = record.get("wall_s")
    if wall is None:
        wall = (manifest.get("timings_s") or {}).get("total_s")
    row["wall_s"] = wall if wall is not None else ""
    ranks = record.get("ranks", manifest.get("mpi_ranks", ""))
    row["ranks"] = ranks
    row["dir"] = run.rel_dir
    return row


def summary_rows(sweep: Sweep, out: Path, runs: Sequence[RunSpec] | None = None) -> list[dict]:
    """Summary rows of ``runs`` (default every run of the sweep), in sweep order."""
    return [summary_row(sweep, r, out) for r in (runs if runs is not None else sweep.runs)]


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    seen: set[str] = set()
    for r in rows:
        for k in r:
            if k not in seen:
                seen.add(k)
                cols.append(k)
    tail = [c for c in ("wall_s", "ranks", "dir") if c in seen]
    return [c for c in cols if c not in tail] + tail


def write_summary(out: Path, rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Write ``out/summary.csv`` (and ``summary.parquet`` if pyarrow is there), atomically.

    Returns:
        The written files by kind.
    """
    cols = _columns(rows)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (format(v, ".10g") if isinstance(v, float) else v) for k, v in r.items()})
    write_text_atomic(out / "summary.csv", buf.getvalue())
    files = {"csv": str(out / "summary.csv")}
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return files
    data: dict[str, list[Any]] = {}
    for c in cols:
        vals = [r.get(c) for r in rows]
        vals = [None if v == "" else v for v in vals]
        numeric = all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in vals
        )
        if numeric:
            data[c] = [None if v is None else float(v) for v in vals]
        else:
            data[c] = [None if v is None else str(v) for v in vals]
    tmp = out / f".summary.parquet.{os.getpid()}.tmp"
    pq.write_table(pa.table(data), tmp)
    os.replace(tmp, out / "summary.parquet")
    files["parquet"] = str(out / "summary.parquet")
    return files


def read_summary(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``summary.csv`` (strings)."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------ the batch
def run_batch(
    sweep: Sweep,
    outdir: str | Path,
    *,
    comm: Any = None,
    procs_per_run: int = 1,
    leftover: str = "fold",
    retry_failed: bool = True,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    stream: Any = None,
    label: str = "tumorpde batch",
) -> dict[str, Any]:
    """Run every missing run of ``sweep`` into ``outdir`` (collective over ``comm``).

    Args:
        sweep: The validated sweep (:func:`tumorpde.studies.sweep.load_sweep`); only world rank
            0's copy is used for costs and what to run, the others may pass the same sweep.
        outdir: The batch directory (``runs/<id>/``, ``logs/``, ``records/``, ``summary.csv``,
            ``batch.json``); it must be visible to every rank.
        comm: The world communicator (default ``MPI.COMM_WORLD``).
        procs_per_run: Ranks per run (K).
        leftover: What the ``size % K`` leftover ranks do: ``"fold"`` or ``"idle"``.
        retry_failed: Run recorded failures again (resume from their checkpoint).
        shard: ``(i, m)``: only the runs with ``index % m == i`` (a job-array task).
        progress: Print progress lines on rank 0.
        stream: Where progress goes (default stdout).
        label: Start of the progress lines (percentage of runs done, ETA).

    Returns:
        ``{"rows": [...], "files": {...}, "counts": {...}, "executed": [ids], "groups": n,
        "interrupted": signal name or None}``, the same on every rank.
    """
    from mpi4py import MPI

    world_in = comm if comm is not None else MPI.COMM_WORLD
    out = Path(outdir).resolve()
    stream = stream or sys.stdout
    colors = split_groups(world_in.size, procs_per_run, leftover)
    world = world_in.Dup()
    t0 = time.perf_counter()
    color = colors[world.rank]
    group = world.Split(MPI.UNDEFINED if color is None else color, world.rank)
    if group == MPI.COMM_NULL:
        group = None
    n_groups = len({c for c in colors if c is not None})
    idle = sum(c is None for c in colors)

    # rank 0: what to run (complete runs are never touched again)
    setup: tuple[list[int], str | None] = ([], None)
    rows: dict[int, dict[str, Any]] = {}
    runs = sweep.runs
    if world.rank == 0:
        err = None
        try:
            for sub in ("runs", "logs", "records"):
                (out / sub).mkdir(parents=True, exist_ok=True)
            mine = [r for r in runs if shard is None or r.index % shard[1] == shard[0]]
            status = {r.index: scan_status(out, r) for r in mine}
            todo = [
                r.index
                for r in mine
                if status[r.index] != "complete" and (retry_failed or status[r.index] != "failed")
            ]
            old = _read_json(out / "batch.json")
            desc = sweep.describe()
            if old is not None and old.get("base_sha256") != desc["base_sha256"]:
                print(
                    f"tumorpde batch: warning: the base case {sweep.base_path} changed since "
                    f"{out / 'batch.json'} was written; complete runs are kept as they are",
                    file=sys.stderr,
                    flush=True,
                )
            write_json_atomic(out / "batch.json", {**desc, "procs_per_run": procs_per_run})
            rows = {r.index: summary_row(sweep, r, out) for r in runs}
            write_summary(out, [rows[i] for i in sorted(rows)])
            setup = (todo, None)
            n_done = sum(s == "complete" for s in status.values())
            if progress:
                lay = f"{n_groups} group(s) of {procs_per_run} rank(s)"
                if world.size % procs_per_run and world.size >= procs_per_run:
                    extra = world.size % procs_per_run
                    lay += f"; {extra} leftover rank(s) " + (
                        "folded into the last group" if leftover == "fold" else "idle"
                    )
                elif world.size < procs_per_run:
                    lay = f"1 group of {world.size} rank(s) (fewer ranks than --procs-per-run)"
                print(
                    f"{label}: {len(mine)} run(s) of sweep '{sweep.name}' "
                    f"({n_done} complete already, {len(todo)} to run) on {lay} -> {out}",
                    file=stream,
                    flush=True,
                )
        except OSError as exc:
            err = f"cannot use batch directory {out}: {exc}"
        setup = (setup[0], err)
    todo, err = world.bcast(setup, root=0)
    if err is not None:
        world.Free()
        if group is not None:
            group.Free()
        from tumorpde.output.rundir import OutputDirError

        raise OutputDirError(err)

    executed: list[str] = []
    interrupted: list[str] = []
    by_index = {r.index: r for r in runs}
    counts = {"total": len(todo), "finished": 0, "failed": 0}
    sched = Scheduler([r.cost for r in runs], todo)
    meter = Meter(label, counts["total"])

    def on_result(res: dict[str, Any]) -> None:
        run = by_index[int(res["index"])]
        if res["status"] == "busy":
            return
        write_json_atomic(out / "records" / f"{run.id}.json", res)
        rows[run.index] = summary_row(sweep, run, out)
        write_summary(out, [rows[i] for i in sorted(rows)])
        executed.append(run.id)
        if res["status"] == "interrupted":
            interrupted.append(str(res.get("signal") or "SIGTERM"))
            return
        counts["finished"] += 1
        counts["failed"] += res["status"] == "failed"
        if progress:
            left = counts["total"] - counts["finished"]
            running = len(sched.running)
            name = run.id + (f" (arm {run.arm})" if run.arm else "")
            print(
                meter.line(
                    counts["finished"],
                    f"{counts['finished']}/{counts['total']} done ({counts['failed']} failed), "
                    f"{running} running, {max(0, left - running)} queued | {name} "
                    f"{res['status']} in {format_duration(res['wall_s'])} on {res['ranks']} "
                    "rank(s)" + (f": {res['error'][:160]}" if res["error"] else ""),
                ),
                file=stream,
                flush=True,
            )

    def execute(index: int, g: Any, poll: Callable[[], None] | None) -> dict[str, Any] | None:
        # world rank 0 also reports the progress of the runs its own group executes
        return execute_run(sweep, by_index[index], g, out, poll, progress and world.rank == 0)

    dispatch(world, group, [r.cost for r in runs], execute, on_result, scheduler=sched)

    files: dict[str, str] = {}
    final_rows: list[dict[str, Any]] = []
    if world.rank == 0:
        final_rows = summary_rows(sweep, out)  # everything on disk (other shards too)
        files = write_summary(out, final_rows)
    final_rows, files, executed_all, intr = world.bcast(
        (final_rows, files, executed, interrupted[0] if interrupted else None), root=0
    )
    from tumorpde.simulation import interrupt

    if intr is None and interrupt.requested():
        intr = interrupt.requested()
    statuses = [r["status"] for r in final_rows]
    result = {
        "rows": final_rows,
        "files": files,
        "counts": {s: statuses.count(s) for s in sorted(set(statuses))},
        "executed": executed_all,
        "groups": n_groups,
        "idle_ranks": idle,
        "wall_s": time.perf_counter() - t0,
        "interrupted": intr,
    }
    if group is not None:
        group.Free()
    world.Free()
    return result
