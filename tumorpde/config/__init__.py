"""Case configuration: validated, unit-converted case files (no dolfinx, no pyvista).

A case file (TOML) is validated here before any compute starts. Every value with a unit is
converted once, on load, to the internal units (mm, h, nM; see :mod:`tumorpde.units`), so the
rest of the code sees plain floats. Errors name the field path (``tumor.motility``), what is
wrong and the allowed values.

* :mod:`tumorpde.config.schema`: the pydantic models (:class:`CaseConfig` and its sections).
* :mod:`tumorpde.config.resolve`: files, ``extends``, overrides, library < organ < case
  merging, ``[regions]``, and :func:`load_config` / :func:`config_from_dict`.

This package re-exports the names the rest of tumorpde uses.
"""

from __future__ import annotations

from tumorpde.config.resolve import (
    ConfigError,
    config_from_dict,
    load_config,
    mesh_region_names,
    parse_override,
    read_case_tables,
    read_msh_physical_names,
)
from tumorpde.config.schema import (
    DEFAULT_PETSC,
    BoneConfig,
    BoxMesh,
    BoxRegion,
    CaseConfig,
    CompareConfig,
    FileMesh,
    MeshConfig,
    OutputConfig,
    OxygenConfig,
    PathwayConfig,
    SolverConfig,
    TherapyConfig,
    TimeConfig,
    TumorConfig,
    VesselConfig,
    region_keys,
)

__all__ = [
    "DEFAULT_PETSC",
    "BoneConfig",
    "BoxMesh",
    "BoxRegion",
    "CaseConfig",
    "CompareConfig",
    "ConfigError",
    "FileMesh",
    "MeshConfig",
    "OutputConfig",
    "OxygenConfig",
    "PathwayConfig",
    "SolverConfig",
    "TherapyConfig",
    "TimeConfig",
    "TumorConfig",
    "VesselConfig",
    "config_from_dict",
    "load_config",
    "mesh_region_names",
    "parse_override",
    "read_case_tables",
    "read_msh_physical_names",
    "region_keys",
]
