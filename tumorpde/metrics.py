r"""Metrics: scalar quantities of interest as MPI-reduced integrals and extrema.

The columns follow the case's species (:mod:`tumorpde.model`): tumor burden
:math:`\int u\,dx` (mm³ at carrying capacity), per ligand its mean (nM) and its global balance
residual, per pathway the cell-weighted receptor occupancy :math:`\int u(C+I)/\int u(R+C+I)` and
mean signal :math:`\int u S/\int u`, module means, and the minimum of every species. All
functions are collective over the mesh communicator and return the same value on every rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tumorpde.backend  # noqa: F401  (before any dolfinx import)

__all__ = ["QoIs", "global_max", "global_min"]


def global_min(f: Any) -> float:
    """Minimum nodal value of a Function over all ranks (owned dofs only)."""
    from mpi4py import MPI

    n = f.function_space.dofmap.index_map.size_local * f.function_space.dofmap.index_map_bs
    local = f.x.array[:n].min() if n else np.inf
    return float(f.function_space.mesh.comm.allreduce(local, op=MPI.MIN))


def global_max(f: Any) -> float:
    """Maximum nodal value of a Function over all ranks (owned dofs only)."""
    from mpi4py import MPI

    n = f.function_space.dofmap.index_map.size_local * f.function_space.dofmap.index_map_bs
    local = f.x.array[:n].max() if n else -np.inf
    return float(f.function_space.mesh.comm.allreduce(local, op=MPI.MAX))


class QoIs:
    """Compiled integrals for a run's quantities of interest.

    Args:
        state: The run's state (:class:`tumorpde.state.State`).
        forms: The run's forms (:class:`tumorpde.forms.Forms`), for the lumped measure and the
            per-ligand balance integrands.
        extra: More named integrands (``name -> (numerator, denominator or None)``), e.g. from
            the therapy layer.
    """

    def __init__(self, state: Any, forms: Any, extra: dict[str, Any] | None = None) -> None:
        from dolfinx import fem

        cfg = forms.context.cfg
        self.state = state
        self.fields = state.fields
        msh = state.domain.mesh
        self.comm = msh.comm
        dxl = forms.dx_lumped
        f = state.fields
        u = f["tumor"]
        one = fem.Constant(msh, 1.0)
        ratios: dict[str, tuple[Any, Any]] = {"tumor_burden_mm3": (u * dxl, None)}
        for p, pw in cfg.pathways.items():
            if pw.ligand is not None:
                L = pw.ligand.name
                ratios[f"mean_{L}_nM"] = (f[L] * dxl, one * dxl)
                bound = f[f"{p}_complex"]
                if pw.receptor.internalized:
                    bound = bound + f[f"{p}_internal"]
                ratios[f"occupancy_{p}"] = (u * bound * dxl, u * (f[p] + bound) * dxl)
            else:
                ratios[f"relative_{p}"] = (u * f[p] * dxl, u * forms.constants[f"{p}.R0"] * dxl)
            if pw.signal.enabled:
                ratios[f"signal_{p}"] = (u * f[f"{p}_signal"] * dxl, u * dxl)
        if "mesenchymal" in f:
            ratios["mesenchymal_fraction"] = (u * f["mesenchymal"] * dxl, u * dxl)
        if "oxygen" in f:
            ratios["mean_oxygen_mmHg"] = (f["oxygen"] * dxl, one * dxl)
        if "osteoclast" in f:
            ratios["mean_osteoclast"] = (f["osteoclast"] * dxl, one * dxl)
        for name, (num, den) in (extra or {}).items():
            ratios[name] = (num, den)
        self._ratios = {
            k: (fem.form(n), fem.form(d) if d is not None else None) for k, (n, d) in ratios.items()
        }
        # Global balance of each ligand: storage - production + decay + binding (+ matrix).
        self._balance = {
            L: {k: fem.form(v * dxl) for k, v in terms.items()}
            for L, terms in forms.balance.items()
        }
        self.last_balance: dict[str, float] = dict.fromkeys(self.balance_columns(), 0.0)

    def _sum(self, form: Any) -> float:
        from mpi4py import MPI

        from dolfinx import fem

        return float(self.comm.allreduce(fem.assemble_scalar(form), op=MPI.SUM))

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
        )

    def update_balance(self) -> dict[str, float]:
        r"""Evaluate each ligand's global balance for the step just solved (before acceptance).

        The residual is :math:`|S - P + \sum_k K_k| / \max(|S|, |P|, |K_k|)` with S the discrete
        storage rate :math:`\int \partial_t^\Delta L`, P production and K_k the sinks (decay,
        receptor binding, matrix binding, drug trapping); no-flux boundaries make diffusion
        integrate to zero. It measures how well the solved step conserves each ligand.
        """
        out = {}
        for L, terms in self._balance.items():
            vals = {k: self._sum(fm) for k, fm in terms.items()}
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
        return out
