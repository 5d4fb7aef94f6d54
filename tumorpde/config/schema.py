"""Case schema: the pydantic models of a case file, in internal units.

One job: declare what a valid case looks like. Quantity types accept a number (internal units:
mm, h, nM; see :mod:`tumorpde.units`) or a ``"value unit"`` string or parameter table and convert
it on validation. Reading files, overrides, library merging and ``[regions]`` live in
:mod:`tumorpde.config.resolve`. This module imports neither dolfinx nor pyvista.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from tumorpde.config.boundary import BOX_BOUNDARY_NAMES, BoundaryCondition
from tumorpde.library.drugs import MAX_DOSES, Patient, Treatment
from tumorpde.units import INTERNAL_UNITS, receptors_per_cell_to_nM, to_internal

__all__ = [
    "CONDENSED_PETSC",
    "DEFAULT_PETSC",
    "FIELDSPLIT_PETSC",
    "MAX_BOX_CELLS",
    "MAX_TIME_STEPS",
    "BoneConfig",
    "BoxMesh",
    "BoxRegion",
    "CaseConfig",
    "CompareConfig",
    "ECMBinding",
    "EffectsConfig",
    "FieldInRegion",
    "FileMesh",
    "GaussianSeed",
    "ImageSeed",
    "InitialFields",
    "MeshConfig",
    "MeshRefine",
    "OutputConfig",
    "OxygenConfig",
    "PathwayConfig",
    "PathwayLigand",
    "PathwayReceptor",
    "RegionSeed",
    "RegionValue",
    "Seed",
    "SignalConfig",
    "SolverConfig",
    "TherapyConfig",
    "TimeConfig",
    "TumorConfig",
    "UniformSeed",
    "VesselConfig",
    "region_keys",
]


#: Largest number of time steps a case may ask for: t_end/dt, t_end/output_every and, when
#: given, t_end/dt_min (the smallest step after rejections). One million steps of even a tiny
#: mesh is hours of compute; a larger count is a unit slip ("1 s" for "1 h") or a runaway value.
MAX_TIME_STEPS = 1_000_000

#: Largest tetrahedron count of a box mesh (6 per box cell). 5e7 tetrahedra have about 8.3e6
#: vertices: at ~4.2 kB per coupled unknown (benchmarks/README.md) three species already need
#: ~100 GB, more than any single node this targets.
MAX_BOX_CELLS = 50_000_000
#: Largest box edge (mm): 10 m, far above any organ; larger values are unit slips.
MAX_BOX_SIZE_MM = 1e4

#: Memory per coupled unknown (bytes), measured (README: Performance).
_BYTES_PER_UNKNOWN = 4.2e3


#: What a quantity accepts, for the JSON Schema (``tumorpde schema``): a number in internal
#: units, a "value unit" string, or a library table.
_QUANTITY_INPUT = float | str | dict[str, float | str]


@dataclasses.dataclass(frozen=True, slots=True)
class _UnitValidator(BeforeValidator):
    """Converts a quantity to internal units; its JSON Schema names the unit (``x-unit``)."""

    kind: str = "dimensionless"

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        unit = INTERNAL_UNITS[self.kind]
        out["x-unit"] = unit
        out.setdefault("x-hint", f"a number in {unit}, or a string with units like '1.5 {unit}'")
        return out


def _unit(kind: str) -> BeforeValidator:
    return _UnitValidator(
        lambda v: to_internal(v, kind), json_schema_input_type=_QUANTITY_INPUT, kind=kind
    )


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
Number = Annotated[float, _unit("dimensionless")]
Fraction = Annotated[float, _unit("dimensionless"), Field(ge=0, le=1)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]


class _Strict(BaseModel):
    # allow_inf_nan=False: every float of a case must be finite (t_end = inf would run forever)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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


def _fmt_mm(v: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{x:g}" for x in v) + "] mm"


class MeshRefine(_Strict):
    """A ball around a lesion where the mesh is refined at load (``[[mesh.refine]]``).

    Edges that cross the ball and are longer than ``size`` are bisected until none is left
    (parallel, region and boundary tags kept; :func:`tumorpde.fem.refine.refine_domain`).
    """

    center: tuple[Length, Length, Length]
    radius: Annotated[Length, Field(gt=0)]
    size: Annotated[Length, Field(gt=0)]


class BoxMesh(_Strict):
    """A tetrahedral box [0, size] with regions given as sub-boxes (later ones win)."""

    kind: Literal["box"]
    size: tuple[Length, Length, Length]
    cells: tuple[int, int, int]
    default_region: Name = "tissue"
    regions: list[BoxRegion] = []
    refine: list[MeshRefine] = []  # local refinement at load (balls around lesions)

    @field_validator("size")
    @classmethod
    def _positive(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) <= 0:
            raise ValueError("all box sizes must be > 0")
        if max(v) > MAX_BOX_SIZE_MM:
            raise ValueError(
                f"a box edge of {max(v):.3g} mm is above {MAX_BOX_SIZE_MM:g} mm (whole-body scale "
                "is ~2000 mm): check the unit (sizes are in mm unless a unit is given)"
            )
        return v

    @field_validator("cells")
    @classmethod
    def _cells(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(v) < 1:
            raise ValueError("cell counts must be >= 1")
        tets = 6 * v[0] * v[1] * v[2]
        if tets > MAX_BOX_CELLS:
            vertices = (v[0] + 1) * (v[1] + 1) * (v[2] + 1)
            gb = 3 * vertices * _BYTES_PER_UNKNOWN / 1e9
            raise ValueError(
                f"{v[0]} x {v[1]} x {v[2]} box cells are {tets:.3g} tetrahedra, above the cap of "
                f"{MAX_BOX_CELLS:.0e}; their {vertices:.3g} vertices would need about {gb:.3g} GB "
                "for three species (~4 kB per unknown). Use fewer cells"
            )
        return v

    @model_validator(mode="after")
    def _inside(self) -> BoxMesh:
        problems = []
        for i, r in enumerate(self.regions):
            tol = [1e-9 * max(1.0, s) for s in self.size]
            if any(lo < -t for lo, t in zip(r.min, tol, strict=True)) or any(
                hi > s + t for hi, s, t in zip(r.max, self.size, tol, strict=True)
            ):
                problems.append(
                    f"regions.{i} ({r.name}): sub-box {_fmt_mm(r.min)} to {_fmt_mm(r.max)} "
                    f"is not inside the box [0, 0, 0] to {_fmt_mm(self.size)}"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self

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
    refine: list[MeshRefine] = []  # local refinement at load, in mm (balls around lesions)

    @field_validator("path")
    @classmethod
    def _exists(cls, v: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get("base_dir")
        p = v if v.is_absolute() or base is None else Path(base) / v
        p = p.resolve()
        if p.suffix != ".msh":
            raise ValueError(f"mesh file {p} must be a gmsh .msh file with named physical groups")
        if not p.exists():
            raise ValueError(f"mesh file {p} does not exist")
        if p.is_dir():
            raise ValueError(f"mesh file {p} is a directory, not a .msh file")
        if not p.is_file():
            raise ValueError(f"mesh file {p} is not a regular file (a device or a pipe?)")
        return p

    @property
    def scale_to_mm(self) -> float:
        """Factor that converts the file's coordinates to mm."""
        return {"mm": 1.0, "cm": 10.0, "m": 1000.0, "um": 1e-3}[self.unit]


