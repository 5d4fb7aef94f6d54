r"""Pointwise assembly: the vertex-quadrature parts of all residuals and Jacobians in one kernel.

With mass lumping, the time derivatives, reactions and sources of every species are integrated
with the vertex rule, so their contribution to node k is

.. math::

    b_i[k] = \sum_{c \ni k} \frac{|c|}{4}\, g_i(x_k)|_c, \qquad
    J_{ij}[k,k] = \sum_{c \ni k} \frac{|c|}{4}\, \frac{\partial g_i}{\partial w_j}(x_k)\Big|_c

(|c| the cell volume). Assembling these as separate finite-element forms packs every coefficient
once per form and species, evaluates every integrand at all vertices of every cell (~20 times per
node on tetrahedral meshes) and tabulates 4x4 element tensors that are zero off the diagonal.
Here cell-wise coefficients are replaced by their lumped nodal averages (exact for integrands
linear in each of them), so each integrand is evaluated once per node: all integrands g_i (and
all non-zero partial derivatives) form one vector-valued :class:`dolfinx.fem.Expression`
evaluated on a set of cells covering the owned nodes, times the lumped mass. The result equals
the vertex-quadrature assembly to round-off (``tests/unit/fem/test_pointwise.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np

if TYPE_CHECKING:
    from dolfinx import fem
    from ufl.core.expr import Expr

__all__ = ["PointwiseAssembler"]


class PointwiseAssembler:
    r"""Evaluate nodal vertex-quadrature integrals of many UFL integrands at once.

    Cell-wise (DG0) coefficients are replaced by their lumped nodal averages
    :math:`\bar a_k = \\sum_{c \ni k} |c| a_c / \\sum_{c \ni k} |c|`, which is exact for integrands
    linear in each cell-wise coefficient (all of tumorpde's: region rates, secretions, vessel
    exchange coefficients). Every integrand is then a function of nodal values only, so it is
    evaluated once per node (on a set of cells that covers the owned nodes, ~20x fewer points
    than all cell vertices) and multiplied by the lumped mass :math:`m_k = \\sum_{c \ni k} |c|/4`.

    Args:
        V: The P1 space of the unknowns.
        integrands: UFL scalar expressions (one per output column).
    """

    def __init__(self, V: fem.FunctionSpace, integrands: Sequence[Expr]) -> None:
        import ufl
        from dolfinx import fem, la
        from ufl.algorithms import extract_coefficients

        msh = V.mesh
        self.V = V
        self.ncomp = len(integrands)
        imap = V.dofmap.index_map
        self.n_owned = imap.size_local
        dxl = ufl.Measure(
            "dx", domain=msh, metadata={"quadrature_rule": "vertex", "quadrature_degree": 1}
        )
        v = ufl.TestFunction(V)

        def lumped(expr: Expr) -> np.ndarray:
            vec = fem.assemble_vector(fem.form(expr * v * dxl))
            vec.scatter_reverse(la.InsertMode.add)
            return vec.array.copy()

        mass = lumped(fem.Constant(msh, 1.0))
        self.mass = mass[: self.n_owned]
        # a list in first-appearance order: Functions must be created in the same order on every
        # rank (their creation counters enter the compiled kernel's coefficient numbering)
        cellwise: list[fem.Function] = []
        for e in integrands:
            for c in extract_coefficients(e):
                if (
                    isinstance(c, fem.Function)  # a DOLFINx Function: it has a function_space
                    and c.function_space.element.basix_element.degree == 0
                    and c not in cellwise
                ):
                    cellwise.append(c)
        self.averages: dict[fem.Function, fem.Function] = {}
        for c in cellwise:
            avg = fem.Function(V, name=f"{c.name}_nodal")
            avg.x.array[: self.n_owned] = lumped(c)[: self.n_owned] / self.mass
            avg.x.scatter_forward()
            self.averages[c] = avg
        nodal = [ufl.replace(e, self.averages) if self.averages else e for e in integrands]
        tdim = msh.topology.dim
        ncells = msh.topology.index_map(tdim).size_local + msh.topology.index_map(tdim).num_ghosts
        dofs = V.dofmap.list[:ncells]
        nvert = dofs.shape[1]
        # a small set of cells covering the owned nodes, then one (cell, vertex) per node
        cover = _covering_cells(dofs, self.n_owned)
        sub = dofs[cover].ravel()
        first = np.full(max(int(dofs.max()) + 1 if dofs.size else 0, self.n_owned), -1, np.int64)
        first[sub[::-1]] = np.arange(sub.size)[::-1]
        occ = first[: self.n_owned]
        if np.any(occ < 0):
            raise RuntimeError("an owned node belongs to no local cell")
        cell_of, vert_of = cover[occ // nvert], occ % nvert
        self.cells, inverse = np.unique(cell_of, return_inverse=True)
        self.cells = self.cells.astype(np.int32)
        self.pick = (inverse, vert_of)
        self.expr = fem.Expression(
            ufl.as_vector(nodal), V.element.interpolation_points, comm=msh.comm
        )
        self.seconds = 0.0

    def evaluate(self) -> np.ndarray:
        """Owned nodal integrals, shape ``(owned nodes, number of integrands)`` (collective)."""
        import time

        t0 = time.perf_counter()
        vals = self.expr.eval(self.V.mesh, self.cells)
        out = vals[self.pick[0], self.pick[1], :] * self.mass[:, None]
        self.seconds += time.perf_counter() - t0
        return out


def _covering_cells(dofs: np.ndarray, n_owned: int) -> np.ndarray:
    """Cells whose vertices cover nodes ``0..n_owned-1``, greedily few (vectorized rounds).

    Rounds select, among the cells with at least ``need`` uncovered vertices (need = 4, 3, 2,
    1), those holding the highest random priority at each of their uncovered vertices (so the
    selected cells of a round share no uncovered vertex), as in Luby's independent-set rounds.
    On tetrahedral meshes this covers the nodes with about a third as many cells as nodes;
    one cell per node (the first occurrence) needs about one cell per node.

    Args:
        dofs: Cell-to-node table, shape (cells, vertices per cell), local node numbers.
        n_owned: Nodes to cover (the owned ones; ghost nodes need not be covered).

    Returns:
        Sorted cell indices.
    """
    nnodes = max(int(dofs.max()) + 1 if dofs.size else 0, n_owned)
    covered = np.zeros(nnodes, dtype=bool)
    covered[n_owned:] = True
    priority = np.random.default_rng(0).permutation(dofs.shape[0])
    chosen: list[np.ndarray] = []
    for need in range(dofs.shape[1], 0, -1):
        while True:
            cand = np.flatnonzero((~covered[dofs]).sum(axis=1) >= need)
            if cand.size == 0:
                break
            best = np.full(nnodes, -1, dtype=np.int64)
            cd = dofs[cand]
            pr = np.broadcast_to(priority[cand][:, None], cd.shape)
            np.maximum.at(best, cd.ravel(), pr.ravel())
            ok = np.all(covered[cd] | (best[cd] == pr), axis=1)
            acc = cand[ok]
            chosen.append(acc)
            covered[dofs[acc].ravel()] = True
            if need > 1 and acc.size < 0.01 * cand.size:
                break  # diminishing rounds: leave the rest to the next level
    if not chosen:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(chosen))
