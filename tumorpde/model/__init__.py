"""Model layer: what a case solves, compiled once into components (pure: UFL, no DOLFINx).

:func:`build_model` turns a validated :class:`~tumorpde.config.CaseConfig` into a
:class:`Model`: the tumor, one component per pathway, the optional modules (EMT, oxygen, bone)
and one component per drug. Every later layer (state, forms, QoIs, outputs, simulation) walks
``model.components`` instead of re-reading the case.

Example:
    >>> from tumorpde import load_config
    >>> from tumorpde.model import build_model
    >>> model = build_model(load_config("benchmarks/cases/default.toml"))  # doctest: +SKIP
    >>> [s.name for s in model.species]                                   # doctest: +SKIP
    ['tumor', 'EGF', 'EGFR', 'EGFR_complex']

Adding a module means one component file (a :class:`Component` subclass) plus its schema class
in :mod:`tumorpde.config.schema`, and one line in :func:`build_model`; see ``docs/components.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tumorpde.model.base import (
    CellField,
    Component,
    Context,
    Initial,
    Modifiers,
    QoI,
    Symbols,
    region_field,
)
from tumorpde.model.bone import Bone
from tumorpde.model.boundary import BoundaryConditions, boundary_problems
from tumorpde.model.drug import Drug
from tumorpde.model.emt import EMT
from tumorpde.model.initial import InitialFields, initial_field_problems
from tumorpde.model.oxygen import Oxygen
from tumorpde.model.pathway import Pathway
from tumorpde.model.species import DRUG_EFFECT, FieldNames, Species
from tumorpde.model.tumor import Tumor
from tumorpde.model.vessels import Vessels

if TYPE_CHECKING:
    from ufl.core.expr import Expr

    from tumorpde.config import CaseConfig

__all__ = [
    "DRUG_EFFECT",
    "EMT",
    "Bone",
    "BoundaryConditions",
    "CellField",
    "Component",
    "Context",
    "Drug",
    "FieldNames",
    "Initial",
    "Model",
    "Modifiers",
    "Oxygen",
    "Pathway",
    "QoI",
    "Species",
    "Symbols",
    "Tumor",
    "build_model",
    "region_field",
]


@dataclass
class Model:
    """A case compiled into components.

    Attributes:
        name: The case name.
        components: In equation order: tumor, pathways, EMT, oxygen, bone, drugs.
    """

    name: str
    components: list[Component]

    @property
    def species(self) -> list[Species]:
        """The unknowns in solver order."""
        return [s for c in self.components for s in c.species()]

    @property
    def names(self) -> list[str]:
        """Species names in solver order."""
        return [s.name for s in self.species]

    def derived_names(self) -> list[str]:
        """Derived output fields (occupancies, drug responses, kill and net growth rate)."""
        tumor = [c for c in self.components if isinstance(c, Tumor)]
        rest = [c for c in self.components if not isinstance(c, Tumor)]
        return [n for c in rest + tumor for n in c.derived_names()]

    def output_names(self) -> list[str]:
        """Every field a run can write: the species and the derived fields."""
        return self.names + self.derived_names()

    def initial(self) -> dict[str, Initial]:
        """Initial value of every species (missing ones start at 0)."""
        out: dict[str, Initial] = {}
        for c in self.components:
            out.update(c.initial())
        return out

    def constants(self) -> dict[str, float]:
        """Fixed scalar constants of all components."""
        out: dict[str, float] = {}
        for c in self.components:
            out.update(c.constants())
        return out

    def time_constants(self) -> dict[str, Callable[[float], float]]:
        """Time-dependent scalar constants (plasma levels) of all components."""
        out: dict[str, Callable[[float], float]] = {}
        for c in self.components:
            out.update(c.time_constants())
        return out

    def cell_fields(self) -> list[CellField]:
        """Cell-wise coefficients of all components, in declaration order."""
        return [f for c in self.components for f in c.cell_fields()]

    def breakpoints(self) -> list[float]:
        """Times every run must hit exactly (sorted, unique)."""
        return sorted({float(b) for c in self.components for b in c.breakpoints()})

    def build(self, symbols: Symbols) -> Context:
        """Run the modifiers pass, then the terms pass, over all components."""
        ctx = Context(symbols)
        for c in self.components:
            c.modifiers(ctx)
        for c in self.components:
            c.terms(ctx)
        return ctx

    def qois(self, ctx: Context) -> list[QoI]:
        """Integral QoIs of all components."""
        return [q for c in self.components for q in c.qois(ctx)]

    def derived(self, ctx: Context) -> dict[str, Expr]:
        """Derived-field expressions, in :meth:`derived_names` order."""
        exprs: dict[str, Expr] = {}
        for c in self.components:
            exprs.update(c.derived(ctx))
        return {n: exprs[n] for n in self.derived_names()}

    def scalar_qois(self, t: float) -> dict[str, float]:
        """Non-integral QoIs at ``t`` (plasma levels and AUCs)."""
        out: dict[str, float] = {}
        for c in self.components:
            out.update(c.scalar_qois(t))
        return out

    def exposures(self, regions: Sequence[str]) -> dict[str, str]:
        """Time integrals to accumulate: column -> integral QoI."""
        out: dict[str, str] = {}
        for c in self.components:
            out.update(c.exposures(regions))
        return out

    def pathways(self) -> list[Pathway]:
        """The pathway components."""
        return [c for c in self.components if isinstance(c, Pathway)]

    def picture_fields(self) -> dict[str, str]:
        """Fields of the summary picture with their labels.

        The tumor, then the first ligand pathway's ligand and occupancy, or else every signal.
        """
        out = {FieldNames.tumor: "tumor density u"}
        pathways = self.pathways()
        with_ligand = [p for p in pathways if p.ligand is not None]
        if with_ligand:
            p = with_ligand[0]
            assert p.ligand is not None
            out[p.ligand] = f"{p.ligand} [nM]"
            out[FieldNames.occupancy(p.name)] = f"{p.name} occupancy"
        else:
            for p in pathways:
                if p.signal:
                    out[FieldNames.signal(p.name)] = f"{p.name} signal"
        return out

    def summary(self) -> dict[str, Any]:
        """What the manifest records about the model."""
        return {
            "components": [f"{type(c).__name__}:{c.name}" for c in self.components],
            "receptor_total_nM": {p.name: p.receptor_total for p in self.pathways()},
        }


def build_model(
    cfg: CaseConfig, extra: Sequence[Component] = (), *, source: str | None = None
) -> Model:
    """Compile a validated case into its components.

    Args:
        cfg: The case (internal units).
        extra: User components appended after the built-in ones (see ``docs/components.md``).
        source: The case file, named in errors (default: the case name).

    Returns:
        The model.

    Raises:
        ConfigError: If ``output.fields`` names a field the case does not have, a
            ``[[boundary]]`` condition names an unknown or untransported species, or
            ``[initial.fields]`` an unknown species or a value in the wrong unit.
    """
    treatments = list(cfg.therapy.treatments) if cfg.therapy is not None else []
    components: list[Component] = [Tumor(cfg, report_rates=bool(treatments))]
    pathways = [Pathway(cfg, p) for p in cfg.pathways]
    components += pathways
    drivers = [(p.name, p.pw.effects.emt_reversion) for p in pathways if p.drives_emt]
    if drivers:
        gain = max((p.pw.effects.emt_motility for p in pathways if p.signal), default=0.0)
        components.append(EMT(drivers, motility=gain))
    if cfg.angiogenesis is not None:
        components.append(Vessels(cfg))
    if cfg.oxygen is not None:
        components.append(Oxygen(cfg))
    if cfg.bone is not None:
        components.append(Bone(cfg))
    components += [Drug(cfg, t) for t in treatments]
    if cfg.boundary:
        components.append(BoundaryConditions(cfg))
    components += list(extra)
    if cfg.initial.fields:  # last: its start values replace the components' ones
        components.append(InitialFields(cfg, [s for c in components for s in c.species()]))
    names = [s.name for c in components for s in c.species()]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"species {clash} are declared by more than one component")
    model = Model(cfg.name, components)
    _check_output_fields(cfg, model, source or cfg.name)
    problems = boundary_problems(cfg, model.species)
    problems += initial_field_problems(cfg, model.species)
    if problems:
        from tumorpde.config import ConfigError

        raise ConfigError(source or cfg.name, problems)
    return model


def _check_output_fields(cfg: CaseConfig, model: Model, source: str) -> None:
    if cfg.output.fields is None:
        return
    from tumorpde.config import ConfigError

    known = model.output_names()
    unknown = [f for f in cfg.output.fields if f not in known]
    if unknown:
        raise ConfigError(
            source,
            [("output.fields", f"unknown field(s) {unknown}; this case has: {', '.join(known)}")],
        )