MeshConfig = Annotated[BoxMesh | FileMesh, Field(discriminator="kind")]


# --------------------------------------------------------------------------------------- time
class TimeConfig(_Strict):
    """Time interval, scheme and step control; output times (and dose times) are hit exactly.

    ``scheme = "be"`` is backward Euler (first order), ``"bdf2"`` the variable-step BDF2 (second
    order, started with one backward-Euler step). With ``adaptive = true`` the step follows a
    local-error estimate (the difference between the solution and a polynomial predictor through
    the last accepted steps, Milne's device) held below ``tolerance`` (relative, per species,
    lumped L2 norm); without it, ``dt`` is used throughout. Newton failures halve the step.
    ``error_filter = "diagonal"`` (default) damps the estimate of stiff components by the
    diagonal of the step's Newton matrix (Shampine's filtered error estimate in Jacobi form):
    species that relax to their input within a step (small-molecule drugs tracking the plasma
    level) no longer set the step; ``"none"`` uses the raw estimate.
    """

    t_end: Time = Field(gt=0)
    dt: Time = Field(gt=0)
    output_every: Time | None = Field(default=None, gt=0)
    max_retries: int = Field(default=8, ge=0, le=30)
    scheme: Literal["be", "bdf2"] = "be"
    adaptive: bool = False
    tolerance: float = Field(default=1e-3, gt=0, lt=1)
    dt_min: Time = Field(default=1e-6, gt=0)
    dt_max: Time | None = Field(default=None, gt=0)
    error_filter: Literal["diagonal", "none"] = "diagonal"

    @model_validator(mode="after")
    def _dt(self) -> TimeConfig:
        problems = []
        if self.dt > self.t_end:
            problems.append(f"dt: dt ({self.dt:g} h) must not exceed t_end ({self.t_end:g} h)")
        if self.dt_max is not None and self.dt_max < self.dt:
            problems.append(f"dt_max: dt_max ({self.dt_max:g} h) must be >= dt ({self.dt:g} h)")
        steps = [("dt", self.dt), ("output_every", self.output_every)]
        default_dt_min = TimeConfig.model_fields["dt_min"].default
        if "dt_min" in self.model_fields_set and self.dt_min != default_dt_min:
            # a dt_min the case chose (the default, also in a resolved case, is a safety floor)
            steps.append(("dt_min", self.dt_min))
        for name, step in steps:
            if step is not None and self.t_end / step > MAX_TIME_STEPS:
                problems.append(
                    f"{name}: t_end/{name} = {self.t_end:g} h / {step:g} h = "
                    f"{self.t_end / step:.3g} steps, above the cap of {MAX_TIME_STEPS:.0e}; "
                    f"check the units or use a larger {name}"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self


# --------------------------------------------------------------------------------------- tumor
class GaussianSeed(_Strict):
    """Initial tumor density ``peak * exp(-|x - center|^2 / radius^2)``."""

    kind: Literal["gaussian"]
    center: tuple[Length, Length, Length]
    radius: Length = Field(gt=0)
    peak: Number = Field(default=0.5, gt=0, le=1)


class UniformSeed(_Strict):
    """Spatially uniform initial tumor density."""

    kind: Literal["uniform"]
    value: Fraction


class RegionSeed(_Strict):
    """Initial tumor density ``value`` in a tagged mesh region (e.g. a segmented lesion).

    The nodal values are the lumped L2 projection of ``value`` times the region's indicator:
    ``value`` times the region's share of the volume of the cells around each node, so inside
    the region u = value, on its border it falls off over one cell, and the initial mass is
    exactly ``value`` times the region volume.
    """

    kind: Literal["region"]
    region: Name
    value: Fraction = 1.0


class ImageSeed(_Strict):
    """Initial tumor density from a scalar image (NIfTI ``.nii``/``.nii.gz`` or NRRD).

    The image is sampled at the mesh nodes in world coordinates (mm, through the image's
    voxel-to-world affine, flipped or oblique axes included) by trilinear interpolation of the
    voxel values; nodes outside the image get ``fill``. ``conversion``: ``"scale"`` gives
    u = scale * I; ``"adc"`` reads an apparent-diffusion-coefficient map and gives the tumor
    cell fraction u = (adc_water - ADC) / (adc_water - adc_min) (Hormuth et al. 2015, Phys.
    Biol. 12:046006; ``adc_water`` and ``adc_min`` in the image's units). The result is clipped
    to [0, 1].
    """

    kind: Literal["image"]
    path: Path
    conversion: Literal["scale", "adc"] = "scale"
    scale: Number = Field(default=1.0, gt=0)
    adc_water: Number | None = Field(default=None, gt=0)
    adc_min: Number | None = Field(default=None, ge=0)
    fill: Fraction = 0.0

    @field_validator("path")
    @classmethod
    def _exists(cls, v: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get("base_dir")
        p = (v if v.is_absolute() or base is None else Path(base) / v).resolve()
        if not p.name.lower().endswith((".nii", ".nii.gz", ".nrrd", ".nhdr")):
            raise ValueError(f"image {p} must be NIfTI (.nii, .nii.gz) or NRRD (.nrrd, .nhdr)")
        if not p.is_file():
            raise ValueError(f"image {p} does not exist")
        return p

    @model_validator(mode="after")
    def _adc(self) -> ImageSeed:
        if self.conversion == "adc":
            if self.adc_water is None or self.adc_min is None:
                raise ValueError("conversion = 'adc' needs adc_water and adc_min")
            if self.adc_min >= self.adc_water:
                raise ValueError(
                    f"adc_min ({self.adc_min:g}) must be below adc_water ({self.adc_water:g})"
                )
        elif self.adc_water is not None or self.adc_min is not None:
            raise ValueError("adc_water and adc_min need conversion = 'adc'")
        return self


#: One initial-condition spec of the tumor density.
Seed = Annotated[GaussianSeed | UniformSeed | RegionSeed | ImageSeed, Field(discriminator="kind")]


class TumorConfig(_Strict):
    """Tumor-cell density u (normalized by the carrying capacity).

    Chemotaxis belongs to each pathway (``effects.chemotaxis``); the single-pathway shorthand
    (``[ligand]`` + ``[receptor]``) also accepts ``tumor.chemotaxis`` toward its ligand.

    The initial density is the seed ``[tumor.initial]`` plus any ``[[tumor.seeds]]`` (kinds
    ``gaussian``, ``uniform``, ``region``, ``image``), added node by node and capped at 1.
    ``validate`` and ``run`` compare the initial mass and peak the mesh delivers for each
    Gaussian seed with the requested ones and refuse beyond ``initial_tolerance`` unless
    ``allow_coarse_seed`` (or ``--allow-coarse-seed``).
    """

    proliferation_rate: Rate
    motility: Diffusivity
    death_rate: Rate = 0.0
    growth_law: Literal["logistic", "gompertz"] = "logistic"
    signal_independent_growth: Fraction = Field(
        default=0.3,
        description="fraction b0 of proliferation that needs no pathway signal (used only when a "
        "pathway has effects.proliferation > 0)",
    )
    carrying_capacity: CellDensity = Field(
        default=1e5,
        description="cells/mm^3 at u = 1 (1e5/mm^3 = 1e8 cells/mL: ~1e8 cells/cm^3 in epithelial "
        "tumors, Del Monte 2009 Cell Cycle 8:505-506; reported range up to ~1e9; scales receptor "
        "totals in nM, see README 'Carrying capacity')",
    )
    initial: Seed
    seeds: list[Seed] = Field(
        default=[],
        max_length=1000,
        description="further seeds ([[tumor.seeds]]), added to [tumor.initial]; the sum is "
        "capped at 1",
    )
    initial_tolerance: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="largest relative difference between the initial mass and peak the mesh "
        "delivers and those a Gaussian seed asks for (validate and run refuse beyond it)",
    )
    allow_coarse_seed: bool = Field(
        default=False,
        description="warn instead of refusing when a seed is beyond initial_tolerance",
    )

    def seed_list(self) -> list[tuple[str, Any]]:
        """``(field path, seed)`` of every seed: ``tumor.initial``, then ``tumor.seeds.<i>``."""
        out: list[tuple[str, Any]] = [("tumor.initial", self.initial)]
        return out + [(f"tumor.seeds.{i}", s) for i, s in enumerate(self.seeds)]


class FieldInRegion(_Strict):
    """An initial value of a species in one mesh region (0 elsewhere; lumped projection)."""

    region: Name
    value: float | str = Field(description="in the species' unit, e.g. '5 nM'")


class InitialFields(_Strict):
    """Initial fields of species other than the tumor (``[initial.fields]``).

    Keys are species names (``tumorpde validate`` lists them: a ligand ``EGF``, a drug
    ``trastuzumab``, ...); a value is a number in the species' internal unit or a string with
    units (``"1 nM"``): uniform; or ``{ region = "tumor", value = "5 nM" }``: that value in one
    region and 0 elsewhere. It replaces the value the species' component would start from;
    receptor states keep theirs (a uniform ligand level that also sets the receptors' steady
    state is ``pathways.<P>.ligand.initial``).
    """

    fields: dict[Name, float | str | FieldInRegion] = {}


# --------------------------------------------------------------------------------------- pathways
class ECMBinding(_Strict):
    """Reversible ligand binding to extracellular-matrix sites (HSPG): VEGF165, HGF."""

    sites: Concentration = Field(gt=0)
    k_on: SecondOrderRate
    k_off: Rate


class PathwayLigand(_Strict):
    """The pathway's diffusing ligand L (nM)."""

    name: Name
    diffusivity: Diffusivity
    decay_rate: Rate = 0.0
    tumor_secretion: ConcentrationRate = Field(default=0.0, description="nM/h at u = 1")
    stromal_secretion: ConcentrationRate = 0.0
    hypoxic_secretion: ConcentrationRate = Field(
        default=0.0, description="extra tumor secretion at full hypoxia (needs [oxygen])"
    )
    initial: Concentration = 0.0
    ecm: ECMBinding | None = None


class PathwayReceptor(_Strict):
    """Receptor states per cell (pointwise ODEs; stored as nM at carrying capacity).

    dR/dt = k_t R0 - k_on L R + k_off C - k_t R + k_rec I;  dC/dt = k_on L R - k_off C - k_e C;
    dI/dt = k_e C - (k_rec + k_deg) I  (Lauffenburger & Linderman 1993). Synthesis k_t R0 keeps
    the ligand-free steady state at ``receptors_per_cell``. With ``internalized = false`` no I is
    tracked (internalized complexes are degraded at once).
    """

    receptors_per_cell: Number = Field(gt=0, le=1e8)
    k_on: SecondOrderRate = 0.0
    k_off: Rate = 0.0
    k_t: Rate = Field(default=0.0, description="constitutive internalization of free receptor")
    k_e: Rate = Field(default=0.0, description="ligand-induced internalization of the complex")
    k_rec: Rate = Field(default=0.0, description="recycling of internalized receptor")
    k_deg: Rate = Field(default=0.0, description="degradation of internalized receptor")
    internalized: bool = True
    initial_state: Literal["steady", "free"] = Field(
        default="steady",
        description="'steady': trafficking steady state at the initial ligand level (no fast "
        "initial layer); 'free': R = (1 - initial_occupancy) R0, C = initial_occupancy R0, I = 0",
    )
    initial_occupancy: Fraction = 0.0


class SignalConfig(_Strict):
    """Downstream signal S in [0, 1]: dS/dt = rate (Hill(theta; half_max, hill) - S).

    theta is occupancy (C + I)/(R + C + I) for ligand pathways, relative free receptor R/R0 for
    ligand-less ones (HER2).
    """

    enabled: bool = True
    half_max: Number = Field(default=0.1, gt=0)
    hill: Number = Field(default=1.0, ge=1, le=8)
    rate: Rate = Field(default=1.0, gt=0)
    initial: Fraction | None = Field(default=None, description="default: the Hill value at t=0")


class EffectsConfig(_Strict):
    """How the pathway's signal acts on the tumor density."""

    proliferation: Number = Field(
        default=0.0, ge=0, le=1, description="weight w_p in the growth signal 1 - Π(1 - w_p S_p)"
    )
    survival: Number = Field(
        default=0.0, ge=0, le=1, description="weight w_p in the survival signal 1 - Π(1 - w_p S_p)"
    )
    motility: Number = Field(default=0.0, ge=0, description="D_u multiplier gain: 1 + m S")
    chemotaxis: Chemotaxis = 0.0
    chemotaxis_saturation: Concentration | None = Field(default=None, gt=0)
    cytostatic: Fraction = Field(default=0.0, description="growth block of epithelial cells")
    emt_rate: Rate = Field(default=0.0, description="signal-driven epithelial->mesenchymal rate")
    emt_reversion: Rate = Field(default=0.0, description="mesenchymal->epithelial reversion")
    emt_motility: Number = Field(
        default=0.0, ge=0, description="motility gain of mesenchymal cells"
    )


class PathwayConfig(_Strict):
    """One growth-factor pathway: ligand (optional), receptor states, signal and effects."""

    description: str = ""
    ligand: PathwayLigand | None = None
    receptor: PathwayReceptor
    signal: SignalConfig = SignalConfig()
    effects: EffectsConfig = EffectsConfig()
    references: dict[str, str] = {}


# --------------------------------------------------------------------------------------- modules
class OxygenConfig(_Strict):
    """Quasi-steady oxygen O (mmHg): 0 = div(D grad O) + k_s (O_b - O) - M u O/(O + K_m).

    Oxygen limits proliferation by O/(O + K_O), kills by hypoxic_death_rate * h(O) and drives
    hypoxic ligand secretion, with hypoxia h(O) = K_h^n / (K_h^n + O^n).
    """

    diffusivity: Diffusivity = 6.3  # 1.75e-5 cm^2/s (Grote 1977)
    supply_rate: Rate = Field(default=30.0, gt=0, description="vascular supply P_O V (1/h)")
    blood_level: Annotated[float, _unit("pressure"), Field(gt=0)] = 40.0
    consumption: Annotated[float, _unit("pressure_rate"), Field(ge=0)] = 1000.0
    consumption_half: Annotated[float, _unit("pressure"), Field(gt=0)] = 1.0
    proliferation_half: Annotated[float, _unit("pressure"), Field(gt=0)] = 2.5
    hypoxia_threshold: Annotated[float, _unit("pressure"), Field(gt=0)] = 5.0
    hypoxia_hill: Number = Field(default=3.0, ge=1, le=8)
    hypoxic_death_rate: Rate = 0.0
    #: Necrosis (0: off, no necrotic field): anoxic cells die at necrosis_rate * h_n(O) into the
    #: irreversible necrotic fraction n, h_n(O) = K_n^k/(K_n^k + O^k) (K_n =
    #: necrosis_threshold), which occupies space (growth u(1 - u - n)).
    necrosis_rate: Rate = 0.0
    necrosis_threshold: Annotated[float, _unit("pressure"), Field(gt=0)] = 1.0
    necrosis_clearance: Rate = 0.0


class AngiogenesisConfig(_Strict):
    """Dynamic relative vessel density m = S_v/S_v,host (``tumorpde.model.vessels``).

    dm/dt = r_a A(V) (1 - u) m (1 - m/m_max) - k_r u (1 - sigma(V)) m + k_h (1 - u)(1 - m), with
    sigma(V) = V^n/(K_V^n + V^n) of the free VEGF V of ``pathway`` and the angiogenic drive
    A(V) = max(sigma(V) - sigma(V_0), 0) above its tumor-free level V_0 (the ligand's
    ``initial``). Oxygen supply and drug exchange scale with m; lesion-vessel drug permeability
    with (1 + a sigma(V))/(1 + a sigma(V_0)).
    """

    #: Pathway whose free ligand drives sprouting (None: no angiogenesis, regression only).
    pathway: Name | None = "VEGFR2"
    sprouting_rate: Rate = 0.2 / 24
    max_density: Number = Field(default=3.0, gt=1, le=20)
    vegf_half: Annotated[float, _unit("concentration"), Field(gt=0)] = 0.1
    vegf_hill: Number = Field(default=2.0, ge=1, le=8)
    regression_rate: Rate = 0.1 / 24
    restoration_rate: Rate = 0.05 / 24
    permeability_gain: Number = Field(default=4.0, ge=0)

    @field_validator("pathway", mode="before")
    @classmethod
    def _none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and v.lower() == "none" else v


class BoneConfig(_Strict):
    """Bone vicious cycle: TGF-beta -> PTHrP -> RANKL -> osteoclasts -> matrix resorption.

    PTHrP P = u (pthrp_basal + (1 - pthrp_basal) S_p); RANKL induction
    R = (1 + K) P / (K + P) with K = rankl_half; dOC/dt = basal + activation R - decay OC;
    mineralized matrix dM/dt = -resorption_rate max(OC - basal/decay, 0) M (M starts at
    matrix_fraction); the pathway's ligand gains matrix_tgf (turnover + resorption_rate
    max(OC - basal/decay, 0)) M + matrix_release OC (see :mod:`tumorpde.model.bone`).
    ``basal``, ``activation``, ``matrix_release``, ``turnover`` and ``matrix_fraction`` are per
    region (through the organ profile or ``[regions]``).
    """

    pathway: Name = "TGFBR"
    basal: Rate = 0.0
    activation: Rate = 0.0
    decay: Rate = Field(default=0.02, gt=0)
    #: Extra ligand release per unit OC, not tied to the matrix state (0 in the bone profile).
    matrix_release: ConcentrationRate = 0.0
    #: Share of tumor PTHrP secretion that does not depend on the pathway's signal.
    pthrp_basal: Fraction = 0.0
    #: PTHrP level (units of a packed, fully signalling tumor) of half-maximal RANKL induction.
    rankl_half: Number = Field(default=1.0, gt=0)
    #: Net matrix resorption rate per unit of osteoclast activity above normal (1/h).
    resorption_rate: Rate = 0.0
    #: Normal (coupled, balanced) matrix remodelling rate; releases matrix TGF-beta only.
    turnover: Rate = 0.0
    #: Mineralized-matrix volume fraction at the start (per region).
    matrix_fraction: Fraction = 0.0
    #: Active ligand released per volume of resorbed mineralized matrix.
    matrix_tgf: Concentration = 0.0


class TherapyConfig(_Strict):
    """Targeted therapy: the patient and the drug regimens (see :mod:`tumorpde.library.drugs`).

    Each treatment names a catalog drug (or a drug file) and a regimen of that drug, with inline
    regimen fields overriding it. Drugs must target active pathways.
    """

    patient: Patient = Patient()
    treatments: list[Treatment] = []
    #: Share of lesion vessels: "lesion" min(1, u/lesion_density) (the lesion's vessels have
    #: the lesion's permeability throughout it), "density" u (older: proportional to u).
    tumor_permeability_weight: Literal["lesion", "density"] = "lesion"
    lesion_density: Fraction = Field(default=0.1, gt=0)
    #: Seed of the lesion's barrier sample (blood-tumor barrier leakiness z-score, drawn once
    #: per lesion from a standard normal; see :mod:`tumorpde.model.drug`).
    lesion_seed: int = Field(default=0, ge=0)
    #: The lesion's leakiness z-score itself (overrides the seed; 0 = the median lesion).
    lesion_leakiness: float | None = Field(default=None, ge=-6, le=6)
    #: Effector cells for antibody-dependent kill (ADCC), relative to peripheral tissue;
    #: None: 0 where the vessel barrier is "brain" (parenchyma), else 1.
    effector_factor: Fraction | None = None
    #: Share of the target's signal driven by ligand-bound heterodimers that an antibody does
    #: not block (HER2/HER3 with neuregulin); None: 0.5 where the case-wide barrier is "brain",
    #: else 0.1 (one value per case).
    her3_bypass: Fraction | None = None
    #: Oncogene-addiction death rate per pathway at complete loss of its signal (1/h).
    addiction: dict[str, Rate] = {}

    @field_validator("treatments")
    @classmethod
    def _unique(cls, v: list[Treatment]) -> list[Treatment]:
        names = [t.spec.name for t in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(
                f"drug(s) {', '.join(dup)} listed twice; give one regimen per drug "
                "(use loading_dose/start/stop for schedule changes)"
            )
        return v


class CompareConfig(_Strict):
    """Arms of ``tumorpde compare``: arm name -> drugs (by name) of ``[therapy]`` it gives."""

    arms: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.+-]*$", max_length=64)], list[str]
    ] = {}


