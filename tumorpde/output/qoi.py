r"""QoIs: the scalar quantities of interest of a run, as MPI-reduced integrals and extrema.

The integrals are declared by the model's components (tumor burden :math:`\int u\,dx`, per
ligand its mean, per pathway the cell-weighted receptor occupancy and mean signal, module means,
drug levels and responses by region); this module compiles them, adds the extrema of the species,
each ligand's global balance residual and, per ``[[boundary]]`` condition, the integrated outward
flux through the boundary (``flux_<species>_<boundary>``). All functions are collective over the
mesh communicator and return the same value on every rank.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np
import ufl
from dolfinx import fem

from tumorpde.fem.jit import batch_compiled
from tumorpde.model.boundary import flux_column

if TYPE_CHECKING:
    from tumorpde.fem import Forms, State
    from tumorpde.model import Model

__all__ = ["QoIs", "global_max", "global_min"]


def global_min(f: fem.Function) -> float:
    """Minimum nodal value of a Function over all ranks (owned dofs only)."""
    from mpi4py import MPI

    n = f.function_space.dofmap.index_map.size_local * f.function_space.dofmap.index_map_bs
    local = f.x.array[:n].min() if n else np.inf
    return float(f.function_space.mesh.comm.allreduce(local, op=MPI.MIN))


def global_max(f: fem.Function) -> float:
    """Maximum nodal value of a Function over all ranks (owned dofs only)."""
    from mpi4py import MPI

    n = f.function_space.dofmap.index_map.size_local * f.function_space.dofmap.index_map_bs
    local = f.x.array[:n].max() if n else -np.inf
    return float(f.function_space.mesh.comm.allreduce(local, op=MPI.MAX))


class QoIs:
    """Compiled integrals of a run's quantities of interest.

    The integral QoIs are those the model's components declare (:class:`tumorpde.model.QoI`);
    this class adds the maximum of the tumor density, the minimum of every species and each
    ligand's global balance residual.

    Args:
        model: The compiled case.
        state: The run's state (:class:`tumorpde.fem.state.State`).
        forms: The run's forms (:class:`tumorpde.fem.forms.Forms`), for the lumped measure, the
            model's term context and the per-ligand balance integrands.
    """

    def __init__(self, model: Model, state: State, forms: Forms) -> None:
        self.state = state
        self.fields = state.fields
        dom = state.domain
        msh = dom.mesh
        self.comm = msh.comm
        dxl = forms.dx_lumped
        dxr = ufl.Measure(
            "dx",
            domain=msh,
            subdomain_data=dom.cell_tags,
            metadata={"quadrature_rule": "vertex", "quadrature_degree": 1},
        )
        # the UFL integrals first, then all compiled into one C module (tumorpde.fem.jit)
        ratios = {}
        for q in model.qois(forms.context):
            dx = dxl if q.region is None else dxr(dom.regions[q.region])
            den = q.denominator * dx if q.denominator is not None else None
            ratios[q.name] = (q.numerator * dx, den)
        # Global balance of each ligand: storage - production + decay + binding (+ matrix).
        balance = {L: {k: v * dxl for k, v in terms.items()} for L, terms in forms.balance.items()}
        # outward fluxes through named boundaries: imposed ones (robin, flux) as integrals of
        # q.n; at fixed values the reaction flux, minus the sum of the unconstrained residual over
        # the constrained nodes (all other rows vanish, and all rows sum to storage - sources
        # + sinks, which conservation equates to minus the outflow)
        ds = forms.ds
        fluxes = {}
        for (s, b), qn in forms.boundary_flux.items():
            assert ds is not None
            fluxes[flux_column(s, b)] = qn * ds(dom.boundaries[b])
        batch = [f for pair in ratios.values() for f in pair]
        batch += [f for terms in balance.values() for f in terms.values()]
        batch += [*fluxes.values(), *(forms.residuals[f.index] for f in forms.fixed)]
        with batch_compiled(batch, self.comm):
            self._ratios: dict[str, tuple[fem.Form, fem.Form | None]] = {
                k: (fem.form(a), None if b is None else fem.form(b)) for k, (a, b) in ratios.items()
            }
            self._balance = {
                L: {k: fem.form(a) for k, a in terms.items()} for L, terms in balance.items()
            }
            self._flux: dict[str, fem.Form] = {k: fem.form(a) for k, a in fluxes.items()}
            self._fixed = [
                (flux_column(f.species, f.boundary), fem.form(forms.residuals[f.index]), f.dofs)
                for f in forms.fixed
            ]
        self.last_balance: dict[str, float] = dict.fromkeys(self.balance_columns(), 0.0)
        self.last_fixed: dict[str, float] = {c: 0.0 for c, _, _ in self._fixed}
        self._boundary_sinks = {
            L: {b: col for col, (s, b) in _flux_keys(forms).items() if s == L}
            for L in self._balance
        }

    def _sum(self, form: fem.Form) -> float:
        from mpi4py import MPI

        return float(self.comm.allreduce(fem.assemble_scalar(form), op=MPI.SUM))

    def flux_columns(self) -> list[str]:
        """Column names of the boundary fluxes."""
        return list(self._flux) + [c for c, _, _ in self._fixed]

    def balance_columns(self) -> list[str]:
        """Column names of the balance residuals."""
        return [f"balance_{L}" for L in self._balance]

    def columns(self) -> list[str]:
        """All QoI names, in CSV order."""
        return (
            list(self._ratios)
            + ["max_tumor"]
            + [f"min_{s}" for s in self.state.names]
            + self.balance_columns()
            + self.flux_columns()
        )

    def update_balance(self) -> dict[str, float]:
        r"""Evaluate each ligand's global balance for the step just solved (before acceptance).

        The residual is :math:`|S - P + \sum_k K_k| / \max(|S|, |P|, |K_k|)` with S the discrete
        storage rate :math:`\int \partial_t^\Delta L`, P production and K_k the sinks (decay,
        receptor binding, matrix binding, drug trapping); no-flux boundaries make diffusion
        integrate to zero. Outward fluxes through ``[[boundary]]`` conditions count as sinks.
        It measures how well the solved step conserves each ligand.
        """
        from mpi4py import MPI

        from dolfinx import la

        for col, form, dofs in self._fixed:
            vec = fem.assemble_vector(form)
            vec.scatter_reverse(la.InsertMode.add)
            local = float(vec.array[dofs].sum())
            self.last_fixed[col] = -float(self.comm.allreduce(local, op=MPI.SUM))
        out = {}
        for L, terms in self._balance.items():
            vals = {k: self._sum(fm) for k, fm in terms.items()}
            for b, col in self._boundary_sinks[L].items():
                vals[f"boundary_{b}"] = self.boundary_flux(col)
            resid = vals["storage"] - vals["production"]
            resid += sum(v for k, v in vals.items() if k not in ("storage", "production"))
            scale = max(abs(v) for v in vals.values())
            out[f"balance_{L}"] = abs(resid) / scale if scale > 0 else 0.0
        self.last_balance = out
        return out

    def ratio(self, key: str) -> float:
        """One integral QoI (collective)."""
        num, den = self._ratios[key]
        n = self._sum(num)
        if den is None:
            return n
        d = self._sum(den)
        return n / d if d > 0 else 0.0

    def evaluate(self) -> dict[str, float]:
        """Current values (identical on all ranks)."""
        out = {k: self.ratio(k) for k in self._ratios}
        out["max_tumor"] = global_max(self.fields["tumor"])
        for s in self.state.names:
            out[f"min_{s}"] = global_min(self.fields[s])
        out.update(self.last_balance)
        for col in self.flux_columns():
            out[col] = self.boundary_flux(col)
        return out

    def boundary_flux(self, column: str) -> float:
        """Integrated outward flux of a ``flux_<species>_<boundary>`` column (collective).

        Imposed fluxes are evaluated now; at fixed values it is the reaction flux of the last
        step solved (:meth:`update_balance`; 0 before the first step).
        """
        if column in self._flux:
            return self._sum(self._flux[column])
        return self.last_fixed[column]


def _flux_keys(forms: Forms) -> dict[str, tuple[str, str]]:
    """Every boundary-flux column with its (species, boundary)."""
    keys = [*forms.boundary_flux, *((f.species, f.boundary) for f in forms.fixed)]
    return {flux_column(s, b): (s, b) for s, b in keys}
