"""tumorpde: spatial reaction-diffusion models of the tumor microenvironment on DOLFINx.

``import tumorpde`` is light (no dolfinx, no MPI): the solver parts load on first use.

Example:
    >>> import tumorpde
    >>> cfg = tumorpde.load_config("benchmarks/cases/default.toml")  # doctest: +SKIP
    >>> result = tumorpde.run(cfg, "runs/demo")                        # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from tumorpde._version import __version__
from tumorpde.config import CaseConfig, ConfigError, config_from_dict, load_config

__all__ = [
    "CaseConfig",
    "ConfigError",
    "Model",
    "RunResult",
    "Simulation",
    "__version__",
    "build_model",
    "config_from_dict",
    "load_config",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in ("Simulation", "RunResult", "run"):
        from tumorpde import simulation

        return getattr(simulation, name)
    if name in ("Model", "build_model"):
        from tumorpde import model

        return getattr(model, name)
    raise AttributeError(f"module 'tumorpde' has no attribute {name!r}")
