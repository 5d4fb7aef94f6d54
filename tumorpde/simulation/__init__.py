"""Simulation layer: the time stepper, observers and the :class:`Simulation` driver.

``tumorpde.simulation.stepper`` is pure Python; the driver (which needs DOLFINx) loads on
first use of :class:`Simulation`, :class:`RunResult` or :func:`run`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunResult", "Simulation", "run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tumorpde.simulation import simulation

        return getattr(simulation, name)
    raise AttributeError(f"module 'tumorpde.simulation' has no attribute {name!r}")
