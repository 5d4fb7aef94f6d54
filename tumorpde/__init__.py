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
    "load_run",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in ("Simulation", "RunResult", "run"):
        from tumorpde import simulation

        return getattr(simulation, name)
    if name in ("Model", "build_model"):
        from tumorpde import model

        return getattr(model, name)
    if name == "load_run":
        from tumorpde.output.load import load_run

        return load_run
    if name == "viz":  # figures, animations (PyVista/matplotlib load when a function runs)
        import importlib

        return importlib.import_module("tumorpde.output.viz")
    raise AttributeError(f"module 'tumorpde' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (``__all__``, lazy names included) and the module's own attributes."""
    return sorted(set(__all__) | {k for k in globals() if k.startswith("__")})
