"""Initial fields of species other than the tumor, from ``[initial.fields]``.

:class:`InitialFields` is a component without species of its own, placed after all others:
its ``initial()`` replaces the start values of the species the case names (a preloaded drug or
ligand), uniform or in one region. :func:`initial_field_problems` checks the names against the
model's species and converts the values with each species' unit, before any compute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tumorpde.model.base import Component, Initial, RegionInitial
from tumorpde.model.species import Species
from tumorpde.units import to_internal

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig

__all__ = ["InitialFields", "initial_field_problems"]


def _kind(species: Species) -> str | None:
    """The unit kind of a species' stored values (None: not settable here)."""
    if species.unit.startswith("nM"):
        return "concentration"
    if species.unit == "mmHg":
        return "pressure"
    if species.unit.startswith("1"):
        return "dimensionless"
    return None


def _convert(
    cfg: CaseConfig, species: Sequence[Species]
) -> tuple[dict[str, Initial], list[tuple[str, str]]]:
    by_name = {s.name: s for s in species}
    out: dict[str, Initial] = {}
    problems: list[tuple[str, str]] = []
    for name, spec in cfg.initial.fields.items():
        where = f"initial.fields.{name}"
        sp = by_name.get(name)
        if name == "tumor":
            problems.append((where, "the tumor starts from [tumor.initial] (and [[tumor.seeds]])"))
            continue
        if sp is None:
            known = ", ".join(s for s in by_name if s != "tumor") or "none"
            problems.append((where, f"unknown species {name!r}; species of this case: {known}"))
            continue
        kind = _kind(sp)
        if sp.kind == "algebraic" or kind is None:
            problems.append((where, f"{name} is quasi-steady: its start value is computed"))
            continue
        raw: Any = spec.value if hasattr(spec, "value") else spec
        try:
            value = to_internal(raw, kind)
        except ValueError as exc:
            problems.append((where, str(exc)))
            continue
        if value < 0:
            problems.append((where, f"{value:g} {sp.unit}: must be >= 0"))
            continue
        region = getattr(spec, "region", None)
        out[name] = RegionInitial(region, value) if region is not None else value
    return out, problems


def initial_field_problems(
    cfg: CaseConfig, species: Sequence[Species], regions: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """Problems of ``[initial.fields]``: unknown species, bad units, unknown regions.

    Args:
        cfg: The case.
        species: All species of the model.
        regions: Mesh region names, when known.

    Returns:
        ``(field path, message)`` pairs.
    """
    _, problems = _convert(cfg, species)
    if regions is not None:
        for name, spec in cfg.initial.fields.items():
            region = getattr(spec, "region", None)
            if region is not None and region not in regions:
                problems.append(
                    (
                        f"initial.fields.{name}.region",
                        f"{region!r} is not a region of the mesh (regions: {', '.join(regions)})",
                    )
                )
    return problems


class InitialFields(Component):
    """Start values of named species (``[initial.fields]``), replacing their components' ones.

    Args:
        cfg: The case.
        species: All species of the model (the other components').
    """

    name = "initial_fields"

    def __init__(self, cfg: CaseConfig, species: Sequence[Species]) -> None:
        self.values, _ = _convert(cfg, species)

    def initial(self) -> Mapping[str, Initial]:
        """The converted values: numbers, or a value in one region."""
        return dict(self.values)
