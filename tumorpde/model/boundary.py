r"""Boundary component: conditions on named mesh boundaries (``[[boundary]]``).

Every species s with flux :math:`\mathbf q_s` (so that :math:`\partial_t w_s + \nabla\cdot
\mathbf q_s = r_s`) has, without a condition, a no-flux boundary :math:`\mathbf q_s\cdot\mathbf n
= 0`. Multiplying by a test function v and integrating by parts gives the weak residual

.. math::

    \int (\partial_t w_s - r_s)\,v\,dx - \int \mathbf q_s\cdot\nabla v\,dx
    + \int_{\partial\Omega} (\mathbf q_s\cdot\mathbf n)\,v\,ds = 0,

so a condition on the outward normal flux enters as the boundary integral
:math:`\int_{\Gamma} (\mathbf q_s\cdot\mathbf n)\,v\,ds` over the named boundary
:math:`\Gamma` (a natural condition):

- ``robin`` (exchange through a membrane of permeability P with a reservoir at
  :math:`C_{ext}(t)`, the solute flux of Kedem & Katchalsky 1958, Biochim. Biophys. Acta
  27:229, without its convective term; e.g. the brain's CSF sink on the ventricle wall with
  :math:`C_{ext} = 0`): :math:`\mathbf q\cdot\mathbf n = P\,(C - C_{ext}(t))`;
- ``flux`` (a prescribed outward flux density, negative for a supply):
  :math:`\mathbf q\cdot\mathbf n = j(t)`;
- ``value`` (an essential condition): :math:`C = C_{ext}(t)` on the nodes of :math:`\Gamma`;
  the fem layer replaces those rows of the Newton system.

:math:`C_{ext}` and j are constants at fixed values, time constants for tables (evaluated at
:math:`t_{n+1}`, like the reactions) and, for ``"plasma:<drug>"``, the drug's plasma time
constant (:class:`tumorpde.model.Drug`). This module only writes UFL into the
:class:`~tumorpde.model.base.Context` channels ``boundary_flux`` and ``fixed``; measures, facet
tags and constrained rows are the fem layer's (:mod:`tumorpde.fem.forms`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from tumorpde.model.base import Component, Context

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig
    from tumorpde.config.boundary import BoundaryCondition
    from tumorpde.model.species import Species

__all__ = ["BoundaryConditions", "boundary_problems", "flux_column"]


def flux_column(species: str, boundary: str) -> str:
    """QoI column of the integrated outward flux of ``species`` through ``boundary``."""
    return f"flux_{species}_{boundary}"


class BoundaryConditions(Component):
    """The ``[[boundary]]`` conditions of a case (no species of its own).

    Args:
        cfg: The case (its ``boundary`` list, in internal units).
    """

    name = "boundary"

    def __init__(self, cfg: CaseConfig) -> None:
        self.conditions: list[BoundaryCondition] = list(cfg.boundary)

    def _key(self, i: int) -> str:
        """Constant key of condition i's value (its drug's plasma key for ``plasma:``)."""
        value = self.conditions[i].value
        if value.plasma is not None:
            return f"{value.plasma}.plasma"
        return f"boundary.{i}.value"

    def constants(self) -> Mapping[str, float]:
        """Permeabilities and fixed external values / fluxes."""
        out: dict[str, float] = {}
        for i, bc in enumerate(self.conditions):
            if bc.permeability is not None:
                out[f"boundary.{i}.permeability"] = bc.permeability
            if bc.value.value is not None:
                out[self._key(i)] = bc.value.value
        return out

    def time_constants(self) -> Mapping[str, Callable[[float], float]]:
        """Tabulated external values / fluxes (piecewise linear in t)."""
        return {self._key(i): bc.value.at for i, bc in enumerate(self.conditions) if bc.value.table}

    def breakpoints(self) -> Sequence[float]:
        """The tables' times: the stepper hits the kinks of the boundary curves."""
        return [t for bc in self.conditions for t in bc.value.breakpoints()]

    def terms(self, ctx: Context) -> None:
        """Outward fluxes (robin, flux) and fixed values on the named boundaries."""
        for i, bc in enumerate(self.conditions):
            ext = ctx.const(self._key(i))
            if bc.kind == "value":
                ctx.fix(bc.species, bc.boundary, self._key(i))
            elif bc.kind == "robin":
                perm = ctx.const(f"boundary.{i}.permeability")
                ctx.add_boundary_flux(bc.species, bc.boundary, perm * (ctx.f(bc.species) - ext))
            else:
                ctx.add_boundary_flux(bc.species, bc.boundary, ext)


def boundary_problems(cfg: CaseConfig, species: Sequence[Species]) -> list[tuple[str, str]]:
    """``[[boundary]]`` species against the model's: known and transported.

    Args:
        cfg: The case.
        species: The model's species.

    Returns:
        ``(field path, message)`` pairs; empty when every condition names a transported species.
    """
    kinds = {s.name: s.kind for s in species}
    transported = [s.name for s in species if s.kind != "ode"]
    problems = []
    for i, bc in enumerate(cfg.boundary):
        where = f"boundary.{i}.species"
        if bc.species not in kinds:
            problems.append(
                (where, f"unknown species {bc.species!r}; this case has: {', '.join(kinds)}")
            )
        elif kinds[bc.species] == "ode":
            problems.append(
                (
                    where,
                    f"{bc.species} is a pointwise (ODE) species without transport, so it has no "
                    f"boundary flux; transported species: {', '.join(transported)}",
                )
            )
    return problems