class VesselConfig(_Strict):
    """Vascular surface density and drug-barrier class (used by therapy), per region."""

    surface_density: Annotated[float, _unit("inverse_length"), Field(ge=0)] = 10.0
    barrier: Literal["normal", "fenestrated", "brain"] = "normal"
    #: First-order clearance of free drug from the interstitium (ISF bulk flow to CSF in
    #: brain, lymph elsewhere) as ISF volume cleared per tissue volume per time (1/h).
    interstitial_clearance: Rate = 0.0


# --------------------------------------------------------------------------------------- numerics
DEFAULT_PETSC: dict[str, str | int | float | bool] = {
    # Reduced-space active-set Newton with lower bounds 0 on every unknown (all species are
    # densities or concentrations): stiff bilinear binding (drug-receptor k_on A R at 3.6/nM/h)
    # otherwise lets plain Newton converge to a spurious root with A, R < 0 (measured: free HER2
    # -17 nM after a trastuzumab loading dose); without active bounds it is plain Newton.
    "snes_type": "vinewtonrsls",
    "snes_linesearch_type": "basic",
    "snes_rtol": 1e-9,
    "snes_atol": 1e-12,
    # Stagnation at round-off (a Newton update below 1e-12 of the solution norm) counts as
    # converged; otherwise a residual already at its floor fails the relative test.
    "snes_stol": 1e-12,
    "snes_max_it": 25,
    # Direct LU fills in badly in 3D (MUMPS: 30x fill, 2 s per factorization at 32k unknowns),
    # so the default is GMRES with block-Jacobi/ILU(0); LU stays available from the case file.
    "ksp_type": "gmres",
    # Inexact Newton: linear solves to 1e-6 (0.5M-unknown coupled bench: GMRES 306 -> 207
    # iterations, Newton 10 -> 11, 22.9 -> 18.4 s; benchmarks/README.md).
    "ksp_rtol": 1e-6,
    "ksp_atol": 1e-14,
    "ksp_max_it": 1000,
    "ksp_gmres_restart": 100,
    "pc_type": "bjacobi",
    "sub_pc_type": "ilu",
}


