"""gmsh sessions that leave the SIGINT handler as they found it.

``gmsh.initialize()`` sets SIGINT to the default action (so Ctrl-C can stop a long meshing call)
and means ``gmsh.finalize()`` to put the old handler back, but it keeps the old handler in a
local variable: after the first gmsh session Ctrl-C kills the Python process silently (no
``KeyboardInterrupt``, no ``interrupted`` manifest, no ``finally`` blocks). Every tumorpde call
of gmsh goes through :func:`gmsh_session` (or, for a library that calls gmsh itself, such as
``dolfinx.io.gmsh.read_from_msh``, through :func:`sigint_preserved`).
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
def gmsh_session(*, terminal: bool | None = None, interruptible: bool = True) -> Iterator[Any]:
    """Initialise gmsh (if it is not already), yield the module, finalise it, restore SIGINT.

    A session nested in another one (gmsh already initialised) reuses it and finalises nothing.

    Args:
        terminal: Set ``General.Terminal`` (gmsh's log on the terminal); None keeps gmsh's default.
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
        try:
            if terminal is not None:
                gmsh.option.setNumber("General.Terminal", 1 if terminal else 0)
            yield gmsh
        finally:
            if own and gmsh.isInitialized():
                gmsh.finalize()
