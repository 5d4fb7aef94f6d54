"""The component protocol and the typed channels through which components act on each other.

A case compiles into a list of components (:func:`tumorpde.model.build_model`). Each one
declares its species, initial values, constants and cell-wise coefficients, and writes pure-UFL
terms into a :class:`Context`. Components never create DOLFINx objects: the fem layer creates
the Functions and Constants they name and hands them over as UFL symbols
(:class:`Symbols`), so this layer imports UFL but not DOLFINx.

Building the residuals is two passes over the components:

1. ``modifiers(ctx)``: effects on *other* components' equations go into the typed
   :class:`Modifiers` channels (a kinase block on a pathway's signal, receptor loss to a drug,
   a growth factor or a kill rate on the tumor, a ligand source, the hypoxia field);
2. ``terms(ctx)``: each component adds the reaction rates and fluxes of its own species,
   reading the modifiers others left for it.

Then ``qois(ctx)`` and ``derived(ctx)`` give the integrals and output fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from ufl.core.expr import Expr

from tumorpde.model.species import Species

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig

__all__ = [
    "CellField",
    "Component",
    "Context",
    "Initial",
    "InitialSum",
    "Modifiers",
    "QoI",
    "RegionInitial",
    "Symbols",
    "region_field",
]


@dataclass(frozen=True)
class RegionInitial:
    """Initial value ``value`` in a tagged mesh region (lumped L2 projection of its indicator).

    Attributes:
        region: Region name of the mesh.
        value: Value inside the region.
    """

    region: str
    value: float


@dataclass(frozen=True)
class InitialSum:
    """Several initial values added node by node, then capped.

    Attributes:
        parts: The summands (each an :data:`Initial`).
        cap: Upper bound of the sum (None: none).
    """

    parts: tuple[Any, ...]
    cap: float | None = None


#: An initial value: a number, a function of the node coordinates (shape (3, n)) -> (n,), a
#: value in a region, or a sum of those.
Initial = float | Callable[[np.ndarray], np.ndarray] | RegionInitial | InitialSum


@dataclass(frozen=True)
class CellField:
    """A cell-wise (DG0) coefficient a component needs, by region.

    Attributes:
        key: Dotted name (``"tumor.motility"``, ``"trastuzumab.PS"``).
        default: Value in cells of regions not listed.
        by_region: Value per region name.
    """

    key: str
    default: float
    by_region: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class QoI:
    r"""An integral quantity :math:`\int n\,dx / \int d\,dx` (or :math:`\int n\,dx` without d).

    Integrals use vertex quadrature (the lumped measure of the residuals); ``region`` restricts
    both to one tissue region.
    """

    name: str
    numerator: Expr
    denominator: Expr | None = None
    region: str | None = None


@dataclass(frozen=True)
class Symbols:
    """The UFL handles of a discretized case (made by the fem layer).

    Attributes:
        fields: Current value of every species (the unknowns).
        constants: Scalar constants by key (``dt``, ``t``, model constants, plasma levels).
        coefficients: Cell-wise coefficients by key (:class:`CellField`).
        regions: Tissue-region names of the mesh.
        boundaries: Boundary names of the mesh.
    """

    fields: Mapping[str, Expr]
    constants: Mapping[str, Expr]
    coefficients: Mapping[str, Expr]
    regions: Sequence[str] = ()
    boundaries: Sequence[str] = ()


@dataclass
class Modifiers:
    """Effects of components on other components' equations (filled in the modifiers pass).

    Attributes:
        hypoxia: Hypoxia fraction h(O) in [0, 1] (oxygen), or None.
        kinase: Per target pathway, competitive inhibitor terms ``(x_j, I_max,j)`` with
            :math:`x_j = (A_j/IC_{50,j})^{h_j}`; the pathway combines them Loewe-additively.
        receptor_loss: Per pathway, extra loss rates of its free receptor (drug binding).
        extra_receptor: Per pathway, extra receptor states (drug-bound) in the occupancy total.
        signaling_receptor: Per ligand-less pathway, drug-bound receptors weighted by the
            signal they keep (partial antibody block), added to the free receptor in the signal.
        ligand_source: Per pathway, extra sources of its ligand (bone matrix release).
        neutralized: Per algebraic mediator (``RANKL``), terms ``x_j = a_j/Kd_j`` of the drugs
            that neutralize it; it keeps the free share ``1/(1 + sum_j x_j)`` (competitive,
            quasi-steady binding).
        motility: Factors multiplying the tumor motility (signal and EMT gains), in order.
        chemotaxis: Chemotactic flux contributions of the tumor density.
        proliferation_signal: ``(weight, signal)`` pairs of the growth signal.
        survival_signal: ``(weight, signal)`` pairs of the survival signal.
        growth: Factors multiplying proliferation (cytostatic signals, oxygen), in order.
        growth_inhibition: Fractions E that multiply proliferation by (1 - E) (drugs).
        death: Extra death rates (1/h) that are not drug kill (hypoxia).
        kill: Drug kill rates (1/h).
        vessels: Relative vessel density m = S_v/S_v,host (dynamic vessels), or None (m = 1);
            oxygen supply and drug exchange scale with it.
        permeability: Factor on the lesion vessels' drug permeability (VEGF-raised), or None.
        crowding: Volume fractions occupied by non-tumor states (necrosis) that logistic
            growth sees: u (1 - u - sum of c).
    """

    hypoxia: Expr | None = None
    vessels: Expr | None = None
    permeability: Expr | None = None
    crowding: list[Expr] = field(default_factory=list)
    kinase: dict[str, list[tuple[Expr, float]]] = field(default_factory=dict)
    receptor_loss: dict[str, list[Expr]] = field(default_factory=dict)
    extra_receptor: dict[str, list[Expr]] = field(default_factory=dict)
    signaling_receptor: dict[str, list[Expr]] = field(default_factory=dict)
    ligand_source: dict[str, list[Expr]] = field(default_factory=dict)
    neutralized: dict[str, list[Expr]] = field(default_factory=dict)
    motility: list[Expr] = field(default_factory=list)
    chemotaxis: list[Expr] = field(default_factory=list)
    proliferation_signal: list[tuple[float, Expr]] = field(default_factory=list)
    survival_signal: list[tuple[float, Expr]] = field(default_factory=list)
    growth: list[Expr] = field(default_factory=list)
    growth_inhibition: list[Expr] = field(default_factory=list)
    death: list[Expr] = field(default_factory=list)
    kill: list[Expr] = field(default_factory=list)

    def block_kinase(self, target: str, x: Expr, imax: float) -> None:
        """Add a competitive kinase inhibitor term on ``target``'s signal."""
        self.kinase.setdefault(target, []).append((x, imax))

    def remove_receptor(self, pathway: str, rate: Expr) -> None:
        """Add a loss rate of ``pathway``'s free receptor."""
        self.receptor_loss.setdefault(pathway, []).append(rate)

    def add_receptor_state(self, pathway: str, state: Expr) -> None:
        """Count ``state`` in ``pathway``'s receptor total (occupancy denominator)."""
        self.extra_receptor.setdefault(pathway, []).append(state)

    def add_ligand_source(self, pathway: str, rate: Expr) -> None:
        """Add a source of ``pathway``'s ligand."""
        self.ligand_source.setdefault(pathway, []).append(rate)