#: Preconditioners with sub-solvers that read ``sub_*`` options.
_BLOCK_PCS = ("bjacobi", "asm", "gasm")

#: ``[solver] preconditioner = "fieldsplit"``: one split per transported species (kind "pde" or
#: "algebraic", named after it) with smoothed-aggregation AMG (GAMG), and one split ``local``
#: with all pointwise (ODE) species, solved exactly (LU of the node-local blocks; the block is
#: block-diagonal by node), applied as block Gauss-Seidel. ``fieldsplit_transport_*`` options
#: apply to every transport split (:func:`tumorpde.fem.solver.solver_for`). Coupled bench,
#: GMRES iterations per Newton step at 0.06M / 0.5M / 2.05M unknowns: 7.9 / 7.1 / 7.25 (2 ranks
#: at 0.5M: 8.1) against 11.4 / 18.6 / 28.5 (28.2) with block-Jacobi/ILU(0), but more time per
#: step on this machine (GAMG set-up at every Newton iteration): an opt-in, not the default
#: (benchmarks/README.md).
FIELDSPLIT_PETSC: dict[str, str | int | float | bool] = {
    "pc_type": "fieldsplit",
    "pc_fieldsplit_type": "multiplicative",
    "fieldsplit_transport_ksp_type": "preonly",
    "fieldsplit_transport_pc_type": "gamg",
    "fieldsplit_transport_pc_gamg_aggressive_coarsening": 0,
    "fieldsplit_transport_pc_gamg_reuse_interpolation": True,
    "fieldsplit_local_ksp_type": "preonly",
    "fieldsplit_local_pc_type": "bjacobi",
    "fieldsplit_local_sub_pc_type": "lu",
}

