"""gmsh sessions that leave the SIGINT handler as they found it.

``gmsh.initialize()`` sets SIGINT to the default action (so Ctrl-C can stop a long meshing call)
and means ``gmsh.finalize()`` to put the old handler back, but it keeps the old handler in a
local variable: after the first gmsh session Ctrl-C kills the Python process silently (no
``KeyboardInterrupt``, no ``interrupted`` manifest, no ``finally`` blocks). Every tumorpde call
of gmsh goes through :func:`gmsh_session` (or, for a library that calls gmsh itself, such as
``dolfinx.io.gmsh.read_from_msh``, inside a session it then reuses). Sessions keep gmsh's
log off stdout and hand it to the ``tumorpde`` logger.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["gmsh_session", "sigint_preserved"]


@contextmanager
def sigint_preserved() -> Iterator[None]:
    """Restore the SIGINT handler of entry when the block ends (main thread; no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        if saved is not None:  # None: a handler not installed from Python; leave it
            signal.signal(signal.SIGINT, saved)


@contextmanager
def gmsh_session(*, terminal: bool = False, interruptible: bool = True) -> Iterator[Any]:
    """Initialise gmsh (if it is not already), yield the module, finalise it, restore SIGINT.

    A session nested in another one (gmsh already initialised) reuses it and finalises nothing.
    gmsh's own log ("Info : Meshing 3D...") stays off stdout: it is collected and passed to
    the ``tumorpde`` logger at DEBUG level when the session ends (``--verbose`` prints it,
    ``--log-file`` keeps it), its errors at WARNING.

    Args:
        terminal: Let gmsh print its log on the terminal itself (``General.Terminal``), as well.
        interruptible: While the session lasts, Ctrl-C stops gmsh's C++ code at once (gmsh's
            own behaviour); the Python handler is back when the session ends.

    Yields:
        The ``gmsh`` module.
    """
    import gmsh

    own = not gmsh.isInitialized()
    with sigint_preserved():
        if own:
            gmsh.initialize(readConfigFiles=False, interruptible=interruptible)
        gmsh.option.setNumber("General.Terminal", 1 if terminal else 0)
        if own:
            gmsh.logger.start()
        try:
            yield gmsh
        finally:
            if own and gmsh.isInitialized():
                _forward_log(gmsh)
                gmsh.finalize()


def _forward_log(gmsh: Any) -> None:
    """Pass gmsh's collected log to the ``tumorpde`` logger (DEBUG; errors at WARNING)."""
    import logging

    from tumorpde.progress import get_logger

    try:
        lines = gmsh.logger.get()
        gmsh.logger.stop()
    except Exception:  # pragma: no cover - gmsh without a logger: nothing to forward
        return
    log = get_logger()  # unconfigured: DEBUG is dropped, errors reach stderr (logging's default)
    for line in lines:
        level = logging.WARNING if line.startswith("Error") else logging.DEBUG
        log.log(level, f"gmsh: {line}")
