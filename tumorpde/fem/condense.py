"""Static condensation of the pointwise (ODE) species: an exact block-LU preconditioner.

The coupled Jacobian, ordered as pointwise (``l``: kind ``ode``) and transported (``t``: kind
``pde`` or ``algebraic``) unknowns, is ``J = [[A_ll, A_lt], [A_tl, A_tt]]``, where ``A_ll`` is
block-diagonal by mesh node (vertex quadrature couples a pointwise species only to the species
at the same node). Its inverse is computed exactly, node block by node block (batched dense
inverses of the k x k blocks, k <= number of ODE species), and the Schur complement

    S = A_tt - A_tl A_ll^-1 A_lt

is assembled as a sparse matrix (the pattern of ``A_tt`` plus node-local couplings). The
preconditioner applies the block LU factorization of ``J`` (static condensation; Saad,
*Iterative Methods for Sparse Linear Systems*, 2nd ed., SIAM 2003, §14.2):

    y_l = A_ll^-1 r_l,   S x_t = r_t - A_tl y_l,   x_l = A_ll^-1 (r_l - A_lt x_t).

Everything but the solve with ``S`` is exact, so the outer Krylov method iterates only on
the transport species: its iterations are those of the inner preconditioner on ``S``
(default: multiplicative field split with one GAMG per transported species; options
``condensed_*`` under the solver's prefix). Under the active-set VI Newton (``vinewtonrsls``)
the operator is the Jacobian restricted to the inactive set; the rows are mapped back to
(species, node) through the SNES's inactive index set at every set-up, so clamped entries drop
out of their node blocks.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np

if TYPE_CHECKING:
    from petsc4py import PETSc

__all__ = ["CondensedPC", "condensed_options", "node_block_inverse"]

#: Options ``condensed_fieldsplit_transport_*`` apply to every transport split of the inner
#: (Schur complement) preconditioner (:func:`condensed_options`).
INNER = "condensed_"


class CondensationError(RuntimeError):
    """The pointwise block is not block-diagonal by node or a node block is singular."""


def node_block_inverse(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    node: np.ndarray,
    col_start: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Invert a matrix that is block-diagonal by node, rank-locally, as CSR.

    Args:
        indptr: CSR row pointer of this rank's rows.
        indices: Global column indices (the rank's rows are columns ``col_start + i``).
        values: CSR values.
        node: Per local row, its mesh node (rows of one node form one block; rows of a block
            need not be adjacent).
        col_start: Global index of this rank's first row (and column).

    Returns:
        ``(indptr, indices, values)`` of the inverse, global column indices sorted per row.

    Raises:
        CondensationError: An entry couples two nodes or lies off this rank, or a block is
            singular.
    """
    m = node.size
    rows = np.repeat(np.arange(m), np.diff(indptr))
    cols = np.asarray(indices, dtype=np.int64) - col_start
    if cols.size and (cols.min() < 0 or cols.max() >= m):
        raise CondensationError("the pointwise block couples rows on different ranks")
    if np.any(node[rows] != node[cols]):
        raise CondensationError("the pointwise block couples different nodes")
    # rows grouped by node (stable: a block's rows keep their order, so its columns are sorted)
    order = np.argsort(node, kind="stable")
    sorted_nodes = node[order]
    first = np.flatnonzero(np.r_[True, sorted_nodes[1:] != sorted_nodes[:-1]])
    sizes = np.diff(np.r_[first, m])
    block_of_sorted = np.repeat(np.arange(first.size), sizes)
    pos = np.empty(m, dtype=np.int64)
    pos[order] = np.arange(m) - first[block_of_sorted]
    block = np.empty(m, dtype=np.int64)
    block[order] = block_of_sorted
    k_row = sizes[block]
    out_ptr = np.r_[0, np.cumsum(k_row)].astype(np.int64)
    out_idx = np.empty(out_ptr[-1], dtype=np.int64)
    out_val = np.empty(out_ptr[-1], dtype=np.float64)
    for k in np.unique(sizes):
        blocks_k = np.flatnonzero(sizes == k)
        slot = np.full(first.size, -1, dtype=np.int64)
        slot[blocks_k] = np.arange(blocks_k.size)
        dense = np.zeros((blocks_k.size, k, k))
        hit = k_row[rows] == k
        dense[slot[block[rows[hit]]], pos[rows[hit]], pos[cols[hit]]] = values[hit]
        try:
            inv = np.linalg.inv(dense)
        except np.linalg.LinAlgError:
            raise CondensationError("a node block of the pointwise species is singular") from None
        members = order[first[blocks_k][:, None] + np.arange(k)]  # local rows, by position
        rows_k = np.flatnonzero(k_row == k)
        b = slot[block[rows_k]]
        at = out_ptr[rows_k][:, None] + np.arange(k)
        out_idx[at] = col_start + members[b]
        out_val[at] = inv[b, pos[rows_k], :]
    return out_ptr, out_idx, out_val


