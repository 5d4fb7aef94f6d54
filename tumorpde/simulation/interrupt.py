"""Interruption: SIGTERM/SIGINT become a request that the time loop honours at a step boundary.

A scheduler sends SIGTERM at the walltime, a user presses Ctrl-C. Raising from the signal
handler would leave the ranks of an MPI job in different collectives (a hang) and files half
written. Instead :func:`install` records the signal in a flag; :class:`Simulation.steps
<tumorpde.simulation.simulation.Simulation>` checks the flag of every rank (one ``allreduce``)
after each accepted step and raises :class:`Interrupted` on all ranks together, so observers
close their files, a checkpoint is written and the manifest says ``interrupted``. A second
signal of the same kind restores the default action (a second Ctrl-C ends the process at once).

Handlers can only be installed from the main thread; elsewhere :func:`install` does nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["Interrupted", "clear", "install", "requested", "restore"]

_HANDLED = (signal.SIGTERM, signal.SIGINT)
_state: dict[str, object] = {"signal": None, "previous": {}}


class Interrupted(RuntimeError):
    """The run stopped at a step boundary because of SIGTERM or SIGINT (on every rank).

    Attributes:
        signal_name: ``"SIGTERM"`` or ``"SIGINT"``.
        t: Time of the last accepted step (h).
        step: Number of that step.
    """

    def __init__(self, signal_name: str, t: float, step: int) -> None:
        self.signal_name, self.t, self.step = signal_name, t, step
        super().__init__(f"interrupted by {signal_name} after step {step} (t = {t:g} h)")


def _handler(signum: int, frame: FrameType | None) -> None:
    del frame
    if _state["signal"] == signum:  # the second one: give the default action back
        default = signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler
        signal.signal(signum, default)
    _state["signal"] = signum


def install() -> bool:
    """Route SIGTERM and SIGINT into the flag (main thread only).

    Returns:
        True if the handlers were installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = {}
    for sig in _HANDLED:
        previous[sig] = signal.signal(sig, _handler)
    _state["previous"] = previous
    _state["signal"] = None
    return True


def restore() -> None:
    """Put back the handlers that :func:`install` replaced."""
    previous = _state["previous"]
    assert isinstance(previous, dict)
    if threading.current_thread() is threading.main_thread():
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _state["previous"] = {}


def requested() -> str | None:
    """Name of the signal received since :func:`install` (None if none)."""
    sig = _state["signal"]
    return signal.Signals(sig).name if isinstance(sig, int) else None


def clear() -> None:
    """Forget a received signal (tests)."""
    _state["signal"] = None
