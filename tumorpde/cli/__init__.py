"""Command-line interface: the ``tumorpde`` parser, built from one module per command group.

Each command module exposes ``register(subparsers)`` and forwards its command to one library
function; MPI plumbing (communicator, abort hook, rank-0 printing, ``--set``) lives in
:mod:`tumorpde.cli._mpi`. Under ``mpiexec`` an uncaught exception on any rank aborts the whole
job (exit 1) instead of leaving the other ranks waiting forever; expected errors (bad case, bad
output directory) are detected identically on every rank and end the job with exit code 2 and a
one-screen message. Importing this package loads neither DOLFINx, gmsh nor PyVista.

``--quiet``, ``--verbose`` and ``--log-file`` are accepted before or after any command: they set
up the ``tumorpde`` logger (:func:`tumorpde.progress.configure`, rank 0 prints and writes the
file) and, with ``--quiet`` or ``--log-file``, route what the command prints through it, so that
``--quiet`` leaves stdout empty and the log file gets every line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

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
    from tumorpde.cli import viz as viz_cli  # plot, animate
    from tumorpde.cli import warmup as warmup_cli  # JIT cache warm-up

    p = argparse.ArgumentParser(
        prog="tumorpde",
        description="Spatial reaction-diffusion models of the tumor microenvironment.",
    )
    p.add_argument("--version", action="version", version=f"tumorpde {__version__}")
    _add_output_options(p, None)
    sub = p.add_subparsers(dest="command", required=True)
    # run also registers validate and info, batch also sensitivity
    for mod in (run, verify, bench, mesh, drug, params, compare, schema, rerun, batch, viz_cli):
        mod.register(sub)
    warmup_cli.register(sub)
    from tumorpde.cli import view  # interactive viewer (window or trame browser session)

    view.register(sub)
    _output_options_everywhere(p)
    return p


def _add_output_options(p: argparse.ArgumentParser, default: object) -> None:
    """``--quiet``, ``--verbose``, ``--log-file`` (global; also accepted after the command)."""
    g = p.add_argument_group("output")
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if default is not None else False,
        help="print nothing but warnings and errors (on stderr)",
    )
    g.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default if default is not None else False,
        help="print debug detail too (e.g. gmsh's log)",
    )
    g.add_argument(
        "--log-file",
        type=Path,
        metavar="FILE",
        default=default,
        help="append everything (debug included, time-stamped) to FILE (rank 0)",
    )


def _output_options_everywhere(p: argparse.ArgumentParser) -> None:
    """Let every (sub)command take the output options too: ``tumorpde run case.toml -q``."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sp in action.choices.values():
                _add_output_options(sp, argparse.SUPPRESS)
                _output_options_everywhere(sp)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        Exit code: 0 success, 1 failed check, 2 invalid input, 3 solver failure.
    """
    args = build_parser().parse_args(argv)
    try:
        restore = _setup_output(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        return _dispatch(args)
    except Exception:
        _log_to_files("tumorpde: uncaught exception")  # the console gets it from sys.excepthook
        raise
    finally:
        restore()


def _log_to_files(message: str) -> None:
    """Write the exception being handled, with its traceback, to the log file handlers only."""
    log = logging.getLogger("tumorpde")
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, (), sys.exc_info())
    for h in log.handlers:
        if isinstance(h, logging.FileHandler):
            h.handle(record)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; map the expected errors to exit codes."""
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


class _LogWriter:
    """A text stream that sends each complete line to the ``tumorpde`` logger.

    Replaces ``sys.stdout`` (INFO) and ``sys.stderr`` (WARNING) while a command runs with
    ``--quiet`` or ``--log-file``, so that every line a command prints obeys ``--quiet`` and
    reaches the log file; the console handler writes to the original stream.
    """

    def __init__(self, level: int, original: TextIO) -> None:
        self.level = level
        self.original = original
        self._buf = ""

    def write(self, text: str) -> int:
        self._buf += text
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            logging.getLogger("tumorpde").log(self.level, line)
        return len(text)

    def writelines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Nothing buffered but an unfinished line, which waits for its newline."""

    def close_line(self) -> None:
        """Send an unfinished last line."""
        if self._buf:
            logging.getLogger("tumorpde").log(self.level, self._buf)
            self._buf = ""

    def fileno(self) -> int:
        return self.original.fileno()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return getattr(self.original, "encoding", "utf-8")


def _setup_output(args: argparse.Namespace) -> Callable[[], None]:
    """Configure the ``tumorpde`` logger for ``--quiet``/``--verbose``/``--log-file``.

    Rank 0 (from the launcher's environment, before MPI is loaded) prints and writes the log
    file; the other ranks print errors only.

    Returns:
        The function that undoes it (restores the streams, removes the handlers).

    Raises:
        ValueError: ``--quiet`` with ``--verbose``.
        OSError: The log file cannot be opened.
    """
    from tumorpde import progress

    quiet = bool(getattr(args, "quiet", False))
    verbose = bool(getattr(args, "verbose", False))
    log_file = getattr(args, "log_file", None)
    rank = progress.env_rank()
    out, err = sys.stdout, sys.stderr
    progress.configure(
        quiet=quiet, verbose=verbose, log_file=log_file, rank=rank, stdout=out, stderr=err
    )
    writers: list[_LogWriter] = []
    if quiet or (log_file is not None and rank == 0):
        writers.append(_LogWriter(logging.INFO, out))
        sys.stdout = writers[-1]  # type: ignore[assignment]
        if rank == 0:  # other ranks' errors (tracebacks) go straight to stderr
            writers.append(_LogWriter(logging.WARNING, err))
            sys.stderr = writers[-1]  # type: ignore[assignment]

    def restore() -> None:
        for w in writers:
            w.close_line()
        sys.stdout, sys.stderr = out, err
        progress.reset()

    return restore
