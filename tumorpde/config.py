"""Case configuration: pydantic models, TOML loading, overrides and unit conversion.

A case file (TOML) is validated here before any compute starts. Every value with a unit is
converted once, on load, to the internal units (mm, h, nM; see :mod:`tumorpde.units`), so the
rest of the code sees plain floats. Errors name the field path (``tumor.motility``), what is
wrong and the allowed values. This module imports neither dolfinx nor pyvista.
"""

from __future__ import annotations

import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tumorpde.units import receptors_per_cell_to_nM, to_internal

__all__ = [
    "CaseConfig",
    "ConfigError",
    "example_box_case",
    "load_config",
    "merge_sections",
    "mesh_region_names",
]


class ConfigError(ValueError):
    """A case file that cannot be run; ``problems`` lists ``(field path, message)`` pairs."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"invalid case {source}:"] + [f"  {loc}: {msg}" for loc, msg in self.problems]
        super().__init__("\n".join(lines))


def _unit(kind: str) -> BeforeValidator:
    return BeforeValidator(lambda v: to_internal(v, kind))


# Quantity types: accept a number (internal units) or a "value unit" string.
Length = Annotated[float, _unit("length")]
Time = Annotated[float, _unit("time")]
Rate = Annotated[float, _unit("rate"), Field(ge=0)]
Diffusivity = Annotated[float, _unit("diffusivity"), Field(ge=0)]
Concentration = Annotated[float, _unit("concentration"), Field(ge=0)]
ConcentrationRate = Annotated[float, _unit("concentration_rate"), Field(ge=0)]
SecondOrderRate = Annotated[float, _unit("second_order_rate"), Field(ge=0)]
Chemotaxis = Annotated[float, _unit("chemotaxis"), Field(ge=0)]
CellDensity = Annotated[float, _unit("cell_density"), Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------- mesh
class BoxRegion(_Strict):
    """An axis-aligned sub-box of a box mesh; cells whose midpoint lies inside get this region."""

    name: Name
    min: tuple[Length, Length, Length]
    max: tuple[Length, Length, Length]

    @model_validator(mode="after")
    def _ordered(self) -> BoxRegion:
        if any(a >= b for a, b in zip(self.min, self.max, strict=True)):
            raise ValueError("each component of 'min' must be smaller than 'max'")
        return self


class BoxMesh(_Strict):
    """A tetrahedral box [0, size] with regions given as sub-boxes (later ones win)."""

    kind: Literal["box"]
    size: tuple[Length, Length, Length]
    cells: tuple[int, int, int]
    default_region: Name = "tissue"
    regions: list[BoxRegion] = []

    @field_validator("size")
    @classmethod
    def _positive(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) <= 0:
            raise ValueError("all box sizes must be > 0")
        return v

    @field_validator("cells")
    @classmethod
    def _cells(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(v) < 1:
            raise ValueError("cell counts must be >= 1")
        return v

    def region_names(self) -> list[str]:
        """Region names in tag order (tag = index + 1)."""
        names = [self.default_region]
        for r in self.regions:
            if r.name not in names:
                names.append(r.name)
        return names


class FileMesh(_Strict):
    """A gmsh ``.msh`` file whose named physical groups are the regions and boundaries."""

    kind: Literal["file"]
    path: Path
    unit: Literal["mm", "cm", "m", "um"] = "mm"

    @field_validator("path")
    @classmethod
    def _exists(cls, v: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get("base_dir")
        p = v if v.is_absolute() or base is None else Path(base) / v
        p = p.resolve()
        if p.suffix != ".msh":
            raise ValueError(f"mesh file {p} must be a gmsh .msh file with named physical groups")
        if not p.is_file():
            raise ValueError(f"mesh file {p} does not exist")
        return p

    @property
    def scale_to_mm(self) -> float:
        """Factor that converts the file's coordinates to mm."""
        return {"mm": 1.0, "cm": 10.0, "m": 1000.0, "um": 1e-3}[self.unit]