#: ``[solver] preconditioner = "condensed"``: static condensation of the pointwise (ODE)
#: species (:class:`tumorpde.fem.condense.CondensedPC`, a petsc4py Python preconditioner):
#: their node blocks are inverted exactly, the Schur complement on the transported species is
#: assembled, and the outer GMRES is preconditioned by one application of the inner
#: preconditioner on it (``condensed_*``: by default a multiplicative field split with one GAMG
#: per transported species; ``condensed_fieldsplit_transport_*`` apply to each). Coupled bench,
#: GMRES iterations per Newton step at 0.5M unknowns: 6.1 on 1 and on 2 ranks (block-Jacobi/
#: ILU(0) 18.6 / 28.0); smoothed aggregation (GAMG's default) because unsmoothed
#: (``pc_gamg_agg_nsmooths = 0``) is cheaper to set up but grows: 9.3 / 10.1 / 13.0 at 0.14M /
#: 0.5M / 2.05M. Not faster than ILU(0) per step on the 2-core machine it was measured on: an
#: opt-in (benchmarks/README.md, "Static condensation of the ODE species").
CONDENSED_PETSC: dict[str, str | int | float | bool] = {
    "pc_type": "python",
    "condensed_ksp_type": "preonly",
    "condensed_pc_type": "fieldsplit",
    "condensed_pc_fieldsplit_type": "multiplicative",
    "condensed_fieldsplit_transport_ksp_type": "preonly",
    "condensed_fieldsplit_transport_pc_type": "gamg",
    "condensed_fieldsplit_transport_pc_gamg_aggressive_coarsening": 0,
    # S keeps its nonzero pattern while the VI's active set does not change: the aggregates
    # and interpolation are kept, only the Galerkin coarse operators are recomputed
    "condensed_fieldsplit_transport_pc_gamg_reuse_interpolation": True,
}

