"""Command-line interface: the ``tumorpde`` parser, built from one module per command group.

Each command module exposes ``register(subparsers)`` and forwards its command to one library
function; MPI plumbing (communicator, abort hook, rank-0 printing, ``--set``) lives in
:mod:`tumorpde.cli._mpi`. Under ``mpiexec`` an uncaught exception on any rank aborts the whole
job (exit 1) instead of leaving the other ranks waiting forever; expected errors (bad case, bad
output directory) are detected identically on every rank and end the job with exit code 2 and a
one-screen message. Importing this package loads neither DOLFINx, gmsh nor PyVista.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tumorpde._version import __version__
from tumorpde.config import ConfigError

__all__ = ["build_parser", "main"]

#: Commands that run collectively under ``mpiexec`` (their errors are printed by rank 0 only).
_MPI_COMMANDS = ("run", "compare", "batch", "sensitivity")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command registered (exposed for documentation and tests).

    Returns:
        The ``tumorpde`` parser; each command sets ``func`` (namespace -> exit code).
    """
    from tumorpde.cli import batch, bench, compare, drug, mesh, params, rerun, run, schema, verify

    p = argparse.ArgumentParser(
        prog="tumorpde",
        description="Spatial reaction-diffusion models of the tumor microenvironment.",
    )
    p.add_argument("--version", action="version", version=f"tumorpde {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    # run also registers validate and info, batch also sensitivity
    for mod in (run, verify, bench, mesh, drug, params, compare, schema, rerun, batch):
        mod.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        Exit code: 0 success, 1 failed check, 2 invalid input, 3 solver failure.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # the reader of stdout went away (``tumorpde validate case.toml | head -1``): stop
        # quietly, as a command killed by SIGPIPE would (exit 141)
        _quiet_stdout()
        return 141
    except ConfigError as exc:
        # Every rank validated the same file and failed alike: no rank is left waiting.
        from tumorpde.cli import _mpi

        world = _mpi.comm() if args.command in _MPI_COMMANDS else None
        _mpi.say(world, f"error: {exc}", err=True)
        return 2


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush raises nothing."""
    import os
    import sys

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced stdout (tests): nothing to redirect
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
