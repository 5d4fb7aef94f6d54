r"""Tumor component: the cell density u (0..1 of the carrying capacity).

.. math::

    \partial_t u = \nabla\cdot\big(D_u(x)\,\Pi_k m_k\,\nabla u - \textstyle\sum_p \mathbf{j}_p\big)
    + \rho_{\rm eff}\,f(u) - \delta_{\rm eff}\,u

with the motility factors :math:`m_k` (signal gains :math:`1 + m_p S_p`, EMT gain
:math:`1 + a e`) and chemotactic fluxes :math:`\mathbf{j}_p` left by the pathways,
:math:`\rho_{\rm eff} = \rho(x)\,[b_0 + (1-b_0)\bar S_{prolif}]\,\Pi_k g_k\,\Pi_j (1 - E_j)`
(growth factors :math:`g_k`: cytostatic signals, oxygen; inhibitions :math:`E_j`: drugs),
:math:`\delta_{\rm eff} = \delta(x)(1 - \bar S_{surv}) + \sum \delta_{extra} + \sum k_{kill}`,
where the proliferation and survival signals are saturating unions of the pathway signals,
:math:`\bar S = 1 - \prod_p (1 - w_p S_p)` with weights :math:`w_p \in [0, 1]`
(``effects.proliferation``, ``effects.survival``; Bliss 1939 independence,
:func:`tumorpde.model.base.saturating_union`): adding a pathway never lowers them, and a bypass
pathway can carry them alone when another is blocked; and f the logistic :math:`u(1-u)` or
Gompertz :math:`-u\ln u` law (Swanson, Alvord & Murray 2000, Cell Prolif. 33:317-329, for
the proliferation-invasion form).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import ufl
from ufl.core.expr import Expr

from tumorpde.model import laws
from tumorpde.model.base import (
    CellField,
    Component,
    Context,
    Initial,
    InitialSum,
    QoI,
    RegionInitial,
    region_field,
    saturating_union,
)
from tumorpde.model.species import FieldNames, Species

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig

__all__ = ["Tumor"]

N = FieldNames


class Tumor(Component):
    """The tumor-cell density.

    Args:
        cfg: The case.
        report_rates: Also give the kill and net-growth-rate fields and the mean kill rate
            (cases with drugs).
    """

    name = "tumor"

    def __init__(self, cfg: CaseConfig, *, report_rates: bool = False) -> None:
        self.cfg = cfg.tumor
        self.fields = [region_field(cfg, f"tumor.{k}") for k in TUMOR_REGION_KEYS]
        self.report_rates = report_rates

    def species(self) -> Sequence[Species]:
        """The tumor density."""
        return [Species(N.tumor, "pde", "1 (u = n / n_max)", "tumor")]

    def initial(self) -> Mapping[str, Initial]:
        """The seed(s): Gaussian, uniform, region or image; several are summed, capped at 1."""
        parts = [_seed_initial(seed) for _, seed in self.cfg.seed_list()]
        if len(parts) == 1 and not self.cfg.seeds:
            return {N.tumor: parts[0]}
        return {N.tumor: InitialSum(tuple(parts), cap=1.0)}

    def constants(self) -> Mapping[str, float]:
        """Signal-independent growth fraction b0."""
        return {"b0": self.cfg.signal_independent_growth}

    def cell_fields(self) -> Sequence[CellField]:
        """Motility, proliferation and death rate by region."""
        return self.fields

    def terms(self, ctx: Context) -> None:
        """Motility and chemotaxis flux, growth and death."""
        mod = ctx.mod
        u = ctx.f(N.tumor)
        D = ctx.coef("tumor.motility")
        for factor in mod.motility:
            D = D * factor
        flux = laws.diffusive_flux(u, D)
        for j in mod.chemotaxis:
            flux = flux + j
        ctx.flux[N.tumor] = flux

        rho = ctx.coef("tumor.proliferation_rate")
        s_prolif = saturating_union(mod.proliferation_signal)
        if s_prolif is not None:
            b0 = ctx.const("b0")
            rho = rho * (b0 + (1 - b0) * s_prolif)
        for g in mod.growth:
            rho = rho * g
        for inhibition in mod.growth_inhibition:
            rho = rho * (1 - inhibition)
        if self.cfg.growth_law == "logistic":
            growth = laws.logistic_growth(u, rho)
        else:
            growth = laws.gompertz_growth(u, rho)
        for occupied in mod.crowding:  # space taken by necrosis: rho u (1 - u - n)
            growth = growth - rho * u * occupied

        delta = ctx.coef("tumor.death_rate")
        s_surv = saturating_union(mod.survival_signal)
        if s_surv is not None:
            delta = delta * (1 - s_surv)
        for d in mod.death:
            delta = delta + d
        kill = sum(mod.kill[1:], mod.kill[0]) if mod.kill else None
        if kill is not None:
            delta = delta + kill
        ctx.add(N.tumor, growth - delta * u)
        per_cell = (
            (1 - u) if self.cfg.growth_law == "logistic" else -ufl.ln(ufl.max_value(u, 1e-12))
        )
        ctx.rates.update(
            {
                "proliferation": rho,
                "death": delta,
                "kill": kill if kill is not None else ctx.const("zero"),
                "net_growth": rho * per_cell - delta,
            }
        )
        # per-cell birth rate g (u grows by g u): dilutes the per-cell receptor and drug states
        birth = rho * per_cell
        for occupied in mod.crowding:
            birth = birth - rho * occupied
        ctx.rates["birth"] = birth
        if mod.crowding:  # necrosis takes room: net per-cell growth rho (1 - u - n) - delta
            ctx.rates["net_growth"] = birth - delta

    def qois(self, ctx: Context) -> Sequence[QoI]:
        """Tumor burden (mm³ at carrying capacity); with drugs the mean kill rate."""
        u = ctx.f(N.tumor)
        out = [QoI("tumor_burden_mm3", u)]
        if self.report_rates:
            out.append(QoI("mean_kill_rate", u * ctx.rates["kill"], u))
        return out

    def derived_names(self) -> Sequence[str]:
        """Kill and net growth rate (with drugs)."""
        return [N.kill_rate, N.net_growth_rate] if self.report_rates else []

    def derived(self, ctx: Context) -> Mapping[str, Expr]:
        """Local drug kill rate and net per-cell growth rate (1/h), with drugs."""
        if not self.report_rates:
            return {}
        return {N.kill_rate: ctx.rates["kill"], N.net_growth_rate: ctx.rates["net_growth"]}


def _seed_initial(seed: Any) -> Initial:
    """The :data:`Initial` of one seed spec of the case."""
    if seed.kind == "uniform":
        return float(seed.value)
    if seed.kind == "region":
        return RegionInitial(seed.region, float(seed.value))
    if seed.kind == "image":
        return _image_initial(seed)
    c = np.array(seed.center)
    r2, peak = seed.radius**2, seed.peak

    def gaussian(x: np.ndarray) -> np.ndarray:
        return peak * np.exp(-((x - c[:, None]) ** 2).sum(axis=0) / r2)

    return gaussian


def _image_initial(seed: Any) -> Initial:
    """Tumor fraction sampled from an image (read on first use), converted, clipped to [0, 1]."""
    from tumorpde.meshing.imagefield import read_scalar_image

    def sample(x: np.ndarray) -> np.ndarray:
        img = read_scalar_image(seed.path)
        v = img.sample(x, fill=np.nan)
        if seed.conversion == "adc":
            v = (seed.adc_water - v) / (seed.adc_water - seed.adc_min)
        else:
            v = seed.scale * v
        return np.clip(np.where(np.isnan(v), seed.fill, v), 0.0, 1.0)

    return sample


#: Per-region parameters of the tumor.
TUMOR_REGION_KEYS = ("motility", "proliferation_rate", "death_rate")