#: Preset options per ``[solver] preconditioner``.
_PRESETS: dict[str, dict[str, str | int | float | bool]] = {
    "default": {},
    "fieldsplit": FIELDSPLIT_PETSC,
    "condensed": CONDENSED_PETSC,
}


class SolverConfig(_Strict):
    """Nonlinear solver: PETSc options (prefix ``tumorpde_``) merged over the defaults.

    ``flux_jacobian``: when the Jacobian blocks of fluxes that depend on the unknowns (tumor
    motility and chemotaxis) are reassembled: at every Newton iteration (``"iteration"``, exact
    Newton), at the first iteration of each step (``"step"``), or only when a solve failed or
    needed more Newton iterations than the last one that reassembled them (``"auto"``,
    default). Reaction and time-derivative blocks are always exact, and so is the residual, so
    the solution is the same to the Newton tolerance. HER2 brain case over 42 days: 2 flux
    assemblies instead of 178, at 176 instead of 159 Newton iterations (benchmarks/README.md).

    ``preconditioner``: ``"default"`` (block-Jacobi/ILU(0) of :data:`DEFAULT_PETSC`),
    ``"fieldsplit"`` (:data:`FIELDSPLIT_PETSC`: AMG per transported species, exact node-local
    solve of the pointwise species) or ``"condensed"`` (:data:`CONDENSED_PETSC`: the pointwise
    species eliminated exactly node by node, Krylov on the Schur complement of the transported
    ones); ``petsc`` options still apply on top, except ``pc_type``.
    """

    petsc: dict[str, str | int | float | bool] = {}
    flux_jacobian: Literal["iteration", "step", "auto"] = "auto"
    preconditioner: Literal["default", "fieldsplit", "condensed"] = "default"

    @model_validator(mode="after")
    def _preconditioner(self) -> SolverConfig:
        pc = self.petsc.get("pc_type")
        own = _PRESETS[self.preconditioner].get("pc_type")
        if own is not None and pc is not None and str(pc) != own:
            raise ValueError(
                f"preconditioner = {self.preconditioner!r} sets petsc.pc_type; remove "
                f"petsc.pc_type = {pc!r} or use preconditioner = 'default'"
            )
        if self.preconditioner == "condensed" and "pc_python_type" in self.petsc:
            raise ValueError(
                "preconditioner = 'condensed' is its own Python preconditioner; remove "
                "petsc.pc_python_type"
            )
        return self

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
        """Defaults updated with the case's options.

        The default ``sub_*`` options (the ILU(0) blocks of block Jacobi) are dropped when the
        case chooses a preconditioner without sub-solvers (``pc_type = "lu"``): PETSc would
        never read them, and unused options are errors (:mod:`tumorpde.fem.solver`).
        """
        preset = _PRESETS[self.preconditioner]
        out = {**DEFAULT_PETSC, **preset, **self.petsc}
        if str(out.get("pc_type")) not in _BLOCK_PCS:
            for key in DEFAULT_PETSC:
                if key.startswith("sub_") and key not in self.petsc:
                    del out[key]
        return out


class CheckpointConfig(_Strict):
    """Checkpoints of a run (``OUTDIR/checkpoints/step-<n>.npz``) for resume and branching.

    ``run --resume`` continues from the newest; ``run --restart-from DIR --at T`` branches.
    Written every ``every_steps`` accepted steps, every ``every_minutes`` of wall time, at every
    output time (``at_outputs``: these stay, for branching) and when the run is interrupted
    (SIGTERM/SIGINT). Only the newest ``keep`` periodic ones are kept. Each one holds every
    species with its step history (4 values per node and species).
    """

    enabled: bool = True
    every_steps: int = Field(default=50, ge=0, le=10**6)
    every_minutes: float = Field(default=15.0, ge=0, le=1e6, allow_inf_nan=False)
    at_outputs: bool = True
    keep: int = Field(default=2, ge=1, le=1000)


class OutputConfig(_Strict):
    """What the run directory gets. ``fields`` = None writes every species and derived field."""

    #: Field files: "vtkhdf" (one VTKHDF file per output time + ``fields.vtkhdf.series``;
    #: ParaView, PyVista/VTK and h5py read it, with region/boundary tags and units), "xdmf"
    #: (``fields.xdmf`` + ``fields.h5``, ParaView only) or "vtx" (ADIOS2 ``fields.bp``).
    format: Literal["vtkhdf", "xdmf", "vtx"] = "vtkhdf"
    fields: list[str] | None = None
    picture: bool = True
    checkpoint: CheckpointConfig = CheckpointConfig()


RegionValue = float | str