MeshConfig = Annotated[BoxMesh | FileMesh, Field(discriminator="kind")]


# --------------------------------------------------------------------------------------- time
class TimeConfig(_Strict):
    """Time interval and (initial) step; output times are hit exactly."""

    t_end: Time = Field(gt=0)
    dt: Time = Field(gt=0)
    output_every: Time | None = Field(default=None, gt=0)
    max_retries: int = Field(default=8, ge=0, le=30)

    @model_validator(mode="after")
    def _dt(self) -> TimeConfig:
        if self.dt > self.t_end:
            raise ValueError(f"dt ({self.dt:g} h) must not exceed t_end ({self.t_end:g} h)")
        return self


# --------------------------------------------------------------------------------------- physics
class GaussianSeed(_Strict):
    """Initial tumor density ``peak * exp(-|x - center|^2 / radius^2)``."""

    kind: Literal["gaussian"]
    center: tuple[Length, Length, Length]
    radius: Length = Field(gt=0)
    peak: float = Field(default=0.5, gt=0, le=1)


class UniformSeed(_Strict):
    """Spatially uniform initial tumor density."""

    kind: Literal["uniform"]
    value: Fraction


class TumorConfig(_Strict):
    """Tumor-cell density u (normalized by the carrying capacity)."""

    proliferation_rate: Rate
    motility: Diffusivity
    chemotaxis: Chemotaxis = 0.0
    carrying_capacity: CellDensity = Field(
        default=1e5, description="cells/mm^3 at u = 1 (1e5/mm^3 = 1e8 cells/mL)"
    )
    initial: Annotated[GaussianSeed | UniformSeed, Field(discriminator="kind")]


class LigandConfig(_Strict):
    """One growth factor L (nM)."""

    name: Name = "EGF"
    diffusivity: Diffusivity
    decay_rate: Rate = 0.0
    tumor_secretion: ConcentrationRate = Field(default=0.0, description="nM/h at u = 1")
    stromal_secretion: ConcentrationRate = 0.0
    initial: Concentration = 0.0


class ReceptorConfig(_Strict):
    """The ligand's receptor: free R and bound C per cell, pointwise ODEs.

    dR/dt = k_t R0 - k_on L R + k_off C - k_t R;  dC/dt = k_on L R - k_off C - k_e C.
    Synthesis k_t R0 keeps the ligand-free steady state at ``receptors_per_cell``.
    """

    name: Name = "EGFR"
    receptors_per_cell: float = Field(gt=0, le=1e8)
    k_on: SecondOrderRate
    k_off: Rate
    k_t: Rate = Field(default=0.0, description="constitutive internalization of free receptor")
    k_e: Rate = Field(default=0.0, description="internalization of the complex")
    initial_occupancy: Fraction = 0.0


class RegionOverride(_Strict):
    """Per-region values ("soil") that replace the global ones inside that region."""

    tumor_motility: Diffusivity | None = None
    proliferation_rate: Rate | None = None
    ligand_diffusivity: Diffusivity | None = None
    ligand_decay_rate: Rate | None = None
    ligand_stromal_secretion: ConcentrationRate | None = None


# --------------------------------------------------------------------------------------- numerics
DEFAULT_PETSC: dict[str, str | int | float | bool] = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "basic",
    "snes_rtol": 1e-9,
    "snes_atol": 1e-12,
    "snes_stol": 0.0,
    "snes_max_it": 25,
    # Direct LU fills in badly in 3D (MUMPS: 30x fill, 2 s per factorization at 32k unknowns),
    # so the default is GMRES with block-Jacobi/ILU(0); LU stays available from the case file.
    "ksp_type": "gmres",
    "ksp_rtol": 1e-10,
    "ksp_atol": 1e-14,
    "ksp_max_it": 1000,
    "ksp_gmres_restart": 100,
    "pc_type": "bjacobi",
    "sub_pc_type": "ilu",
}


