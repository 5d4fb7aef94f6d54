"""Progress lines with percentage and ETA, and the ``tumorpde`` logger the command line sets up.

Every long operation (the time steps of a run, the arms of ``compare`` and ``batch``, the
problems of ``bench``, the stages of ``mesh build``) reports through one :class:`Meter`, so that
all of them print the same ``<label>: 42.0 %, elapsed 1 min 03 s, ETA 1 min 27 s`` status.
After :func:`configure` (called by the CLI for ``--quiet``, ``--verbose`` and ``--log-file``)
the lines are INFO records of the ``tumorpde`` logger (debug detail, such as gmsh's own log, at
DEBUG); a program that has not configured it gets them on stdout, as ``print`` would (see
:func:`info`). Base layer: imports nothing of tumorpde but :mod:`tumorpde.units`, and no MPI
(the caller passes the rank).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from tumorpde.units import format_duration

__all__ = [
    "LOGGER_NAME",
    "ConsoleHandler",
    "Meter",
    "Stages",
    "configure",
    "configured",
    "env_rank",
    "finished",
    "get_logger",
    "info",
    "reset",
    "stage",
]

#: Name of the package logger.
LOGGER_NAME = "tumorpde"
#: Attribute set on the handlers this module installs (so :func:`configure` replaces only them).
_OURS = "_tumorpde_handler"


class ConsoleHandler(logging.Handler):
    """Writes a record's message as a line: INFO and DEBUG to stdout, WARNING and up to stderr.

    A record with ``extra={"stderr": True}`` goes to stderr at any level (progress of a command
    whose stdout carries data, such as ``bench``'s JSON lines).

    Args:
        stdout: The stream for INFO/DEBUG; None: ``sys.stdout`` at the time of each record.
        stderr: The stream for WARNING and up; None: ``sys.stderr`` at the time of each record.
    """

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        super().__init__()
        self._out = stdout
        self._err = stderr
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record and flush."""
        try:
            to_err = record.levelno >= logging.WARNING or getattr(record, "stderr", False)
            stream = (self._err or sys.stderr) if to_err else (self._out or sys.stdout)
            stream.write(self.format(record) + "\n")
            stream.flush()
        except BrokenPipeError:
            raise
        except Exception:  # pragma: no cover - logging's own convention
            self.handleError(record)


def get_logger() -> logging.Logger:
    """The ``tumorpde`` logger (configured by :func:`configure`, else Python's defaults).

    Returns:
        The logger.
    """
    return logging.getLogger(LOGGER_NAME)


def configured() -> bool:
    """Whether :func:`configure` set up the logger (and :func:`reset` has not undone it)."""
    return any(getattr(h, _OURS, False) for h in get_logger().handlers)


def info(message: str, *, err: bool = False) -> None:
    """One progress or report line (the caller decides which rank speaks).

    After :func:`configure` (the command line) it is an INFO record of the ``tumorpde`` logger,
    which obeys ``--quiet`` and reaches ``--log-file``. Otherwise (a Python program calling
    :func:`tumorpde.run`) it is printed, as ``print`` would, and also passed to the logger at
    DEBUG for handlers a program may have added.

    Args:
        message: The line.
        err: Send it to stderr instead of stdout (when stdout carries data).
    """
    log = get_logger()
    if configured():
        log.info(message, extra={"stderr": err})
        return
    print(message, file=sys.stderr if err else sys.stdout, flush=True)
    log.debug(message)


def env_rank() -> int:
    """This process's MPI rank as the launcher's environment says (0 outside ``mpiexec``).

    Read from ``PMI_RANK`` (MPICH, Intel MPI), ``OMPI_COMM_WORLD_RANK`` (Open MPI) or
    ``PMIX_RANK``, so that the command line can set up logging before importing MPI.

    Returns:
        The rank.
    """
    import os

    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return 0


def configure(
    *,
    quiet: bool = False,
    verbose: bool = False,
    log_file: str | Path | None = None,
    rank: int = 0,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> logging.Logger:
    """Set up the ``tumorpde`` logger for a command (replaces earlier handlers of this module).

    Rank 0 prints INFO (``quiet``: WARNING and up only; ``verbose``: DEBUG too) and writes
    every record, DEBUG included, with a time stamp to ``log_file``; the other ranks print
    errors only and write no file.

    Args:
        quiet: Only warnings and errors on the console.
        verbose: Debug records on the console too.
        log_file: File that receives every record (appended; its folder is created).
        rank: This process's MPI rank.
        stdout: Console stream for INFO/DEBUG (default: ``sys.stdout`` at each record).
        stderr: Console stream for warnings and errors (default: ``sys.stderr`` at each record).

    Returns:
        The logger.

    Raises:
        ValueError: If both ``quiet`` and ``verbose`` are given.
        OSError: If ``log_file`` cannot be opened (the message names it).
    """
    if quiet and verbose:
        raise ValueError("--quiet and --verbose exclude each other")
    log = logging.getLogger(LOGGER_NAME)
    for h in list(log.handlers):
        if getattr(h, _OURS, False):
            log.removeHandler(h)
            h.close()
    console = ConsoleHandler(stdout, stderr)
    if rank != 0:
        console.setLevel(logging.ERROR)
    else:
        console.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    handlers: list[logging.Handler] = [console]
    if log_file is not None and rank == 0:
        path = Path(log_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = logging.FileHandler(path, mode="a", encoding="utf-8")
        except OSError as exc:
            raise OSError(f"--log-file {path}: cannot open it: {exc.strerror or exc}") from None
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
        handlers.append(fh)
    for h in handlers:
        setattr(h, _OURS, True)
        log.addHandler(h)
    log.setLevel(logging.DEBUG)
    log.propagate = False  # the console handler prints; the root logger would print again
    return log


def reset() -> None:
    """Undo :func:`configure`: remove (and close) its handlers, restore Python's defaults."""
    log = get_logger()
    for h in list(log.handlers):
        if getattr(h, _OURS, False):
            log.removeHandler(h)
            h.close()
    log.setLevel(logging.NOTSET)
    log.propagate = True


class Meter:
    """Percentage, elapsed time and ETA of one long operation, printed as one line per update.

    The ETA extrapolates the rate since the meter started: ``elapsed / done_since_start *
    left``; work done before the start (a resumed run) does not count towards the rate.

    Args:
        label: What is measured (``"run brain_egfr"``, ``"compare"``); starts each line.
        total: Amount of work at the end (simulated hours, arms, problems, stage weight).
        start: Amount already done when the meter starts.
        err: Print the lines to stderr (a command whose stdout carries data).
        emit: Where lines go (default :func:`info`); None from the caller means the default.
        clock: Seconds since some origin (tests pass a fake one).
    """

    def __init__(
        self,
        label: str,
        total: float,
        *,
        start: float = 0.0,
        err: bool = False,
        emit: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.label = label
        self.total = float(total)
        self.start = float(start)
        self.err = err
        self._emit = emit
        self._clock = clock
        self._t0 = clock()

    def restart(self, start: float | None = None) -> None:
        """Reset the clock (and the amount done at the start)."""
        self._t0 = self._clock()
        if start is not None:
            self.start = float(start)

    def elapsed(self) -> float:
        """Seconds since the meter started."""
        return self._clock() - self._t0

    def fraction(self, done: float) -> float:
        """Share of the total done, clipped to [0, 1] (1 for an empty total)."""
        if self.total <= 0:
            return 1.0
        return min(1.0, max(0.0, done / self.total))

    def eta(self, done: float) -> float:
        """Seconds left at the rate so far (inf before any progress, 0 at the end)."""
        left = max(0.0, self.total - done)
        if left == 0:
            return 0.0
        progressed = done - self.start
        if progressed <= 0:
            return math.inf
        return self.elapsed() / progressed * left

    def status(self, done: float) -> str:
        """``"42.0 %, elapsed 1 min 03 s, ETA 1 min 27 s"``."""
        return (
            f"{100.0 * self.fraction(done):5.1f} %, elapsed {format_duration(self.elapsed())}, "
            f"ETA {format_duration(self.eta(done))}"
        )

    def line(self, done: float, detail: str = "") -> str:
        """The progress line: ``<label>: <status>`` and `` | <detail>`` if given."""
        tail = f" | {detail}" if detail else ""
        return f"{self.label}: {self.status(done)}{tail}"

    def update(self, done: float, detail: str = "") -> str:
        """Print (log) the line for ``done`` and return it."""
        text = self.line(done, detail)
        if self._emit is not None:
            self._emit(text)
        else:
            info(text, err=self.err)
        return text


def finished(label: str, seconds: float, detail: str = "") -> str:
    """The closing line of an operation: ``<label>: 100.0 % done in 12 s (detail)``.

    Args:
        label: As the meter's label.
        seconds: Wall time of the whole operation.
        detail: Appended in parentheses.

    Returns:
        The line (not printed).
    """
    tail = f" ({detail})" if detail else ""
    return f"{label}: 100.0 % done in {format_duration(seconds)}{tail}"


#: The :class:`Stages` being run, innermost last (:func:`stage` reports to it).
_ACTIVE: list[Stages] = []


class Stages:
    """A long operation made of named stages of known relative cost (``mesh build``).

    Used as a context manager around the operation; code deep inside it calls :func:`stage`
    when a stage starts, without knowing who listens. Each start prints a :class:`Meter` line:
    the percentage is the weight of the stages before it, the ETA extrapolates from there.
    A stage that does not occur (another builder) is skipped; an unknown name is logged at
    DEBUG only.

    Args:
        label: Start of each line (``"mesh build brain (fine)"``).
        weights: Stage name -> relative cost, in the order they run.
        err: Print to stderr.
        emit: Where lines go (default :func:`info`).
        clock: Seconds since some origin (tests pass a fake one).
    """

    def __init__(
        self,
        label: str,
        weights: dict[str, float],
        *,
        err: bool = False,
        emit: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.weights = dict(weights)
        self._order = list(weights)
        self._emit = emit
        self.meter = Meter(label, sum(weights.values()), err=err, emit=emit, clock=clock)

    def __enter__(self) -> Stages:
        self.meter.restart(0.0)
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.remove(self)

    def start(self, name: str) -> None:
        """Report that stage ``name`` starts."""
        if name not in self.weights:
            get_logger().debug(f"{self.meter.label}: {name}")
            return
        k = self._order.index(name)
        done = sum(self.weights[n] for n in self._order[:k])
        self.meter.update(done, name)

    def finish(self, detail: str = "") -> str:
        """Print (log) the closing ``100.0 % done in ...`` line and return it."""
        text = finished(self.meter.label, self.meter.elapsed(), detail)
        if self._emit is not None:
            self._emit(text)
        else:
            info(text, err=self.meter.err)
        return text


def stage(name: str) -> None:
    """Report the start of stage ``name`` to the innermost active :class:`Stages` (if any).

    Args:
        name: The stage (a key of that :class:`Stages`' weights).
    """
    if _ACTIVE:
        _ACTIVE[-1].start(name)