class CaseConfig(_Strict):
    """A whole case: mesh, time, physics, numerics and outputs (all in internal units).

    ``regions`` holds per-region values as flat dotted keys (``"tumor.motility"``,
    ``"pathways.EGFR.ligand.stromal_secretion"``), already converted; see :func:`region_keys`.
    """

    name: Name
    description: str = ""
    organ: Name | None = None
    mesh: MeshConfig
    time: TimeConfig
    tumor: TumorConfig
    initial: InitialFields = InitialFields()
    pathways: dict[Name, PathwayConfig] = {}
    oxygen: OxygenConfig | None = None
    angiogenesis: AngiogenesisConfig | None = None
    bone: BoneConfig | None = None
    vessels: VesselConfig = VesselConfig()
    therapy: TherapyConfig | None = None
    compare: CompareConfig | None = None
    regions: dict[str, dict[str, RegionValue]] = {}
    # [[boundary]]: conditions on named mesh boundaries (tumorpde.config.boundary)
    boundary: list[BoundaryCondition] = []
    solver: SolverConfig = SolverConfig()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="after")
    def _consistent(self) -> CaseConfig:
        # every cross-field problem at once, one "field.path: message" per line
        problems = self.cross_field_problems()
        if problems:
            raise ValueError("\n".join(f"{path}: {msg}" for path, msg in problems))
        return self

    def cross_field_problems(self) -> list[tuple[str, str]]:
        """Problems that involve several sections (pathways, modules, therapy, seed, mesh).

        Returns:
            ``(field path, message)`` pairs; empty when the case is consistent.
        """
        problems: list[tuple[str, str]] = []
        ligands: dict[str, str] = {}
        for p, pw in self.pathways.items():
            if pw.ligand is None:
                continue
            where = f"pathways.{p}.ligand.name"
            if pw.ligand.name in ligands:
                problems.append(
                    (
                        where,
                        f"pathways {ligands[pw.ligand.name]} and {p} both use ligand "
                        f"{pw.ligand.name!r}; give each pathway its own ligand name",
                    )
                )
            elif pw.ligand.name in self.pathways or pw.ligand.name == "tumor":
                problems.append((where, f"{pw.ligand.name!r} clashes with a pathway name"))
            else:
                ligands[pw.ligand.name] = p
        if self.bone is not None:
            pw = self.pathways.get(self.bone.pathway)
            if pw is None or pw.ligand is None or not pw.signal.enabled:
                problems.append(
                    (
                        "bone.pathway",
                        f"{self.bone.pathway!r} must name an active pathway with a ligand and a "
                        f"signal (active: {', '.join(self.pathways) or 'none'})",
                    )
                )
        if self.therapy is not None:
            problems += self._therapy_problems(self.therapy)
        problems += self._boundary_problems()
        if self.compare is not None:
            given = {t.spec.name for t in (self.therapy.treatments if self.therapy else [])}
            for arm, drugs in self.compare.arms.items():
                missing = [d for d in drugs if d not in given]
                if missing:
                    problems.append(
                        (
                            f"compare.arms.{arm}",
                            f"{', '.join(missing)} not in [[therapy.treatments]] "
                            f"(given: {', '.join(sorted(given)) or 'none'})",
                        )
                    )
        needs_o2 = [
            p for p, pw in self.pathways.items() if pw.ligand and pw.ligand.hypoxic_secretion
        ]
        if needs_o2 and self.oxygen is None:
            problems.append(
                (
                    "oxygen",
                    f"pathways {', '.join(needs_o2)} have ligand.hypoxic_secretion but there is "
                    "no [oxygen] table",
                )
            )
        problems += self._angiogenesis_problems()
        for where, seed in self.tumor.seed_list():
            if not isinstance(seed, GaussianSeed) or not isinstance(self.mesh, BoxMesh):
                continue
            size = self.mesh.size
            if any(
                not (-1e-9 * max(1.0, s) <= c <= s * (1 + 1e-9))
                for c, s in zip(seed.center, size, strict=True)
            ):
                problems.append(
                    (
                        f"{where}.center",
                        f"{_fmt_mm(seed.center)} lies outside the box [0, 0, 0] to {_fmt_mm(size)}",
                    )
                )
        return problems

    def _angiogenesis_problems(self) -> list[tuple[str, str]]:
        """[angiogenesis]: its pathway must be active and have a ligand (VEGF)."""
        a = self.angiogenesis
        if a is None or a.pathway is None:
            return []
        pw = self.pathways.get(a.pathway)
        if pw is None or pw.ligand is None:
            active = ", ".join(p for p, w in self.pathways.items() if w.ligand) or "none"
            return [
                (
                    "angiogenesis.pathway",
                    f"{a.pathway!r} must name an active pathway with a ligand (VEGF) that "
                    f"drives sprouting (active with a ligand: {active}); add "
                    f'[pathways.{a.pathway}] or set pathway = "none" for regression only',
                )
            ]
        return []

    def _therapy_problems(self, therapy: TherapyConfig) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        active = ", ".join(self.pathways) or "none"
        for p in therapy.addiction:
            if p not in self.pathways:
                problems.append(
                    (
                        f"therapy.addiction.{p}",
                        f"addiction names pathway {p}, which is not active (active: {active})",
                    )
                )
        for i, t in enumerate(therapy.treatments):
            spec = t.spec
            where = f"therapy.treatments.{i}"
            for target in spec.targets:
                if target == "RANKL":  # algebraic mediator of the bone cycle, not a pathway
                    if self.bone is None:
                        problems.append(
                            (
                                where,
                                f"{spec.name}: neutralizes RANKL of the bone vicious cycle, "
                                "which this case lacks; add [bone] (e.g. organ = 'bone') or "
                                "drop the drug",
                            )
                        )
                    continue
                pw = self.pathways.get(target)
                if pw is None:
                    problems.append(
                        (
                            where,
                            f"{spec.name}: targets pathway {target}, which is not active in this "
                            f"case (active: {active}); add [pathways.{target}] or drop the drug",
                        )
                    )
                elif spec.mechanism == "ligand_trap" and pw.ligand is None:
                    problems.append(
                        (where, f"{spec.name}: ligand trap on {target}, which has no ligand")
                    )
                elif spec.mechanism == "kinase_inhibitor" and not pw.signal.enabled:
                    problems.append(
                        (
                            where,
                            f"{spec.name}: kinase inhibitor on {target}, whose signal is "
                            "switched off",
                        )
                    )
            if spec.mechanism in ("receptor_antibody", "ligand_trap") and len(spec.targets) != 1:
                problems.append((where, f"a {spec.mechanism} has one target"))
            behind_bbb = self.vessels.barrier == "brain" or any(
                v.get("vessels.barrier") == "brain" for v in self.regions.values()
            )
            if behind_bbb and spec.permeability.btb is None:
                problems.append(
                    (
                        f"{where}.drug",
                        f"{spec.name}: its drug file gives no blood-tumor-barrier permeability "
                        "(permeability.btb), which a lesion behind vessels.barrier = 'brain' "
                        "needs; add btb (and btb_spread, btb_efflux_ratio) to the drug file",
                    )
                )
            n = t.regimen.dose_count(self.time.t_end)
            if n > MAX_DOSES:
                problems.append(
                    (
                        f"{where}.interval",
                        f"{spec.name}: the regimen gives {n:.3g} doses up to t_end, above the "
                        f"cap of {MAX_DOSES:.0e}; check the interval ({t.regimen.interval:g} h)",
                    )
                )
        return problems

    def _boundary_problems(self) -> list[tuple[str, str]]:
        """[[boundary]]: one condition per (boundary, species), box face names, plasma drugs."""
        problems: list[tuple[str, str]] = []
        drugs = [t.spec.name for t in (self.therapy.treatments if self.therapy else [])]
        seen: dict[tuple[str, str], int] = {}
        for i, bc in enumerate(self.boundary):
            where = f"boundary.{i}"
            key = (bc.boundary, bc.species)
            if key in seen:
                problems.append(
                    (
                        where,
                        f"{bc.species} on {bc.boundary} already has a condition (boundary."
                        f"{seen[key]}); give one condition per species and boundary",
                    )
                )
            seen.setdefault(key, i)
            if isinstance(self.mesh, BoxMesh) and bc.boundary not in BOX_BOUNDARY_NAMES:
                problems.append(
                    (
                        f"{where}.boundary",
                        f"unknown boundary {bc.boundary!r}; a box mesh has: "
                        f"{', '.join(BOX_BOUNDARY_NAMES)}",
                    )
                )
            plasma = bc.external.plasma if bc.external is not None else None
            if plasma is not None and plasma not in drugs:
                problems.append(
                    (
                        f"{where}.external",
                        f"plasma:{plasma} names no drug of [[therapy.treatments]] (given: "
                        f"{', '.join(drugs) or 'none'})",
                    )
                )
        return problems

    def receptor_total_nM(self, pathway: str) -> float:
        """Ligand-free surface receptor of ``pathway`` at carrying capacity (nM)."""
        return receptors_per_cell_to_nM(
            self.pathways[pathway].receptor.receptors_per_cell, self.tumor.carrying_capacity
        )

    def region_value(self, key: str, region: str) -> RegionValue | None:
        """The per-region value of ``key`` in ``region`` (None: the global value applies)."""
        return self.regions.get(region, {}).get(key)