class SolverConfig(_Strict):
    """Nonlinear solver: PETSc options (prefix ``tumorpde_``) merged over the defaults."""

    petsc: dict[str, str | int | float | bool] = {}

    @field_validator("petsc")
    @classmethod
    def _keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if key.startswith("-") or not key.replace("_", "").isalnum():
                raise ValueError(
                    f"PETSc option {key!r}: write it without '-' or prefix, e.g. ksp_type"
                )
        return v

    def options(self) -> dict[str, str | int | float | bool]:
        """Defaults updated with the case's options."""
        return {**DEFAULT_PETSC, **self.petsc}


FieldName = Literal["tumor", "ligand", "receptor", "complex", "occupancy"]


class OutputConfig(_Strict):
    """What the run directory gets."""

    format: Literal["xdmf", "vtx"] = "xdmf"
    fields: list[FieldName] = ["tumor", "ligand", "receptor", "complex", "occupancy"]
    picture: bool = True


class CaseConfig(_Strict):
    """A whole case: mesh, time, physics, numerics and outputs (all in internal units)."""

    name: Name
    description: str = ""
    mesh: MeshConfig
    time: TimeConfig
    tumor: TumorConfig
    ligand: LigandConfig
    receptor: ReceptorConfig
    regions: dict[str, RegionOverride] = {}
    solver: SolverConfig = SolverConfig()
    output: OutputConfig = OutputConfig()

    @property
    def receptor_total_nM(self) -> float:
        """Ligand-free surface receptor as a concentration at carrying capacity (nM)."""
        return receptors_per_cell_to_nM(
            self.receptor.receptors_per_cell, self.tumor.carrying_capacity
        )


# --------------------------------------------------------------------------------------- loading
def mesh_region_names(mesh: BoxMesh | FileMesh) -> list[str]:
    """Names of the volume regions of a mesh, read without dolfinx.

    Args:
        mesh: The mesh section of a case.

    Returns:
        Region names (for a ``.msh`` file: 3D physical groups from ``$PhysicalNames``).

    Raises:
        ValueError: If the file has no named 3D physical groups.
    """
    if isinstance(mesh, BoxMesh):
        return mesh.region_names()
    return sorted(n for d, n in read_msh_physical_names(mesh.path) if d == 3)


def read_msh_physical_names(path: Path) -> list[tuple[int, str]]:
    """Read ``(dim, name)`` pairs from the ``$PhysicalNames`` section of a gmsh file.

    The section is text in both the ASCII and the binary MSH formats.
    """
    out: list[tuple[int, str]] = []
    with Path(path).open("rb") as f:
        for raw in f:
            if raw.startswith(b"$PhysicalNames"):
                n = int(f.readline())
                for _ in range(n):
                    dim, _tag, name = f.readline().decode().split(maxsplit=2)
                    out.append((int(dim), name.strip().strip('"')))
                return out
            if raw.startswith((b"$Nodes", b"$Entities")):
                break
    return out


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _descend(tp: Any, key: Any) -> Any:
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        f = tp.model_fields.get(str(key))
        return f.annotation if f else None
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            arg = _unwrap(arg)
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                kind = arg.model_fields.get("kind")
                if kind is not None and key in typing.get_args(kind.annotation):
                    return arg
        return None
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin in (list, tuple):
        return typing.get_args(tp)[0]
    return None


