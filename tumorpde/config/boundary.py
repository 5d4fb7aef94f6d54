r"""Boundary-condition schema: the ``[[boundary]]`` tables of a case, converted to internal units.

One job: declare what a valid boundary condition looks like. Each table puts one condition on
one species on one named boundary of the mesh (a box's ``xmin`` ... ``zmax``, or a ``.msh``
file's 2D physical groups, e.g. the brain's ``ventricle_wall``)::

    [[boundary]]
    boundary = "ventricle_wall"
    species = "trastuzumab"
    kind = "robin"                 # "value" | "robin" | "flux"
    permeability = "1e-5 cm/s"     # robin: outward flux q.n = P (C - C_ext)
    external = "0 nM"              # or "plasma:trastuzumab", or a [time, value] table

``value`` fixes the concentration (C = C_ext), ``robin`` exchanges with an external reservoir
(outward flux :math:`q\cdot n = P\,(C - C_{ext})`), ``flux`` prescribes the outward flux
density :math:`q\cdot n = j` (``flux``; negative values enter the tissue). External values and
fluxes may follow time: a piecewise-linear table of ``[time, value]`` pairs (held constant
before the first and after the last time), or, for concentrations, ``"plasma:<drug>"`` (the
plasma concentration curve of a drug of ``[therapy]``). Units are converted once, here
(mm, h, nM; fluxes in nM mm/h). Which species and boundaries exist is checked against the
model and the mesh (:func:`tumorpde.model.boundary.boundary_problems`, :mod:`.resolve`).
This module imports neither dolfinx nor pyvista.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from tumorpde.units import to_internal

__all__ = ["BOX_BOUNDARY_NAMES", "BoundaryCondition", "TimeValue"]

#: Boundary names of a box mesh (the faces x = 0, x = size_x, ...), in facet-tag order.
BOX_BOUNDARY_NAMES = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")

#: Most points of an external-value table.
MAX_TABLE_POINTS = 10_000

_PLASMA = "plasma:"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TimeValue(_Frozen):
    """A boundary value that may follow time, in internal units.

    Exactly one of: ``value`` (constant), ``table`` (piecewise linear in t, constant outside
    its time range) or ``plasma`` (a drug's plasma concentration, resolved by the model).
    """

    value: float | None = None
    table: tuple[tuple[float, float], ...] = ()
    plasma: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> TimeValue:
        given = (self.value is not None) + bool(self.table) + (self.plasma is not None)
        if given != 1:
            raise ValueError("give exactly one of value, table and plasma")
        times = [p[0] for p in self.table]
        if any(b <= a for a, b in itertools.pairwise(times)):
            raise ValueError(f"table times must increase strictly (got {times} h)")
        return self

    @property
    def constant(self) -> bool:
        """True for a fixed number."""
        return self.value is not None

    def at(self, t: float) -> float:
        """The value at time ``t`` (h); not for ``plasma`` values (the drug knows its curve).

        Raises:
            ValueError: For a ``plasma`` value.
        """
        if self.value is not None:
            return self.value
        if not self.table:
            raise ValueError(f"plasma:{self.plasma} is evaluated by the drug component")
        times = [p[0] for p in self.table]
        if t <= times[0]:
            return self.table[0][1]
        if t >= times[-1]:
            return self.table[-1][1]
        i = bisect.bisect_right(times, t)
        (t0, v0), (t1, v1) = self.table[i - 1], self.table[i]
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def breakpoints(self) -> list[float]:
        """The table's times (kinks of the curve; the stepper hits them)."""
        return [p[0] for p in self.table]


def _time_value(kind: str, v: Any) -> Any:
    """Parse a number, a ``"value unit"`` string, a table or ``"plasma:<drug>"``."""
    if isinstance(v, TimeValue | dict) and not (isinstance(v, dict) and "unit" in v):
        return v
    if isinstance(v, str) and v.strip().startswith(_PLASMA):
        if kind != "concentration":
            raise ValueError(
                "a plasma curve is a concentration: use it as 'external' of a value or robin "
                "condition, not as a flux"
            )
        drug = v.strip()[len(_PLASMA) :].strip()
        if not drug:
            raise ValueError("'plasma:' needs a drug name, e.g. 'plasma:trastuzumab'")
        return TimeValue(plasma=drug)
    if isinstance(v, list | tuple):
        if not 2 <= len(v) <= MAX_TABLE_POINTS:
            raise ValueError(
                f"a time table needs 2 to {MAX_TABLE_POINTS} [time, value] pairs (got {len(v)})"
            )
        points = []
        for i, pair in enumerate(v):
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ValueError(f"table entry {i} must be a [time, value] pair (got {pair!r})")
            points.append((to_internal(pair[0], "time"), to_internal(pair[1], kind)))
        return TimeValue(table=tuple(points))
    return TimeValue(value=to_internal(v, kind))


def _concentration(v: Any) -> Any:
    out = _time_value("concentration", v)
    if isinstance(out, dict):
        out = TimeValue.model_validate(out)
    if isinstance(out, TimeValue):
        values = [out.value] if out.value is not None else [p[1] for p in out.table]
        if any(x < 0 for x in values):
            raise ValueError(f"external concentrations must be >= 0 (got {values} nM)")
    return out


#: What a boundary value accepts, for the JSON Schema: a number in internal units, a "value
#: unit" string (or "plasma:<drug>"), or a table of [time, value] pairs.
_VALUE_INPUT = float | str | list[tuple[float | str, float | str]]

#: An external concentration (nM): number, string with units, table or ``"plasma:<drug>"``.
ExternalConcentration = Annotated[
    TimeValue, BeforeValidator(_concentration, json_schema_input_type=_VALUE_INPUT)
]
#: An outward flux density (nM mm/h): number, string with units or table.
SurfaceFlux = Annotated[
    TimeValue,
    BeforeValidator(lambda v: _time_value("surface_flux", v), json_schema_input_type=_VALUE_INPUT),
]
#: A permeability (mm/h): number or string with units.
Permeability = Annotated[
    float,
    BeforeValidator(lambda v: to_internal(v, "velocity"), json_schema_input_type=float | str),
    Field(gt=0),
]
_Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]