@dataclass
class Context:
    r"""What components read (symbols, modifiers) and write (rates, fluxes, balances).

    Attributes:
        symbols: The UFL handles.
        mod: The modifier channels.
        reaction: Reaction rate per species (summed as terms are added).
        flux: Flux vector per transported species.
        balance: Per ligand, named integrands of its global balance (``production`` is the
            source, every other entry a sink; the fem layer adds ``storage``).
        rates: Per-cell rates of the tumor (``proliferation``, ``death``, ``kill``,
            ``net_growth``, ``birth``: the per-cell birth rate g that dilutes per-cell
            states), for derived fields and other components.
        boundary_flux: Per species and boundary name, the outward normal flux
            :math:`q\cdot n` imposed there (Robin exchange, prescribed flux); the fem layer
            adds :math:`\int_\Gamma (q\cdot n)\,v\,ds` to the species' residual. Boundaries
            not listed are no-flux.
        fixed: Per species and boundary name, the key of the scalar constant the species is
            fixed to there (Dirichlet condition, applied to the nodes of the boundary).
    """

    symbols: Symbols
    mod: Modifiers = field(default_factory=Modifiers)
    reaction: dict[str, Expr] = field(default_factory=dict)
    flux: dict[str, Expr] = field(default_factory=dict)
    balance: dict[str, dict[str, Expr]] = field(default_factory=dict)
    rates: dict[str, Expr] = field(default_factory=dict)
    boundary_flux: dict[str, dict[str, Expr]] = field(default_factory=dict)
    fixed: dict[str, dict[str, str]] = field(default_factory=dict)

    def f(self, name: str) -> Expr:
        """Current value of species ``name``."""
        return self.symbols.fields[name]

    def has(self, name: str) -> bool:
        """True if the case has species ``name``."""
        return name in self.symbols.fields

    def const(self, key: str) -> Expr:
        """Scalar constant ``key``."""
        return self.symbols.constants[key]

    def coef(self, key: str) -> Expr:
        """Cell-wise coefficient ``key``."""
        return self.symbols.coefficients[key]

    def add(self, name: str, rate: Expr) -> None:
        """Add a reaction rate to species ``name``."""
        self.reaction[name] = self.reaction[name] + rate if name in self.reaction else rate

    def add_boundary_flux(self, name: str, boundary: str, outward: Expr) -> None:
        """Add an outward normal flux of species ``name`` on boundary ``boundary``."""
        own = self.boundary_flux.setdefault(name, {})
        own[boundary] = own[boundary] + outward if boundary in own else outward

    def fix(self, name: str, boundary: str, key: str) -> None:
        """Fix species ``name`` on ``boundary`` to the scalar constant ``key``."""
        self.fixed.setdefault(name, {})[boundary] = key

    def add_balance(self, ligand: str, key: str, integrand: Expr) -> None:
        """Record a named term of ``ligand``'s global balance."""
        self.balance.setdefault(ligand, {})[key] = integrand