def _format(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        path = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parent: Any = CaseConfig
            for key in loc[:-1]:
                parent = _descend(parent, key) if parent is not None else None
            parent = _unwrap(parent)
            if isinstance(parent, type) and issubclass(parent, BaseModel):
                allowed = ", ".join(parent.model_fields)
                msg = f"unknown key; allowed keys here: {allowed}"
            else:
                msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif "input" in err and err["type"] not in ("model_type", "dict_type"):
            msg = f"{msg} (got {err['input']!r})"
        problems.append((path, msg))
    return problems


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError("override", [(key, f"'{p}' is not a table")])
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` (VALUE as a TOML value, else a plain string)."""
    if "=" not in text:
        raise ConfigError("override", [(text, "expected KEY=VALUE, e.g. time.dt='1 h'")])
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def config_from_dict(
    data: Mapping[str, Any],
    *,
    base_dir: str | Path | None = None,
    source: str = "<dict>",
    overrides: Mapping[str, Any] | None = None,
) -> CaseConfig:
    """Validate a case given as a dictionary (e.g. parsed TOML).

    Args:
        data: The case tables.
        base_dir: Directory that relative mesh paths are resolved against.
        source: Name used in error messages (the file name).
        overrides: Dotted keys to set before validation, e.g. ``{"time.dt": "1 h"}``.

    Returns:
        The validated, frozen configuration in internal units.

    Raises:
        ConfigError: Listing every problem with its field path.
    """
    raw = _deepcopy(dict(data))
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    try:
        cfg = CaseConfig.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(source, _format(exc)) from None
    try:
        names = mesh_region_names(cfg.mesh)
    except (OSError, ValueError) as exc:
        raise ConfigError(source, [("mesh.path", f"cannot read region names: {exc}")]) from None
    if not names:
        raise ConfigError(source, [("mesh", "the mesh has no named volume regions")])
    bad = [
        (f"regions.{r}", f"unknown region; the mesh has: {', '.join(names)}")
        for r in cfg.regions
        if r not in names
    ]
    if bad:
        raise ConfigError(source, bad)
    return cfg


def merge_sections(case: dict[str, Any], sections: Mapping[str, Any]) -> dict[str, Any]:
    """Update a case dictionary table by table (``mesh`` is replaced whole, not merged).

    Args:
        case: A case as a dictionary (modified in place).
        sections: Top-level keys to set; a table merges into the existing table of that name.

    Returns:
        ``case``.
    """
    for key, value in sections.items():
        if key != "mesh" and isinstance(value, dict) and isinstance(case.get(key), dict):
            case[key] = {**case[key], **value}
        else:
            case[key] = value
    return case


def example_box_case(
    size_mm: float, cells: int, name: str = "example_box", **sections: Any
) -> dict[str, Any]:
    """The default EGF/EGFR physics (``benchmarks/cases/default.toml``) on a cube, as a dict.

    Used by benchmarks and tests that need a small valid case; tables in ``sections`` are merged
    over the defaults (see :func:`merge_sections`).

    Args:
        size_mm: Edge length of the cube (mm); the seed sits at its centre.
        cells: Cells per edge.
        name: Case name.
        sections: Tables to merge over the defaults.

    Returns:
        A case dictionary for :func:`config_from_dict`.
    """
    c = size_mm / 2
    case: dict[str, Any] = {
        "name": name,
        "mesh": {"kind": "box", "size": [size_mm] * 3, "cells": [cells] * 3},
        "time": {"t_end": "36 h", "dt": "12 h"},
        "tumor": {
            "proliferation_rate": "0.05 1/day",
            "motility": "0.65 mm^2/day",
            "chemotaxis": "0.5 mm^2/day/nM",
            "initial": {"kind": "gaussian", "center": [c, c, c], "radius": size_mm / 5},
        },
        "ligand": {
            "diffusivity": "6e-7 cm^2/s",
            "decay_rate": "1e-4 1/s",
            "tumor_secretion": "1 nM/h",
            "stromal_secretion": "0.02 nM/h",
        },
        "receptor": {
            "receptors_per_cell": 5e4,
            "k_on": "1e6 1/M/s",
            "k_off": "2e-3 1/s",
            "k_t": "0.03 1/min",
            "k_e": "0.15 1/min",
        },
        "output": {"picture": False},
    }
    return merge_sections(case, sections)


def _deepcopy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> CaseConfig:
    """Load and validate a TOML case file.

    Args:
        path: The case file; relative mesh paths are resolved against its directory.
        overrides: Dotted keys to set before validation.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: If the file is missing, is not valid TOML, or fails validation.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(str(p), [("(file)", "case file does not exist")])
    try:
        data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), [("(file)", f"not valid TOML: {exc}")]) from None
    return config_from_dict(data, base_dir=p.parent, source=str(p), overrides=overrides)