def condensed_options(options: dict[str, Any], transport: Sequence[str]) -> dict[str, Any]:
    """Copy ``condensed_fieldsplit_transport_<opt>`` to ``condensed_fieldsplit_<name>_<opt>``.

    With a single transported species the inner preconditioner cannot be a field split: its
    ``condensed_fieldsplit_transport_*`` options become plain ``condensed_*`` options (but the
    KSP type) and the ``condensed_pc_fieldsplit_*`` ones are dropped. With an inner
    preconditioner other than a field split (e.g. ``condensed_pc_type = "lu"``) all
    ``condensed_*fieldsplit_*`` options are dropped: PETSc would never read them, and unused
    options are errors. An option given by name wins over a copied one.
    """
    head = f"{INNER}fieldsplit_transport_"
    split_opts = (head, f"{INNER}pc_fieldsplit_")
    inner = str(options.get(f"{INNER}pc_type", ""))
    single = len(transport) == 1 and inner == "fieldsplit"
    if inner != "fieldsplit":
        split_opts = (f"{INNER}fieldsplit_", f"{INNER}pc_fieldsplit_")
    out = {k: v for k, v in options.items() if not k.startswith(split_opts)}
    if single:
        out.pop(f"{INNER}pc_type")
    for key, value in options.items():
        if inner != "fieldsplit" or not key.startswith(head):
            continue
        rest = key[len(head) :]
        if single:
            if rest != "ksp_type":  # the inner KSP's own type stays
                out.setdefault(f"{INNER}{rest}", value)
        else:
            for name in transport:
                out.setdefault(f"{INNER}fieldsplit_{name}_{rest}", value)
    return out


