"""MPI plumbing shared by the commands: communicator, abort hook, rank-0 printing, ``--set``.

The one copy of what every MPI-aware command needs. mpi4py (and the DOLFINx provider shim that
must load before it) is imported only when :func:`comm` is called, so importing the CLI stays
cheap.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from tumorpde.config import parse_override

__all__ = [
    "abort_on_uncaught",
    "add_set_option",
    "comm",
    "exit_code",
    "install_abort_hook",
    "overrides",
    "say",
]


def comm() -> Any:
    """``MPI.COMM_WORLD``, after loading the DOLFINx wheel's MPI library if there is one.

    Returns:
        The world communicator.
    """
    # isort: off
    import tumorpde.fem.backend  # noqa: F401  (the wheel's MPI library before mpi4py)
    from mpi4py import MPI

    # isort: on
    return MPI.COMM_WORLD


def abort_on_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """``sys.excepthook`` that prints the traceback, then aborts the whole MPI job.

    An uncaught exception on one rank would otherwise leave the other ranks waiting forever in
    their next collective call. A serial run just prints the traceback.

    Args:
        exc_type: The exception class.
        exc: The exception.
        tb: Its traceback.
    """
    sys.__excepthook__(exc_type, exc, tb)
    sys.stderr.flush()
    world = comm()
    if world.size > 1:
        world.Abort(1)


def install_abort_hook() -> Any:
    """Install :func:`abort_on_uncaught` as ``sys.excepthook``.

    Returns:
        The world communicator (see :func:`comm`).
    """
    world = comm()
    sys.excepthook = abort_on_uncaught
    return world


def exit_code(world: Any, exc: BaseException, *, interrupted: str = "") -> int | None:
    """The exit code of an expected run error (its message printed on rank 0), else None.

    One table for every command that runs simulations: 2 for a refused input or directory
    (bad solver options, an unusable run directory, a missing checkpoint), 3 for a time step
    that kept failing, 4 for a file that could not be written, 128 + the signal number when
    SIGTERM/SIGINT stopped the run at a step boundary (``interrupted`` is appended to that
    message, e.g. how to continue). Any other exception is not expected: None, re-raise it.
    """
    from tumorpde.fem.solver import SolverOptionsError
    from tumorpde.output.rundir import OutputDirError, OutputWriteError
    from tumorpde.simulation.checkpoint import CheckpointError
    from tumorpde.simulation.interrupt import Interrupted
    from tumorpde.simulation.stepper import StepFailedError

    if isinstance(exc, Interrupted):
        say(world, f"tumorpde: {exc}" + (f"; {interrupted}" if interrupted else ""), err=True)
        return 128 + int(signal.Signals[exc.signal_name])
    codes: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
        (OutputWriteError, 4),  # an OSError: before the generic cases
        ((SolverOptionsError, OutputDirError, CheckpointError), 2),
        (StepFailedError, 3),
    )
    for kinds, code in codes:
        if isinstance(exc, kinds):
            say(world, f"error: {exc}", err=True)
            return code
    return None


def say(world: Any, *args: Any, err: bool = False) -> None:
    """Print on rank 0 only (on every call when ``world`` is None), flushed.

    Args:
        world: The communicator, or None outside MPI.
        *args: What to print, as for :func:`print`.
        err: Print to stderr instead of stdout.
    """
    if world is None or world.rank == 0:
        print(*args, file=sys.stderr if err else sys.stdout, flush=True)


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """Add the repeatable ``--set KEY=VALUE`` case override option to a command.

    Args:
        parser: The command's parser.
    """
    parser.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a case value (repeatable)"
    )


def overrides(items: Sequence[str] | None) -> dict[str, Any]:
    """The ``--set`` values as the overrides mapping of :func:`tumorpde.config.load_config`.

    Args:
        items: ``KEY=VALUE`` strings (None: no overrides).

    Returns:
        Dotted key -> parsed value.

    Raises:
        ConfigError: If an item is not ``KEY=VALUE``.
    """
    return dict(parse_override(s) for s in items or [])