class BoundaryCondition(_Frozen):
    r"""One condition on one species on one named boundary (see the module docstring).

    Attributes:
        boundary: Boundary name of the mesh.
        species: Species of the model (a transported one: ligand, drug, oxygen, tumor).
        kind: ``value`` (:math:`C = C_{ext}`), ``robin`` (:math:`q\cdot n = P(C - C_{ext})`)
            or ``flux`` (:math:`q\cdot n = j`), with :math:`q` the species' flux and :math:`n`
            the outward normal.
        permeability: P (mm/h), robin only.
        external: :math:`C_{ext}` (nM or the species' unit), value and robin (robin default 0).
        flux: j (nM mm/h, positive leaving the tissue), flux only.
    """

    boundary: _Name
    species: _Name
    kind: Literal["value", "robin", "flux"]
    permeability: Permeability | None = None
    external: ExternalConcentration | None = None
    flux: SurfaceFlux | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> BoundaryCondition:
        need = {"value": ("external",), "robin": ("permeability",), "flux": ("flux",)}[self.kind]
        allowed = {"value": {"external"}, "robin": {"permeability", "external"}, "flux": {"flux"}}
        missing = [k for k in need if getattr(self, k) is None]
        extra = [
            k
            for k in ("permeability", "external", "flux")
            if getattr(self, k) is not None and k not in allowed[self.kind]
        ]
        problems = []
        if missing:
            problems.append(f"kind {self.kind!r} needs {', '.join(missing)}")
        if extra:
            problems.append(f"kind {self.kind!r} takes no {', '.join(extra)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def value(self) -> TimeValue:
        """The boundary value: ``external`` (robin default 0) or ``flux``."""
        if self.kind == "flux":
            assert self.flux is not None
            return self.flux
        return self.external if self.external is not None else TimeValue(value=0.0)