class CondensedPC:
    """petsc4py Python preconditioner context: exact elimination of the pointwise species.

    Args:
        snes: The Newton solver, held in a list that its owner empties on destroy (a cycle
            through PETSc objects would be invisible to Python's GC).
        species: Per unknown, its name and whether it is pointwise (kind ``ode``).
        n_owned: Owned nodes per unknown on this rank (all unknowns share one P1 space).
        prefix: The solver's options prefix; the inner solver reads ``<prefix>condensed_*``.
    """

    def __init__(
        self,
        snes: list[PETSc.SNES],
        species: Sequence[tuple[str, bool]],
        n_owned: int,
        prefix: str,
    ) -> None:
        self.snes = snes
        self.names = [name for name, _ in species]
        self.pointwise = np.array([pw for _, pw in species], dtype=bool)
        self.n = int(n_owned)
        self.prefix = prefix
        self.objects: dict[str, Any] = {}
        #: set-ups (``reused``: those that updated the last one in place; ``reduced``: those on
        #: the VI's inactive-set operator), seconds in them
        #: (inner preconditioner set-up included) and applications
        self.stats = {"setups": 0, "reused": 0, "reduced": 0, "setup_s": 0.0, "applies": 0}
        #: seconds per set-up phase: index sets, node-block inverse, Schur complement, inner
        self.seconds = {"split": 0.0, "inverse": 0.0, "schur": 0.0, "inner": 0.0}
        #: seconds in :meth:`apply`, and in its inner solves
        self.seconds.update(apply=0.0, inner_apply=0.0)

    # ------------------------------------------------------------------ PETSc Python PC hooks
    def setUp(self, pc: PETSc.PC) -> None:
        """Split the operator, invert the node blocks, assemble S, set up the inner solver.

        When the operator's rows are those of the last set-up (the VI's active set did not
        change), every matrix is updated in place (same nonzero pattern): the inner
        preconditioner then sees a changed matrix of the same pattern, so GAMG can keep its
        interpolation (``pc_gamg_reuse_interpolation``).
        """
        from petsc4py import PETSc

        t0 = time.perf_counter()
        _A, P = pc.getOperators()
        comm = P.getComm()
        mpi = comm.tompi4py()
        full_rows = self._full_rows(P)
        ob = self.objects
        same = ob.get("rows") is not None and np.array_equal(ob["rows"], full_rows)
        if mpi.size > 1:
            same = bool(mpi.allreduce(int(same), op=_mpi_min()))
        if not same:
            self._free()
            ob = self.objects
        else:
            self.stats["reused"] += 1
        rstart = P.getOwnershipRange()[0]
        species = full_rows // self.n
        node = full_rows % self.n
        is_l = self.pointwise[species]
        loc_l, loc_t = np.flatnonzero(is_l), np.flatnonzero(~is_l)
        it = PETSc.IntType
        if not same:
            ob.update(
                rows=full_rows,
                n_l=mpi.allreduce(int(loc_l.size)),
                n_t=mpi.allreduce(int(loc_t.size)),
                IS_l=PETSc.IS().createGeneral((rstart + loc_l).astype(it), comm=comm),  # type: ignore[arg-type]
                IS_t=PETSc.IS().createGeneral((rstart + loc_t).astype(it), comm=comm),  # type: ignore[arg-type]
            )
        IS_l, IS_t, n_l, n_t = ob["IS_l"], ob["IS_t"], ob["n_l"], ob["n_t"]
        sec = self.seconds
        t1 = time.perf_counter()
        sec["split"] += t1 - t0
        if n_l > 0:
            A_ll = P.createSubMatrix(IS_l, IS_l, ob.get("A_ll"))
            ob["A_ll"] = A_ll
            start_l = int(mpi.exscan(int(loc_l.size)) or 0) if mpi.size > 1 else 0
            indptr, indices, values = A_ll.getValuesCSR()
            error = ""
            try:
                ptr, idx, val = node_block_inverse(indptr, indices, values, node[loc_l], start_l)
            except CondensationError as exc:
                error = str(exc)
            errors = (
                [e for e in mpi.allgather(error) if e] if mpi.size > 1 else [error] * bool(error)
            )
            if errors:
                self._free()
                raise CondensationError(f"solver.preconditioner = 'condensed': {errors[0]}")
            if "Dinv" not in ob:
                size = (int(loc_l.size), n_l)
                D = PETSc.Mat().createAIJ(
                    size=(size, size),
                    csr=(ptr.astype(it), idx.astype(it), val),  # type: ignore[arg-type]
                    comm=comm,
                )
                ob["Dinv"] = D
                ob["r_l"], ob["y_l"] = D.createVecLeft(), D.createVecLeft()
            else:  # same pattern: new values, entry by entry (global indices)
                D = ob["Dinv"]
                rows = np.repeat(start_l + np.arange(loc_l.size), np.diff(ptr)).astype(it)
                D.setValuesRCV(
                    rows.reshape(-1, 1), idx.astype(it).reshape(-1, 1), val.reshape(-1, 1)
                )
            D.assemble()
        t2 = time.perf_counter()
        sec["inverse"] += t2 - t1
        if n_t > 0:
            A_tt = P.createSubMatrix(IS_t, IS_t, ob.get("A_tt"))
            ob["A_tt"] = A_tt
            if n_l > 0:
                A_tl = P.createSubMatrix(IS_t, IS_l, ob.get("A_tl"))
                A_lt = P.createSubMatrix(IS_l, IS_t, ob.get("A_lt"))
                ob["A_tl"], ob["A_lt"] = A_tl, A_lt
                DA = ob["Dinv"].matMult(A_lt, ob.get("DA"))  # A_ll^-1 A_lt
                T = A_tl.matMult(DA, ob.get("T"))
                ob["DA"], ob["T"] = DA, T
            subset = PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN
            if "S" not in ob:  # S's pattern: the union of A_tt's and T's
                S = A_tt.duplicate(copy=True)
                if n_l > 0:
                    S.axpy(-1.0, ob["T"])
                ob["S"] = S
                ob["r_t"], ob["w_t"] = S.createVecLeft(), S.createVecLeft()
            else:
                S = ob["S"]
                A_tt.copy(S, structure=subset)  # type: ignore[arg-type]
                if n_l > 0:
                    S.axpy(-1.0, ob["T"], structure=subset)
            t3 = time.perf_counter()
            sec["schur"] += t3 - t2
            if "ksp" not in ob:
                ob["ksp"] = self._inner(S, species[loc_t], mpi)
            with _serial_ptap(mpi.size):
                ob["ksp"].setUp()
                inner = ob["ksp"].getPC()
                if inner.getType() == "fieldsplit":
                    # the splits' solvers (GAMG) set up here, not lazily at the first apply
                    for sub in inner.getFieldSplitSubKSP():
                        sub.setUp()
            sec["inner"] += time.perf_counter() - t3
        self.stats["setups"] += 1
        self.stats["setup_s"] += time.perf_counter() - t0

    def apply(self, pc: PETSc.PC, x: PETSc.Vec, y: PETSc.Vec) -> None:
        """``y = P^-1 x`` by block LU (exact but for the inner solve with S)."""
        t0 = time.perf_counter()
        ob = self.objects
        self.stats["applies"] += 1
        IS_l, IS_t = ob["IS_l"], ob["IS_t"]
        if ob["n_t"] == 0:
            xl, yl = x.getSubVector(IS_l), y.getSubVector(IS_l)
            ob["Dinv"].mult(xl, yl)
            x.restoreSubVector(IS_l, xl)
            y.restoreSubVector(IS_l, yl)
            return
        yt = y.getSubVector(IS_t)
        rt = ob["r_t"]
        xt = x.getSubVector(IS_t)
        xt.copy(rt)  # r_t is changed below, x must not be
        x.restoreSubVector(IS_t, xt)
        if ob["n_l"] > 0:
            xl = x.getSubVector(IS_l)
            ob["Dinv"].mult(xl, ob["y_l"])  # y_l = A_ll^-1 r_l
            ob["A_tl"].mult(ob["y_l"], ob["w_t"])
            rt.axpy(-1.0, ob["w_t"])  # r_t - A_tl y_l
        t1 = time.perf_counter()
        ob["ksp"].solve(rt, yt)  # S x_t = r_t - A_tl y_l
        self.seconds["inner_apply"] += time.perf_counter() - t1
        if ob["n_l"] > 0:
            rl = ob["r_l"]
            ob["A_lt"].mult(yt, rl)
            rl.aypx(-1.0, xl)  # r_l - A_lt x_t
            x.restoreSubVector(IS_l, xl)
        y.restoreSubVector(IS_t, yt)
        if ob["n_l"] > 0:
            yl = y.getSubVector(IS_l)
            ob["Dinv"].mult(rl, yl)  # x_l = A_ll^-1 (r_l - A_lt x_t)
            y.restoreSubVector(IS_l, yl)
        self.seconds["apply"] += time.perf_counter() - t0

    def reset(self, pc: PETSc.PC) -> None:
        """Free the set-up (PETSc resets the KSP when the VI's active set changes)."""
        self._free()

    def destroy(self, pc: PETSc.PC) -> None:
        """Free the set-up with the preconditioner."""
        self._free()

    def view(self, pc: PETSc.PC, viewer: PETSc.Viewer) -> None:
        """One line for ``-ksp_view``."""
        viewer.printfASCII(f"condensed: pointwise species eliminated node by node ({self.stats})\n")

    # ---------------------------------------------------------------------------- internals
    def inner_iterations(self) -> int:
        """Iterations of the inner (Schur complement) Krylov solver over its last solve."""
        ksp = self.objects.get("ksp")
        return int(ksp.getIterationNumber()) if ksp is not None else 0

    def _full_rows(self, P: PETSc.Mat) -> np.ndarray:
        """Per local row of the operator, its row in the full (all-species) local numbering."""
        snes = self.snes[0] if self.snes else None
        x = snes.getSolution() if snes is not None else None
        n_full = self.n * len(self.names)
        lo, hi = P.getOwnershipRange()
        start = x.getOwnershipRange()[0] if x is not None else lo
        if hi - lo == n_full:
            return np.arange(n_full, dtype=np.int64)
        inactive = snes.getVIInactiveSet() if snes is not None else None
        if inactive is None or not inactive.handle or inactive.getLocalSize() != hi - lo:
            raise CondensationError(
                "solver.preconditioner = 'condensed': the operator is neither the full "
                "Jacobian nor its restriction to the VI inactive set"
            )
        self.stats["reduced"] += 1
        return inactive.getIndices().astype(np.int64) - start

    def _inner(self, S: PETSc.Mat, species_t: np.ndarray, mpi: Any) -> PETSc.KSP:
        """The Krylov solver for S (options ``<prefix>condensed_*``), field splits set."""
        from petsc4py import PETSc

        comm = S.getComm()
        ksp = PETSc.KSP().create(comm)
        ksp.setOptionsPrefix(f"{self.prefix}{INNER}")
        ksp.setOperators(S, S)
        ksp.setType("preonly")
        ksp.setFromOptions()
        pc = ksp.getPC()
        if pc.getType() == "fieldsplit":
            splits = []
            start = int(mpi.exscan(int(species_t.size)) or 0) if mpi.size > 1 else 0
            for s in np.unique(np.arange(len(self.names))[~self.pointwise]):
                ix = (start + np.flatnonzero(species_t == s)).astype(PETSc.IntType)
                if mpi.allreduce(int(ix.size)) == 0:  # every entry of the species clamped
                    continue
                splits.append((self.names[int(s)], ix))
            if len(splits) < 2:  # a field split needs two fields: AMG on S as a whole
                pc.setType("gamg")
            for name, ix in splits if len(splits) > 1 else []:
                iset = PETSc.IS().createGeneral(ix, comm=comm)  # type: ignore[arg-type]
                pc.setFieldSplitIS((name, iset))
                iset.destroy()
        return ksp

    def _free(self) -> None:
        for obj in self.objects.values():
            if hasattr(obj, "destroy"):
                obj.destroy()
        self.objects = {}


#: PETSc's algorithm for the Galerkin products P^T A P of GAMG's levels on one rank. The
#: SeqAIJ default recomputed them 4.5x slower than "rap" (explicit R = P^T, then R A P):
#: coupled bench, 144k unknowns, condensed, 2 steps: MatPtAPNumeric 0.96 -> 0.215 s, step
#: 1.36 -> 0.99 s. MPIAIJ has no "rap" (PETSc error 83), so it is set only around a serial
#: set-up, and never over a user's own choice.
SERIAL_PTAP = "rap"


@contextlib.contextmanager
def _serial_ptap(size: int) -> Iterator[None]:
    """Use :data:`SERIAL_PTAP` for the matrix products set up inside the block (one rank)."""
    from petsc4py import PETSc

    db = PETSc.Options()
    scoped = size == 1 and not db.hasName("matptap_via")
    if scoped:
        db.setValue("matptap_via", SERIAL_PTAP)
    try:
        yield
    finally:
        if scoped:
            db.delValue("matptap_via")


def _mpi_min() -> Any:
    from mpi4py import MPI

    return MPI.MIN
