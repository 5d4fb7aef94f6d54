r"""Therapy layer: plasma PK, tissue transport, target binding and response of targeted drugs.

For each treatment (drug j, catalog :mod:`tumorpde.drugs`, plasma curve :mod:`tumorpde.pk`) the
layer adds, through the hooks of :func:`tumorpde.forms.build_forms`:

- free tissue drug :math:`A_j` (nM):
  :math:`\partial_t A = \nabla\cdot(D_j\nabla A) + P_j(x,u)\,S_v(x)\,[f_u C_{pl}(t) - r(x) A/\phi]
  - k_{cl} A - \text{binding}` (homogenized trans-vascular exchange without convection; Baxter &
  Jain 1989; model notes 1.6). :math:`P_j(x,u) = (1-u) P_j^{class(x)} + u P_j^{tumor}`: the
  region's vessel class (normal, fenestrated, brain = blood-brain barrier) mixed with leaky tumor
  vessels (blood-tumor barrier) by the local tumor density; r is the efflux ratio in brain;
- receptor antibodies (cetuximab, panitumumab, trastuzumab): bound receptor :math:`B` per cell,
  :math:`J = k_{on} A R - k_{off} B`, :math:`\dot B = J - k_{int} B`, the target's free
  receptor loses J and the tissue drug loses u J. Bound receptors do not signal (they count in
  the occupancy denominator, and for HER2 lower the free receptor that drives the signal), and
  occupancy drives an Emax kill (ADCC) :math:`k_{max} occ^h/(O_{50}^h + occ^h)`;
- ligand traps (bevacizumab): complex :math:`B_L`, :math:`J = k_{on} A L - k_{off} B_L`, cleared
  at :math:`k_{cl}`; the ligand and the drug lose J;
- kinase inhibitors (lapatinib, crizotinib, galunisertib): no binding species; each target's
  signal drive is multiplied by :math:`1 - I`, with inhibitors on the same target combined as
  competitive (Loewe-additive) occupancy :math:`I = I_{max} x/(1+x)`,
  :math:`x = \sum_j (A_j/IC_{50,j})^{h}` - so a mechanism is never counted twice.

Combination regimens therefore act through distinct mechanisms (receptor removal, kinase block,
ligand sequestration, ADCC) that multiply, never through two empirical Emax terms on one target.
The plasma concentration is evaluated in closed form (or from the dense ODE solution) at
:math:`t_{n+1}`; dose starts and infusion ends are time-step breakpoints.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import ufl

import tumorpde.backend  # noqa: F401  (before any dolfinx import)
from tumorpde import physics
from tumorpde.config import CaseConfig
from tumorpde.drugs import DrugSpec, load_drug
from tumorpde.forms import TermContext
from tumorpde.pk import PlasmaPK, schedule
from tumorpde.state import State

__all__ = ["Therapy"]


@cache
def _spec(name: str) -> DrugSpec:
    return load_drug(name)


class Therapy:
    """The drugs of a case: plasma curves, per-region permeability fields and the form hook.

    Args:
        cfg: The case (with ``[therapy]``).
        state: The run's state (drug species already created).
    """

    def __init__(self, cfg: CaseConfig, state: State) -> None:
        from dolfinx import fem

        assert cfg.therapy is not None
        self.cfg = cfg
        self.state = state
        self.treatments = list(cfg.therapy.treatments)
        self.specs = [_spec(t.drug) for t in self.treatments]
        msh = state.domain.mesh
        self.plasma: dict[str, PlasmaPK] = {}
        self.cpl: dict[str, Any] = {}
        for t, spec in zip(self.treatments, self.specs, strict=True):
            doses = schedule(t.regimen, cfg.therapy.patient, cfg.time.t_end)
            self.plasma[spec.name] = PlasmaPK(spec.pk, doses, spec.molecular_weight)
            self.cpl[spec.name] = fem.Constant(msh, 0.0)
        Q = fem.functionspace(msh, ("DG", 0))
        self.perm: dict[str, Any] = {}
        self.efflux: dict[str, Any] = {}
        barrier = self._barrier_by_cell()
        for spec in self.specs:
            by_class = spec.permeability.by_class()
            p = fem.Function(Q, name=f"{spec.name}_permeability")
            r = fem.Function(Q, name=f"{spec.name}_efflux")
            p.x.array[:] = [by_class[b] for b in barrier]
            r.x.array[:] = [
                spec.permeability.brain_efflux_ratio if b == "brain" else 1.0 for b in barrier
            ]
            p.x.scatter_forward()
            r.x.scatter_forward()
            self.perm[spec.name], self.efflux[spec.name] = p, r
        # Exchange coefficients as single cell-wise fields, so that every term is linear in one
        # cell-wise coefficient (lets the pointwise assembler average them to the nodes exactly).
        sv = state.coefficients["vessels.surface_density"]
        self.exchange: dict[str, dict[str, Any]] = {}
        for spec in self.specs:
            p, r = self.perm[spec.name], self.efflux[spec.name]
            fields = {}
            for key, values in (
                ("PS", p.x.array * sv.x.array),
                ("PSr", p.x.array * sv.x.array * r.x.array),
                ("S", sv.x.array.copy()),
                ("Sr", sv.x.array * r.x.array),
            ):
                f = fem.Function(Q, name=f"{spec.name}_{key}")
                f.x.array[:] = values
                fields[key] = f
            self.exchange[spec.name] = fields
        self.set_time(0.0)

    # ------------------------------------------------------------------ set-up
    def _barrier_by_cell(self) -> list[str]:
        """Vessel class of every local cell (``vessels.barrier``, per region)."""
        dom, cfg = self.state.domain, self.cfg
        msh = dom.mesh
        n = msh.topology.index_map(3).size_local + msh.topology.index_map(3).num_ghosts
        out = [cfg.vessels.barrier] * n
        for region, values in cfg.regions.items():
            b = values.get("vessels.barrier")
            if b is None:
                continue
            for c in dom.cell_tags.find(dom.regions[region]):
                out[c] = str(b)
        return out

    def breakpoints(self) -> list[float]:
        """Dose starts and infusion ends of every drug (h)."""
        pts: set[float] = set()
        for pk in self.plasma.values():
            pts.update(float(x) for x in pk.breakpoints())
        return sorted(pts)

    def set_time(self, t: float) -> None:
        """Set the plasma concentrations to their values at ``t`` (called with t_{n+1})."""
        for name, pk in self.plasma.items():
            self.cpl[name].value = float(pk.concentration_nM(t))

    # ------------------------------------------------------------------ forms hook
    def _inhibition(self, ctx: TermContext, target: str) -> Any | None:
        """Combined kinase block on ``target`` (Loewe-additive competitive occupancy)."""
        x, imax = None, 0.0
        for spec in self.specs:
            if spec.mechanism != "kinase_inhibitor" or target not in spec.potency:
                continue
            pot = spec.potency[target]
            term = (ufl.max_value(ctx.f(spec.name), 0.0) / pot.ic50) ** pot.hill
            x = term if x is None else x + term
            imax = max(imax, pot.imax)
        if x is None:
            return None
        return imax * x / (1 + x)

    def hook(self, ctx: TermContext, phase: str) -> None:
        """Add drug modifiers (``"modifiers"``) or drug species terms (``"terms"``)."""
        if phase == "modifiers":
            self._modifiers(ctx)
        else:
            self._terms(ctx)

    def _modifiers(self, ctx: TermContext) -> None:
        u = ctx.f("tumor")
        targets = {t for s in self.specs for t in s.targets}
        self.blocks: dict[str, Any] = {}
        for target in sorted(targets):
            block = self._inhibition(ctx, target)
            if block is not None:
                ctx.signal_block.setdefault(target, []).append(1 - block)
                self.blocks[target] = block
        for spec in self.specs:
            if spec.mechanism != "receptor_antibody":
                continue
            p = spec.targets[0]
            A, B, R = ctx.f(spec.name), ctx.f(f"{spec.name}_bound"), ctx.f(p)
            assert spec.binding is not None
            J = physics.binding_rate(A, R, B, spec.binding.k_on, spec.binding.k_off)
            ctx.receptor_loss.setdefault(p, []).append(J)
            ctx.receptor_extra.setdefault(p, []).append(B)
            if spec.response is not None:
                occ = self.occupancy_expr(ctx, spec)
                r = spec.response
                ctx.kill.append(r.kill_max * physics.hill(occ, r.half_occupancy, r.hill))
        del u

    def occupancy_expr(self, ctx: TermContext, spec: DrugSpec) -> Any:
        """Drug occupancy of its receptor target, B / (R + C + I + B)."""
        p = spec.targets[0]
        pw = self.cfg.pathways[p]
        B = ctx.f(f"{spec.name}_bound")
        total = ctx.f(p) + B
        if pw.ligand is not None:
            total = total + ctx.f(f"{p}_complex")
            if pw.receptor.internalized:
                total = total + ctx.f(f"{p}_internal")
        return B / (total + 1e-30)

    def _terms(self, ctx: TermContext) -> None:
        u = ctx.f("tumor")
        for spec in self.specs:
            A = ctx.f(spec.name)
            # P S_v (f_u C_pl - r A / phi) with P = (1 - u) P_class(x) + u P_tumor, expanded so
            # that each term carries one cell-wise coefficient (PS = P_class S_v, Sr = S_v r, ...)
            e = self.exchange[spec.name]
            cp = spec.plasma_unbound_fraction * self.cpl[spec.name]
            a_phi = A / spec.available_volume_fraction
            pt = spec.permeability.tumor
            exchange = (1 - u) * (e["PS"] * cp - e["PSr"] * a_phi) + u * pt * (
                e["S"] * cp - e["Sr"] * a_phi
            )
            ctx.flux[spec.name] = physics.diffusive_flux(A, spec.diffusivity)
            ctx.add(spec.name, exchange - spec.tissue_clearance * A)
            if spec.mechanism == "receptor_antibody":
                assert spec.binding is not None
                p = spec.targets[0]
                B = ctx.f(f"{spec.name}_bound")
                J = physics.binding_rate(A, ctx.f(p), B, spec.binding.k_on, spec.binding.k_off)
                k_int = spec.binding.internalization or 0.0
                ctx.add(spec.name, -u * J)
                ctx.add(f"{spec.name}_bound", J - k_int * B)
            elif spec.mechanism == "ligand_trap":
                assert spec.binding is not None
                pw = self.cfg.pathways[spec.targets[0]]
                assert pw.ligand is not None
                L = ctx.f(pw.ligand.name)
                Bl = ctx.f(f"{spec.name}_complex")
                J = physics.binding_rate(A, L, Bl, spec.binding.k_on, spec.binding.k_off)
                ctx.add(spec.name, -J)
                ctx.add(pw.ligand.name, -J)
                ctx.add(f"{spec.name}_complex", J - spec.tissue_clearance * Bl)
                ctx.balance.setdefault(pw.ligand.name, {})["trap"] = J

    # ------------------------------------------------------------------ outputs
    def derived_expressions(self, ctx: TermContext) -> dict[str, Any]:
        """UFL expressions of the drug-response fields (see :func:`model.derived_field_names`)."""
        out: dict[str, Any] = {}
        for spec in self.specs:
            if spec.mechanism == "receptor_antibody":
                out[f"{spec.name}_occupancy"] = self.occupancy_expr(ctx, spec)
            elif spec.mechanism == "kinase_inhibitor":
                x = None
                for target, pot in spec.potency.items():
                    del target
                    term = pot.imax * physics.hill(ctx.f(spec.name), pot.ic50, max(pot.hill, 1.0))
                    x = term if x is None else ufl.max_value(x, term)
                out[f"{spec.name}_inhibition"] = x
            else:
                pw = self.cfg.pathways[spec.targets[0]]
                assert pw.ligand is not None
                Bl = ctx.f(f"{spec.name}_complex")
                out[f"{spec.name}_trapped"] = Bl / (Bl + ctx.f(pw.ligand.name) + 1e-30)
        out["kill_rate"] = ctx.rates["kill"]
        out["net_growth_rate"] = ctx.rates["net_growth"]
        return out

    def qoi_integrands(self, ctx: TermContext, dxl: Any) -> dict[str, tuple[Any, Any]]:
        """Per drug and region: mean free drug, and occupancy/inhibition/trapped fraction."""
        dom = self.state.domain
        msh = dom.mesh
        dxr = ufl.Measure(
            "dx",
            domain=msh,
            subdomain_data=dom.cell_tags,
            metadata={"quadrature_rule": "vertex", "quadrature_degree": 1},
        )
        u = ctx.f("tumor")
        derived = self.derived_expressions(ctx)
        from dolfinx import fem

        one = fem.Constant(msh, 1.0)
        out: dict[str, tuple[Any, Any]] = {}
        for spec in self.specs:
            A = ctx.f(spec.name)
            out[f"{spec.name}_mean_nM"] = (A * dxl, one * dxl)
            eff = next(k for k in derived if k.startswith(spec.name + "_"))
            for region, tag in dom.regions.items():
                out[f"{spec.name}_nM_{region}"] = (A * dxr(tag), one * dxr(tag))
                out[f"{eff}_{region}"] = (u * derived[eff] * dxr(tag), u * dxr(tag))
        out["mean_kill_rate"] = (u * derived["kill_rate"] * dxl, u * dxl)
        return out

    def plasma_values(self, t: float) -> dict[str, float]:
        """Plasma concentrations (nM) at ``t``."""
        return {f"plasma_{n}_nM": float(pk.concentration_nM(t)) for n, pk in self.plasma.items()}


def interpolate_expression(expr: Any, target: Any) -> None:
    """Interpolate a UFL expression into a P1 Function at its nodes (collective)."""
    from dolfinx import fem

    V = target.function_space
    e = fem.Expression(expr, V.element.interpolation_points)
    target.interpolate(e)
    target.x.scatter_forward()


def nodal_values(f: Any) -> np.ndarray:
    """Owned nodal values of a P1 Function."""
    n = f.function_space.dofmap.index_map.size_local
    return f.x.array[:n]