class Component:
    """Base of the model components: every hook is optional and does nothing by default.

    Subclasses set ``name`` and override what they need. All methods are pure (no DOLFINx):
    constants and coefficients are declared as numbers and used through :class:`Context`.
    """

    name: str = ""

    def species(self) -> Sequence[Species]:
        """The unknowns this component owns, in solver order."""
        return ()

    def initial(self) -> Mapping[str, Initial]:
        """Initial value of each own species."""
        return {}

    def constants(self) -> Mapping[str, float]:
        """Scalar constants (fixed for the run) by key."""
        return {}

    def time_constants(self) -> Mapping[str, Callable[[float], float]]:
        """Scalar constants that follow time (e.g. plasma levels): key -> value at t (h)."""
        return {}

    def cell_fields(self) -> Sequence[CellField]:
        """Cell-wise coefficients this component needs."""
        return ()

    def modifiers(self, ctx: Context) -> None:
        """Write effects on other components into ``ctx.mod``."""

    def terms(self, ctx: Context) -> None:
        """Add the rates and fluxes of own species to ``ctx``."""

    def qois(self, ctx: Context) -> Sequence[QoI]:
        """Integral quantities of interest."""
        return ()

    def scalar_qois(self, t: float) -> Mapping[str, float]:
        """Quantities known without integration (e.g. plasma level and AUC) at ``t``."""
        return {}

    def exposures(self, regions: Sequence[str]) -> Mapping[str, str]:
        """Time integrals to accumulate: column name -> name of the integral QoI.

        Args:
            regions: Tissue-region names of the mesh.
        """
        return {}

    def derived(self, ctx: Context) -> Mapping[str, Expr]:
        """Derived output fields as UFL expressions of the species."""
        return {}

    def derived_names(self) -> Sequence[str]:
        """Names of :meth:`derived` (known without building expressions)."""
        return ()

    def breakpoints(self) -> Sequence[float]:
        """Times (h) the stepper must hit exactly (dose starts, infusion ends)."""
        return ()


def region_field(cfg: CaseConfig, key: str) -> CellField:
    """The cell field of a per-region parameter (global value plus ``[regions]`` values).

    Args:
        cfg: The case.
        key: A dotted region key (``"tumor.motility"``, ``"pathways.EGFR.ligand.decay_rate"``).
    """
    return CellField(
        key,
        global_value(cfg, key),
        {r: float(v[key]) for r, v in cfg.regions.items() if key in v},
    )


def global_value(cfg: CaseConfig, key: str) -> float:
    """The case-wide value of a per-region parameter (e.g. ``"tumor.motility"``)."""
    obj: Any = cfg
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return float(obj)


def saturating_union(pairs: Sequence[tuple[float, Expr]]) -> Expr | None:
    r"""Saturating union :math:`1 - \prod_p (1 - w_p S_p)` of ``(w_p, S_p)`` pairs (None if empty).

    Bliss independence (probabilistic OR; Bliss 1939, Ann. Appl. Biol. 26:585-615) of pathway
    inputs converging on shared downstream nodes (MAPK, PI3K/AKT; Lowery & Yu 2012, Cancer
    Metastasis Rev. 31:479-491); the union form is a modeling choice. With weights
    :math:`w_p \in [0, 1]` and signals in [0, 1] it lies in [0, 1], never decreases when a
    pathway is added or its signal rises, and one strong (bypass) pathway alone can drive it to
    :math:`w_p` however low the others are. One pathway with :math:`w = 1` gives its signal.
    """
    if not pairs:
        return None
    rest: Expr | None = None
    for w, s in pairs:
        factor = 1 - w * s
        rest = factor if rest is None else rest * factor
    assert rest is not None
    return 1 - rest