def region_keys(cfg_raw: Mapping[str, Any]) -> dict[str, str]:
    """Region-addressable parameters of a (raw) case and their unit kinds.

    Args:
        cfg_raw: The case tables (after library merging), used for the active pathways and
            modules.

    Returns:
        ``{dotted key: unit kind}`` (kind ``"text"`` for names).
    """
    keys = {
        "tumor.motility": "diffusivity",
        "tumor.proliferation_rate": "rate",
        "tumor.death_rate": "rate",
        "vessels.surface_density": "inverse_length",
        "vessels.barrier": "text",
        "vessels.interstitial_clearance": "rate",
    }
    pathways = cfg_raw.get("pathways")
    for p, table in (pathways if isinstance(pathways, Mapping) else {}).items():
        if isinstance(table, Mapping) and table.get("ligand"):
            keys[f"pathways.{p}.ligand.diffusivity"] = "diffusivity"
            keys[f"pathways.{p}.ligand.decay_rate"] = "rate"
            keys[f"pathways.{p}.ligand.stromal_secretion"] = "concentration_rate"
    if cfg_raw.get("oxygen") is not None:
        keys["oxygen.supply_rate"] = "rate"
        keys["oxygen.diffusivity"] = "diffusivity"
    if cfg_raw.get("bone") is not None:
        keys["bone.basal"] = "rate"
        keys["bone.activation"] = "rate"
        keys["bone.matrix_release"] = "concentration_rate"
        keys["bone.turnover"] = "rate"
        keys["bone.matrix_fraction"] = "dimensionless"
    return keys


def case_json_schema() -> dict[str, Any]:
    """The JSON Schema of a case file as written (for editor completion: ``tumorpde schema``).

    :class:`CaseConfig` validates the resolved tables; a case file may leave out what the
    parameter library or the organ profile supplies and uses a few keys that resolution
    consumes (``extends``, ``[ligand]``/``[receptor]`` shorthand, ``pathways.P.file`` /
    ``library`` / ``enabled``, ``oxygen.enabled``, nested ``[regions.<region>.<section>]``).
    This schema is :meth:`CaseConfig.model_json_schema` relaxed accordingly; quantities accept
    a number in internal units or a string with units (``x-unit`` names the internal unit).

    Returns:
        A JSON Schema (draft 2020-12) dictionary.
    """
    schema = CaseConfig.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tumorpde case file"
    defs = schema["$defs"]
    props = schema["properties"]
    props["extends"] = {
        "type": "string",
        "description": "a base case file (relative to this one) merged under this file",
    }
    for key, what in (("ligand", "PathwayLigand"), ("receptor", "PathwayReceptor")):
        props[key] = {
            "$ref": f"#/$defs/{what}",
            "description": "single-pathway shorthand (see benchmarks/cases/default.toml)",
        }
    props["regions"] = {
        "type": "object",
        "description": "per-region values: [regions.<region>.<section>] with keys "
        "tumor.{motility, proliferation_rate, death_rate}, "
        "pathways.<P>.ligand.{diffusivity, decay_rate, stromal_secretion}, "
        "oxygen.{supply_rate, diffusivity}, bone.{basal, activation, matrix_release}, "
        "vessels.{surface_density, barrier, interstitial_clearance}",
        "additionalProperties": {"type": "object"},
    }
    defs["PathwayConfig"]["properties"].update(
        file={"type": "string", "description": "a pathway parameter file (TOML)"},
        library={"type": "boolean", "description": "start from the library defaults (true)"},
        enabled={"type": "boolean", "description": "false drops the pathway"},
    )
    for module in ("OxygenConfig", "BoneConfig"):
        defs[module]["properties"]["enabled"] = {"type": "boolean"}
    # the library and the organ profile fill these in
    for name in ("PathwayConfig", "PathwayLigand", "PathwayReceptor", "TumorConfig"):
        required = [r for r in defs[name].get("required", []) if r == "initial"]
        if required:
            defs[name]["required"] = required
        else:
            defs[name].pop("required", None)
    return schema
