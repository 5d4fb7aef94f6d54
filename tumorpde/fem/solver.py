"""Solver: a PETSc SNES (Newton) wrapper around DOLFINx's NonlinearProblem for the coupled step.

The PETSc options come from the case (``[solver.petsc]``) merged over
:data:`tumorpde.config.DEFAULT_PETSC` and are applied under the prefix ``tumorpde_``, so
``PETSC_OPTIONS="-tumorpde_snes_monitor"`` also works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import tumorpde.fem.backend  # noqa: F401  (before any dolfinx import)

import numpy as np

if TYPE_CHECKING:
    from petsc4py import PETSc

    import ufl
    from dolfinx import fem
    from dolfinx.fem.petsc import NonlinearProblem
    from ufl.core.expr import Expr

    from tumorpde.fem.forms import Forms
    from tumorpde.fem.pointwise import PointwiseAssembler
    from tumorpde.fem.state import State
    from tumorpde.model.species import Species

__all__ = [
    "NewtonResult",
    "NewtonSolver",
    "SolverOptionsError",
    "converged_reason_name",
    "restrict_to_inactive",
    "solver_for",
    "species_splits",
    "transport_options",
]

PREFIX = "tumorpde_"
#: PETSc's ``SNES_CONVERGED_SNORM_RELATIVE``: the Newton step fell below ``snes_stol * |x|``.
SNORM_RELATIVE = 4


class SolverOptionsError(ValueError):
    """PETSc rejected the solver options of a case (raised alike on every rank)."""


#: Options PETSc reads only when the preconditioner is first set up (inside the first linear
#: solve): the sub-solvers of block Jacobi/ASM (``sub_``), multigrid levels, field splits and
#: external factorization packages. Whether PETSc used them is checked after the first solve;
#: every other option is checked right after the solver is built, before any time step.
LAZY_OPTION_PREFIXES = (
    "sub_",
    "mg_levels_",
    "mg_coarse_",
    "fieldsplit_",
    "mat_mumps_",
    "mat_superlu_",
    "mat_strumpack_",
    "mat_pastix_",
    "mat_cholmod_",
    "mat_umfpack_",
    "mat_mkl_",
    "condensed_",
)


def _unused_options(snes: PETSc.SNES, prefix: str, keys: list[str]) -> list[str]:
    """The ``keys`` PETSc has not read under ``prefix``, gathered over the solver's ranks."""
    from petsc4py import PETSc

    db = PETSc.Options()
    # used() first: hasName() itself marks an option as used
    unused = [k for k in keys if not db.used(f"{prefix}{k}") and db.hasName(f"{prefix}{k}")]
    comm = snes.getComm().tompi4py()
    if comm.size > 1:
        unused = sorted(set().union(*comm.allgather(unused)))
    return unused


def _check_types(options: dict[str, Any]) -> None:
    """Raise :class:`SolverOptionsError` for a KSP or PC type this PETSc build lacks.

    Covers the types that PETSc would only look up when the preconditioner is first set up
    (``sub_pc_type``, ``fieldsplit_<split>_pc_type``, ...), so the error comes before any step.
    """
    from petsc4py import PETSc

    for key, value in options.items():
        kind = "pc" if key.endswith("pc_type") else "ksp" if key.endswith("ksp_type") else None
        if kind is None:
            continue
        obj = PETSc.PC() if kind == "pc" else PETSc.KSP()
        obj.create(PETSc.COMM_SELF)
        try:
            obj.setType(str(value))
        except PETSc.Error:
            raise SolverOptionsError(
                f"solver.petsc.{key}: this PETSc build has no {kind.upper()} type {value!r} "
                "(e.g. hypre is not in the wheel; gamg is the algebraic multigrid)"
            ) from None
        finally:
            obj.destroy()


def _unused_message(prefix: str, unused: list[str], when: str) -> str:
    names = ", ".join(unused)
    return (
        f"solver.petsc: PETSc did not use the option(s) {names} ({when}; prefix -{prefix}): a "
        "misspelt name, or an option of a solver or preconditioner this case does not use "
        "(e.g. sub_* options need pc_type bjacobi or asm)"
    )


@dataclass(frozen=True)
class NewtonResult:
    """Outcome of one nonlinear solve (identical on all ranks)."""

    converged: bool
    reason: int
    reason_name: str
    newton_iterations: int
    linear_iterations: int


def converged_reason_name(reason: int) -> str:
    """Name of a PETSc ``SNESConvergedReason`` code."""
    from petsc4py import PETSc

    names = {v: k for k, v in vars(PETSc.SNES.ConvergedReason).items() if isinstance(v, int)}
    return names.get(reason, str(reason))


class NewtonSolver:
    """Monolithic Newton solver for a list of residuals in a list of unknowns.

    Args:
        residuals: UFL residual forms, one per unknown.
        unknowns: DOLFINx Functions, updated in place by :meth:`solve`.
        petsc_options: PETSc options without prefix.
        prefix: PETSc options prefix.
        lower_bounds: Per unknown, a lower bound or None (unbounded); used by the variational-
            inequality SNES types (``vinewton*``). Default: 0 for every unknown.
        parts: Per residual ``(pointwise part, flux part or None)`` with ``residual = sum``.
            With it the Jacobian is assembled blockwise: flux blocks as matrices, pointwise
            (vertex-quadrature) blocks as their diagonals from one vector assembly each, which
            skips the 4x4 element matrices that are zero off the diagonal. Without it DOLFINx
            assembles every block as a matrix.
        integrands: The pointwise parts' integrands (``parts[i][0] = g_i v dx_lumped``): then
            the residual's and the Jacobian's pointwise parts are evaluated together, one kernel
            each (:mod:`tumorpde.fem.pointwise`).
        static: Coefficients and Constants that do not change during the run (region
            coefficients, model constants). A flux Jacobian block that depends on nothing else
            (e.g. ligand diffusion) is assembled once and copied into every Jacobian; a flux
            residual whose blocks are all such is a matrix-vector product instead of an
            assembly. Call :meth:`refresh_static` after changing any of them.
        flux_jacobian: ``"iteration"``: the flux blocks that depend on the unknowns are
            reassembled at every Newton iteration (exact Newton). ``"step"``: only at the first
            iteration of each :meth:`solve` and kept for its later iterations. ``"auto"``: kept
            over solves too, and reassembled at the next solve once a solve failed or needed
            more Newton iterations than the last one that reassembled them. The pointwise
            blocks (reactions, the time derivative) are always exact and so is the residual,
            so only the convergence rate can change.
        fixed: Constrained nodes (Dirichlet conditions): ``(unknown index, owned local dofs,
            value)`` with the value a Constant read at every residual evaluation. Their
            residual rows become ``w - value`` and their Jacobian rows unit rows (columns are
            kept: Newton needs no symmetry). Needs ``parts`` and ``integrands``.
        splits: For ``pc_type = "fieldsplit"``: split name -> indices of the unknowns in it
            (each unknown in exactly one split), set as PETSc index sets on the
            preconditioner (DOLFINx sets none for ``kind="mpi"``). The sub-solvers read
            ``fieldsplit_<name>_*`` options. Under the active-set VI Newton
            (``vinewtonrsls``) the splits come from the SNES DM's field decomposition,
            restricted to the inactive set (see :meth:`_set_splits`).
        condensed: For ``pc_type = "python"`` (``[solver] preconditioner = "condensed"``): per
            unknown, its name and whether it is pointwise (kind ``ode``). The pointwise species
            are eliminated node by node and the Krylov method iterates on the Schur complement
            of the transported ones (:class:`tumorpde.fem.condense.CondensedPC`; inner options
            ``condensed_*``).
    """

    problem: NonlinearProblem
    snes: PETSc.SNES
    bounds: tuple[PETSc.Vec, PETSc.Vec] | None
    #: the field-split index sets (``splits``), kept alive with the solver
    _split_sets: list[PETSc.IS]
    #: the split assembly's forms, index sets and assemblers, kept alive with the solver
    _split: (
        tuple[
            dict[tuple[int, int], fem.Form],
            dict[tuple[int, int], Any],
            fem.Function,
            list[PETSc.IS],
            PointwiseAssembler | None,
            PointwiseAssembler | None,
            list[fem.Form | None],
        ]
        | None
    )

    def __init__(
        self,
        residuals: list[ufl.Form],
        unknowns: list[fem.Function],
        petsc_options: dict[str, Any],
        prefix: str = PREFIX,
        lower_bounds: list[float | None] | None = None,
        parts: list[tuple[ufl.Form, ufl.Form | None]] | None = None,
        integrands: list[Expr] | None = None,
        static: list[fem.Constant | fem.Function] | None = None,
        flux_jacobian: str = "iteration",
        fixed: list[tuple[int, np.ndarray, fem.Constant]] | None = None,
        splits: dict[str, list[int]] | None = None,
        condensed: list[tuple[str, bool]] | None = None,
    ) -> None:
        from petsc4py import PETSc

        from dolfinx.fem.petsc import NonlinearProblem

        from tumorpde.fem.jit import batch_compiled

        if fixed and (parts is None or integrands is None):
            raise ValueError("fixed (Dirichlet) nodes need the split assembly (parts, integrands)")
        self.fixed = list(fixed or [])
        self._split_sets = []
        self._split_holder: list[PETSc.SNES] = []
        #: the static-condensation preconditioner context (``condensed``), or None
        self.condensed: Any = None
        #: field splits: how often the DM's field decomposition was asked for the splits (once
        #: per change of the VI's active set)
        self.split_stats = {"decompositions": 0}
        self._unknowns = list(unknowns)

        self.prefix = prefix
        _check_types(petsc_options)
        split = (
            _split_forms(parts, integrands, unknowns, static or []) if parts is not None else None
        )
        # the problem's own forms: with the split assembly its Jacobian callback assembles J
        # and (with integrands) its residual, so NonlinearProblem needs them only for the
        # layout (vectors, the Jacobian's preallocation): one P1 form each stands in for them
        F_problem, J_problem = residuals, None
        if split is not None:
            F_stand, J_problem = _layout_forms(
                split.nonzero_blocks(), len(residuals), unknowns, integrands is not None
            )
            F_problem = F_stand or residuals
        db = PETSc.Options()
        _own_options(db, prefix, petsc_options)
        comm = unknowns[0].function_space.mesh.comm
        batch = [*F_problem, *(a for row in J_problem or [] for a in row)]
        batch += split.ufl_forms() if split is not None else []
        try:
            with batch_compiled(batch, comm):
                self.problem = NonlinearProblem(
                    F_problem,
                    unknowns,
                    # None blocks are zero blocks (DOLFINx's stub types the rows without None)
                    J=J_problem,  # type: ignore[arg-type]
                    petsc_options_prefix=prefix,
                    petsc_options=dict(petsc_options),
                    kind="mpi",
                )
                if split is not None:
                    split.compile()
        except PETSc.Error as exc:
            # A failing setFromOptions leaves the prefix pushed (DOLFINx 0.11): pop it so later
            # problems do not inherit a corrupted options prefix.
            db.prefixPop()
            _release_options(db, prefix)
            opts = ", ".join(f"{k}={v}" for k, v in petsc_options.items())
            # petsc4py's stub omits the ``ierr`` attribute PETSc.Error.__init__ sets
            ierr = exc.ierr  # type: ignore[attr-defined]
            raise SolverOptionsError(
                f"solver.petsc: PETSc rejected the options ({opts}); PETSc error code "
                f"{ierr}, see its message above (e.g. hypre is not in this PETSc build)"
            ) from None
        self.snes = self.problem.solver
        # residual norms of each solve (reset at every solve): checks step-length stops
        self.snes.setConvergenceHistory(length=1000, reset=True)
        self._options_record = _OWNED_OPTIONS.get(prefix)
        # unknown options: PETSc has read every eager option by now (setFromOptions); the
        # lazily read ones (LAZY_OPTION_PREFIXES) are checked after the first solve
        self._lazy_options: list[str] | None = [
            k for k in petsc_options if k.startswith(LAZY_OPTION_PREFIXES)
        ]
        eager = [k for k in petsc_options if not k.startswith(LAZY_OPTION_PREFIXES)]
        unused = _unused_options(self.snes, prefix, eager)
        try:
            if unused:
                raise SolverOptionsError(_unused_message(prefix, unused, "at set-up"))
            if splits is not None:
                self._set_splits(splits, unknowns)
            if condensed is not None:
                self._set_condensed(condensed, unknowns)
        except (SolverOptionsError, ValueError):
            _release_options(db, prefix)
            self.snes.destroy()
            for obj in (self.problem.A, self.problem.b, self.problem.x, *self._split_sets):
                obj.destroy()
            raise
        # timings of the split assembly; the SNES callbacks hold this dict, never ``self`` (a
        # cycle through a PETSc object is invisible to Python's GC and would leak the solver,
        # its vectors and their MPI communicators)
        self.assembly_seconds = {"residual": 0.0, "jacobian": 0.0}
        #: Jacobian evaluations, and how many of them reassembled the unknown-dependent fluxes
        self.jacobian_counts = {"evaluations": 0, "flux_assemblies": 0}
        if flux_jacobian not in ("iteration", "step", "auto"):
            raise ValueError(
                f"flux_jacobian must be 'iteration', 'step' or 'auto', not {flux_jacobian!r}"
            )
        self.flux_jacobian = flux_jacobian
        self._refresh_next = True
        self._its_at_refresh = 0
        self._frozen: dict[str, Any] = {}
        if split is not None:
            self._split_assembly(split, integrands, unknowns)
        self.bounds = None
        if str(petsc_options.get("snes_type", "")).startswith("vi"):
            from dolfinx.la.petsc import assign

            lows = lower_bounds if lower_bounds is not None else [0.0] * len(unknowns)
            owned, ghosts = [], []
            for f, low in zip(unknowns, lows, strict=True):
                n = f.function_space.dofmap.index_map.size_local * f.function_space.dofmap.bs
                value = PETSc.NINFINITY if low is None else float(low)
                owned.append(np.full(n, value))
                ghosts.append(np.full(f.x.array.size - n, value))
            lb = self.problem.x.duplicate()
            ub = self.problem.x.duplicate()
            assign(owned + ghosts, lb)
            ub.set(PETSc.INFINITY)
            self.snes.setVariableBounds(lb, ub)
            self.bounds = (lb, ub)

    def _set_splits(self, splits: dict[str, list[int]], unknowns: list[fem.Function]) -> None:
        """Give the field-split preconditioner one index set per split (global numbering).

        With ``kind="mpi"`` the blocked vector holds, on each rank, the owned dofs of unknown 0,
        then those of unknown 1, ..., after all lower ranks' owned dofs: each split is a union
        of contiguous ranges.

        The active-set VI Newton (``vinewtonrsls``) resets the KSP whenever its active set
        changes, which drops index sets set on the preconditioner. The splits are therefore
        also given as the field decomposition of the SNES's DM (a DMShell), which the field-
        split preconditioner asks when it has none: restricted to the VI's inactive set,
        renumbered in the reduced space it solves in.
        """
        from petsc4py import PETSc

        pc = self.snes.getKSP().getPC()
        if pc.getType() != "fieldsplit":
            raise SolverOptionsError(
                f"solver: index sets for the splits {sorted(splits)} need pc_type = "
                f"'fieldsplit', not {pc.getType()!r}"
            )
        members = sorted(i for fields in splits.values() for i in fields)
        if members != list(range(len(unknowns))):
            raise ValueError(f"splits {splits} must hold every unknown exactly once")
        sizes = [
            f.function_space.dofmap.index_map.size_local * f.function_space.dofmap.bs
            for f in unknowns
        ]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        rstart = self.problem.x.getOwnershipRange()[0]
        comm = self.snes.getComm()
        for name, fields in splits.items():
            idx = np.concatenate(
                [rstart + offsets[i] + np.arange(sizes[i]) for i in sorted(fields)]
            ).astype(PETSc.IntType)
            # petsc4py's stub types the indices as Sequence[int]; it takes integer arrays
            iset = PETSc.IS().createGeneral(idx, comm=comm)  # type: ignore[arg-type]
            pc.setFieldSplitIS((name, iset))
            self._split_sets.append(iset)
        names = list(splits)
        owned = [iset.getIndices() for iset in self._split_sets]
        # the callback reaches the SNES through this list, emptied by destroy(): a reference
        # cycle through PETSc objects would be invisible to Python's GC
        holder: list[PETSc.SNES] = [self.snes]
        self._split_holder = holder
        stats = self.split_stats

        def decomposition(_dm: PETSc.DM) -> tuple[list[str], list[PETSc.IS], None]:
            stats["decompositions"] += 1
            inactive = holder[0].getVIInactiveSet() if holder else None
            if inactive is None or not inactive.handle:
                sets = [PETSc.IS().createGeneral(ix, comm=comm) for ix in owned]  # type: ignore[arg-type]
                return names, sets, None
            keep = inactive.getIndices()
            mpi = comm.tompi4py()
            start = int(mpi.exscan(int(keep.size)) or 0) if mpi.size > 1 else 0
            sets = [
                PETSc.IS().createGeneral(reduced, comm=comm)  # type: ignore[arg-type]
                for reduced in restrict_to_inactive(owned, keep, start)
            ]
            return names, sets, None

        dm = self.snes.getDM()
        if isinstance(dm, PETSc.DMShell):
            dm.setCreateFieldDecomposition(decomposition)
            pc.setDM(dm)

    def _set_condensed(self, species: list[tuple[str, bool]], unknowns: list[fem.Function]) -> None:
        """Give the Python preconditioner its static-condensation context."""
        from tumorpde.fem.condense import CondensedPC

        pc = self.snes.getKSP().getPC()
        if pc.getType() != "python":
            raise SolverOptionsError(
                f"solver: the condensed preconditioner needs pc_type = 'python', not "
                f"{pc.getType()!r}"
            )
        if len(species) != len(unknowns):
            raise ValueError("condensed: one (name, pointwise) pair per unknown")
        V = unknowns[0].function_space
        if any(u.function_space is not V for u in unknowns) or V.dofmap.bs != 1:
            raise ValueError("condensed: all unknowns on one scalar space")
        # the SNES through a list emptied by destroy(), as for the field splits
        holder: list[PETSc.SNES] = [self.snes]
        self._split_holder = holder
        self.condensed = CondensedPC(holder, species, V.dofmap.index_map.size_local, self.prefix)
        pc.setPythonContext(self.condensed)

    def _split_assembly(
        self,
        split: _SplitForms,
        integrands: list[Expr] | None,
        unknowns: list[fem.Function],
    ) -> None:
        """Install residual/Jacobian callbacks that assemble flux and pointwise parts apart.

        Flux blocks are assembled as matrices by DOLFINx; blocks that depend only on static
        data are assembled once (:meth:`refresh_static`). Pointwise (vertex-quadrature) parts
        are nodal: with ``integrands`` all residual parts and all non-zero Jacobian diagonals
        come from two :class:`tumorpde.fem.pointwise.PointwiseAssembler` evaluations; without,
        each non-zero pointwise Jacobian block is one vector assembly of the derivative in the
        direction "all ones" (vertex quadrature couples a node only to itself).

        Args:
            split: The split's forms (:func:`_split_forms`), compiled.
            integrands: Pointwise integrands of the residuals, or None.
            unknowns: The unknowns, all on one space.
        """
        import time

        from petsc4py import PETSc

        from dolfinx import cpp as _cpp
        from dolfinx import fem, la
        from dolfinx.fem.petsc import assign
        from dolfinx.la.petsc import assign as assign_arrays

        from tumorpde.fem.pointwise import PointwiseAssembler

        V = unknowns[0].function_space
        nsp = len(unknowns)
        flux, frozen, point = split.flux, split.frozen, split.point
        ones = split.ones
        index_sets = _cpp.la.petsc.create_index_sets([(V.dofmap.index_map, 1)] * nsp)
        n = V.dofmap.index_map.size_local
        n_ghost = V.dofmap.index_map.num_ghosts
        pairs = list(point)
        # J's global indices of every pointwise diagonal entry, sorted by row: inserting them in
        # row order with global indices takes half the time of block-by-block local insertion
        # (1.4M entries at 0.5M unknowns: 63 vs 120 ms)
        owned = [iset.getIndices()[:n] for iset in index_sets]
        local_rows = np.concatenate([owned[i] for i, _ in pairs] or [np.zeros(0, PETSc.IntType)])
        local_cols = np.concatenate([owned[j] for _, j in pairs] or [np.zeros(0, PETSc.IntType)])
        diag_order = np.lexsort((local_cols, local_rows))
        lgmap = self.problem.A.getLGMap()[0]
        # petsc4py's stub types LGMap.apply's indices as Sequence[int]; it takes integer arrays
        rows = local_rows[diag_order].astype(PETSc.IntType)
        cols = local_cols[diag_order].astype(PETSc.IntType)
        diag_rows = lgmap.apply(rows).reshape(-1, 1)  # type: ignore[arg-type]
        diag_cols = lgmap.apply(cols).reshape(-1, 1)  # type: ignore[arg-type]
        jac_pw: PointwiseAssembler | None = None
        res_pw: PointwiseAssembler | None = None
        linear_rows = split.linear_rows
        flux_res = split.flux_res
        if integrands is not None:
            jac_pw = PointwiseAssembler(V, [point[k] for k in pairs])
            res_pw = PointwiseAssembler(V, integrands)
        fixed = self.fixed
        fixed_rows = None
        if fixed:
            # global rows of the constrained nodes; zeroRows must keep the nonzero pattern,
            # which the kept flux matrices are copied onto (SAME_NONZERO_PATTERN)
            # petsc4py's stub types enum members as int but this parameter as the enum class
            keep = PETSc.Mat.Option.KEEP_NONZERO_PATTERN
            self.problem.A.setOption(keep, True)  # type: ignore[arg-type]
            local = np.concatenate([owned[i][dofs] for i, dofs, _ in fixed]).astype(PETSc.IntType)
            fixed_rows = lgmap.apply(local)  # type: ignore[arg-type]
        frozen_state = self._frozen
        mode = self.flux_jacobian
        frozen_state.update(
            pattern_final=False,
            refresh=True,
            blocks=frozen,
            rows=linear_rows,
            forms=split.residual_fluxes,
            unknowns=unknowns,
        )
        self.refresh_static()
        stats = self.assembly_seconds
        counts = self.jacobian_counts

        def update(x: PETSc.Vec) -> None:
            # petsc4py's stub types enum members as int but these parameters as the enum class
            x.ghostUpdate(
                addv=PETSc.InsertMode.INSERT,  # type: ignore[arg-type]
                mode=PETSc.ScatterMode.FORWARD,  # type: ignore[arg-type]
            )
            # the registered assign(Vec, Functions) overload: mypy sees only the singledispatch
            # base signature assign(Functions, Vec)
            assign(x, unknowns)  # type: ignore[arg-type]

        def residual(_snes: PETSc.SNES, x: PETSc.Vec, b: PETSc.Vec) -> None:
            t0 = time.perf_counter()
            update(x)
            assert res_pw is not None
            nodal = res_pw.evaluate()
            owned: list[np.ndarray] = []
            for i, L in enumerate(flux_res):
                r = nodal[:, i].copy()
                if L is not None:
                    vec = fem.assemble_vector(L)
                    vec.scatter_reverse(la.InsertMode.add)
                    r += vec.array[:n]
                elif i in linear_rows:
                    r += frozen_state["offset"][i]
                    for (bi, bj), K in frozen_state["matrices"].items():
                        if bi == i:
                            K.mult(unknowns[bj].x.petsc_vec, frozen_state["work"])
                            r += frozen_state["work"].array_r[:n]
                owned.append(r)
            for i, dofs, value in fixed:
                owned[i][dofs] = unknowns[i].x.array[dofs] - float(value.value)
            assign_arrays(owned + [np.zeros(n_ghost)] * nsp, b)
            stats["residual"] += time.perf_counter() - t0

        def add_block(A: PETSc.Mat, i: int, j: int, a: fem.Form) -> None:
            Asub = A.getLocalSubMatrix(index_sets[i], index_sets[j])
            _cpp.fem.petsc.assemble_matrix(
                Asub, a._cpp_object, fem.pack_constants(a), fem.pack_coefficients(a), [], True
            )
            A.restoreLocalSubMatrix(index_sets[i], index_sets[j], Asub)

        def jacobian(_snes: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, _P: PETSc.Mat) -> None:
            t0 = time.perf_counter()
            update(x)
            fz = frozen_state
            same = PETSc.Mat.Structure.SAME_NONZERO_PATTERN
            first = fz["pattern_final"] is False
            # flux blocks go straight into J, or into the matrix kept over a step
            target = J if first or fz["reuse"] is None else fz["reuse"]
            if first or target is J or fz["refresh"]:
                if fz["constant"] is not None:
                    fz["constant"].copy(target, structure=same)
                else:
                    target.zeroEntries()
                todo = {**fz["blocks"], **flux} if fz["constant"] is None else flux
                # a restored solver rebuilds the kept flux blocks at the unknowns they were
                # assembled at (set_reuse_state), so it goes on as the checkpointed one did
                kept = fz.pop("pending_state", None)
                if fz["refresh"]:
                    kept = None
                if kept is not None:
                    now = [u.x.array.copy() for u in unknowns]
                    for u, values in zip(unknowns, kept, strict=True):
                        u.x.array[:] = values
                for (i, j), a in todo.items():
                    add_block(target, i, j, a)
                if kept is not None:
                    for u, values in zip(unknowns, now, strict=True):
                        u.x.array[:] = values
                else:
                    fz["flux_state"] = [u.x.array.copy() for u in unknowns]
                if target is not J:
                    target.assemble()
                fz["refresh"] = False
                counts["flux_assemblies"] += 1
            counts["evaluations"] += 1
            if target is not J:
                target.copy(J, structure=same)  # type: ignore[arg-type]  # int enum, as above
            if jac_pw is not None:
                nodal = jac_pw.evaluate()
                diag = {k: nodal[:, c] for c, k in enumerate(pairs)}
            else:
                diag = {}
                for k, L in point.items():
                    vec = fem.assemble_vector(L)
                    vec.scatter_reverse(la.InsertMode.add)
                    diag[k] = vec.array[:n]
            if pairs:  # all pointwise diagonals in one insertion
                values = np.concatenate([diag[k] for k in pairs])[diag_order].reshape(-1, 1)
                J.setValuesRCV(diag_rows, diag_cols, values, addv=True)
            J.assemble()
            if first:
                # the pattern is final now: matrices of the same structure for the frozen blocks
                # and (flux_jacobian "step" or "auto") for the flux blocks kept between refreshes
                fz["pattern_final"] = True
                if fz["blocks"]:
                    C = J.duplicate(copy=False)
                    C.zeroEntries()
                    for (i, j), a in fz["blocks"].items():
                        add_block(C, i, j, a)
                    C.assemble()
                    fz["constant"] = C
                if mode != "iteration" and flux:
                    # J minus its pointwise diagonals: every flux block, without assembling them
                    # again (the diagonal entries lose only round-off of the pointwise values)
                    B = J.duplicate(copy=True)
                    if pairs:
                        B.setValuesRCV(diag_rows, diag_cols, -values, addv=True)
                    B.assemble()
                    fz["reuse"] = B
            if fixed_rows is not None:
                # unit rows at the constrained nodes (collective; the pattern is kept)
                J.zeroRows(fixed_rows, diag=1.0)  # type: ignore[arg-type]  # takes int arrays
            stats["jacobian"] += time.perf_counter() - t0

        if res_pw is not None:
            self.snes.setFunction(residual, self.problem.b)
        self.snes.setJacobian(jacobian, self.problem.A, self.problem.A)
        self._split = (flux, point, ones, index_sets, jac_pw, res_pw, flux_res)  # keep alive

    def refresh_jacobian(self) -> None:
        """Reassemble the unknown-dependent flux blocks at the next Jacobian evaluation.

        :meth:`solve` does this itself when its policy asks for it (``flux_jacobian``); a
        Jacobian computed outside a solve otherwise reuses the last flux blocks.
        """
        if self._frozen:
            self._frozen["refresh"] = True

    def refresh_static(self) -> None:
        """Reassemble the frozen flux Jacobian blocks from the current static data.

        Each frozen block ``(i, j)`` is kept twice: summed into a Jacobian-shaped matrix that
        every Jacobian evaluation starts from (a copy instead of an assembly; built at the next
        Jacobian evaluation, once the Jacobian's nonzero pattern is final), and as its own P1
        matrix ``K_ij`` for the residual rows that are affine in the unknowns.
        """
        from dolfinx import fem, la
        from dolfinx.fem.petsc import assemble_matrix

        fz = self._frozen
        if not fz:
            return
        _free_frozen(fz)
        unknowns = fz["unknowns"]
        n = unknowns[0].function_space.dofmap.index_map.size_local
        for (i, j), a in fz["blocks"].items():
            if i in fz["rows"]:
                K = assemble_matrix(a)
                K.assemble()
                fz["matrices"][(i, j)] = K
        if fz["matrices"]:
            fz["work"] = next(iter(fz["matrices"].values())).createVecLeft()
        for i in fz["rows"]:
            # r_i(0) = r_i(u) - sum_j K_ij u_j at the current unknowns (zero for pure diffusion)
            vec = fem.assemble_vector(fz["forms"][i])
            vec.scatter_reverse(la.InsertMode.add)
            offset = vec.array[:n].copy()
            for (bi, bj), K in fz["matrices"].items():
                if bi == i:
                    K.mult(unknowns[bj].x.petsc_vec, fz["work"])
                    offset -= fz["work"].array_r[:n]
            fz["offset"][i] = offset

    def _residual_reduced(self) -> bool:
        """True if the last solve reduced the residual norm to 1e-3 of its start (or atol).

        The residual norms come from the SNES convergence history (the same on every rank).
        """
        norms, _its = self.snes.getConvergenceHistory()
        if len(norms) == 0:
            return True
        f0, f = float(norms[0]), float(norms[-1])
        atol = float(self.snes.getTolerances()[1])
        return bool(np.isfinite(f)) and (f <= 1e-3 * f0 or f <= 1e3 * atol)

    def solve(self) -> NewtonResult:
        """Run Newton from the current values of the unknowns.

        Returns:
            Convergence information. On divergence the unknowns hold the last iterate.
        """
        if self.flux_jacobian == "step" or self._refresh_next:
            self.refresh_jacobian()
        refreshed = bool(self._frozen.get("refresh", True))
        if self.fixed:
            # start Newton at the fixed values: their rows are then satisfied from the start
            # and the relative tolerance applies to the free rows alone
            for i, dofs, value in self.fixed:
                u = self._unknowns[i]
                u.x.array[dofs] = float(value.value)
                u.x.scatter_forward()
        self.problem.solve()
        # lazily read options are known only once a linear solve has set the KSP up (a solve
        # that converges at its initial guess, e.g. a uniform steady state, reads none)
        if self._lazy_options is not None and self.snes.getLinearSolveIterations() > 0:
            lazy, self._lazy_options = self._lazy_options, None
            unused = _unused_options(self.snes, self.prefix, lazy)
            if unused:
                raise SolverOptionsError(
                    _unused_message(self.prefix, unused, "read at the first linear solve")
                )
        # petsc4py's stub returns the SNES.ConvergedReason class; the value is its int code
        reason = int(cast("int", self.snes.getConvergedReason()))
        name = converged_reason_name(reason)
        if reason == SNORM_RELATIVE and not self._residual_reduced():
            # PETSc tests the step length (snes_stol) before the divergence tolerance: a Newton
            # run that blew up (|x| ~ 1e29, |F| 1e6x its start) stops as "converged" because
            # its last step is small *relative to |x|*. Such a stop is a failure (the step is
            # retried at half the size), never an accepted state.
            reason, name = -9, "DIVERGED_DTOL (step-length stop without residual reduction)"
        result = NewtonResult(
            converged=reason > 0,
            reason=reason,
            reason_name=name,
            newton_iterations=int(self.snes.getIterationNumber()),
            linear_iterations=int(self.snes.getLinearSolveIterations()),
        )
        if self.flux_jacobian == "auto":
            its = result.newton_iterations
            if refreshed:
                self._its_at_refresh = its
            self._refresh_next = not result.converged or its > self._its_at_refresh
        return result

    def reuse_state(self) -> dict[str, Any]:
        """The Jacobian-reuse bookkeeping of ``flux_jacobian = "auto"`` (for checkpoints).

        With :meth:`flux_state` (the unknowns the kept flux blocks were assembled at) a
        restored solver rebuilds the same kept blocks: a resumed run then follows the
        uninterrupted one to round-off.
        """
        return {"its_at_refresh": self._its_at_refresh, "refresh_next": self._refresh_next}

    def flux_state(self) -> list[np.ndarray] | None:
        """Local values (owned and ghost) of the unknowns at the last flux-block assembly."""
        state = self._frozen.get("flux_state") if self._frozen else None
        return list(state) if state is not None else None

    def set_reuse_state(
        self, state: dict[str, Any], flux_state: list[np.ndarray] | None = None
    ) -> None:
        """Continue the Jacobian-reuse bookkeeping of a checkpointed solver.

        Args:
            state: :meth:`reuse_state` of the checkpointed solver.
            flux_state: Its :meth:`flux_state` (on this solver's dofs); the first Jacobian
                then assembles the kept flux blocks at these values instead of the current
                ones, unless the policy asks for a refresh at that solve anyway.
        """
        self._its_at_refresh = int(state.get("its_at_refresh", self._its_at_refresh))
        self._refresh_next = bool(state.get("refresh_next", self._refresh_next))
        if flux_state is not None and self._frozen and self.flux_jacobian == "auto":
            self._frozen["pending_state"] = [np.asarray(v).copy() for v in flux_state]
            self._frozen["refresh"] = False

    def describe(self) -> dict[str, str]:
        """SNES, KSP and PC types in use (after the first solve they reflect all options)."""
        ksp = self.snes.getKSP()
        pc = ksp.getPC()
        out = {"snes": self.snes.getType(), "ksp": ksp.getType(), "pc": pc.getType()}
        if pc.getType() in ("lu", "cholesky"):
            out["factor_solver"] = pc.getFactorSolverType() or ""
        return out

    def destroy(self) -> None:
        """Free the PETSc objects."""
        from petsc4py import PETSc

        _free_frozen(self._frozen)
        self._frozen = {}
        if _OWNED_OPTIONS.get(self.prefix) is self._options_record:
            _release_options(PETSc.Options(), self.prefix)
        self.snes.destroy()
        for v in self.bounds or ():
            v.destroy()
        self.problem.A.destroy()
        self.problem.b.destroy()
        self.problem.x.destroy()
        for iset in self._split_sets:
            iset.destroy()
        self._split_sets = []
        self._split_holder.clear()
        if self.condensed is not None:
            self.condensed._free()
            self.condensed = None
        self._split = None


#: Per options prefix, the PETSc options the last solver set and their earlier values (None:
#: absent). DOLFINx 0.11 deletes the options it set under a pushed prefix, which PETSc's
#: ``PetscOptionsClearValue`` ignores, so they stay in the database and would apply to every
#: later solver with this prefix (a case's ``snes_lag_jacobian`` leaking into the next arm of a
#: comparison). They cannot be removed right after set-up either: some are read lazily at the
#: first solve (``sub_pc_*`` of block Jacobi, ``mat_mumps_*``). So they are reset when the next
#: solver with the same prefix is built, and by :meth:`NewtonSolver.destroy`.
_OWNED_OPTIONS: dict[str, dict[str, str | None]] = {}


def _own_options(db: PETSc.Options, prefix: str, options: dict[str, Any]) -> None:
    """Reset the previous solver's options under ``prefix`` and record this solver's."""
    _release_options(db, prefix)
    _OWNED_OPTIONS[prefix] = {
        key: db.getString(f"{prefix}{key}", "") if db.hasName(f"{prefix}{key}") else None
        for key in options
    }


def _release_options(db: PETSc.Options, prefix: str) -> None:
    """Restore the options under ``prefix`` to what they were before the last solver set them."""
    for key, before in _OWNED_OPTIONS.pop(prefix, {}).items():
        name = f"{prefix}{key}"
        if before is None:
            if db.hasName(name):
                db.delValue(name)
        else:
            db.setValue(name, before)


def _free_frozen(fz: dict[str, Any]) -> None:
    """Destroy the frozen-block and reused matrices of a solver and reset their slots."""
    slots = ("constant", "work", "reuse")
    for M in [*fz.get("matrices", {}).values(), *(fz.get(k) for k in slots)]:
        if M is not None:
            M.destroy()
    fz.update(matrices={}, constant=None, work=None, offset={}, reuse=None, pattern_final=False)


class _SplitForms:
    """The split assembly's forms: UFL first (to compile them in one batch), then compiled.

    Attributes (after :meth:`compile`: ``dolfinx.fem.Form``; before: UFL forms):
        flux: Unknown-dependent flux Jacobian blocks ``(i, j)``.
        frozen: Flux Jacobian blocks that depend only on static data.
        point: Pointwise Jacobian blocks: UFL derivative integrands (with integrands) or
            forms (without; compiled).
        flux_res: Flux residual rows assembled as vectors (None: none, or an affine row).
        residual_fluxes: Every row's flux residual (None without flux).
        linear_rows: Rows whose flux residual is affine in the unknowns (all blocks frozen).
        ones: The function "all ones" on the unknowns' space (the pointwise direction).
    """

    def __init__(self) -> None:
        self.flux: dict[tuple[int, int], Any] = {}
        self.frozen: dict[tuple[int, int], Any] = {}
        self.point: dict[tuple[int, int], Any] = {}
        self.flux_res: list[Any] = []
        self.residual_fluxes: list[Any] = []
        self.linear_rows: set[int] = set()
        self.ones: Any = None
        self._point_forms = False

    def nonzero_blocks(self) -> set[tuple[int, int]]:
        """The Jacobian blocks ``(i, j)`` with a flux or a pointwise part."""
        return {*self.flux, *self.frozen, *self.point}

    def ufl_forms(self) -> list[Any]:
        """Every UFL form to compile (for one batch)."""
        forms = [*self.flux.values(), *self.frozen.values(), *self.flux_res]
        forms += self.residual_fluxes
        if self._point_forms:
            forms += list(self.point.values())
        return [f for f in forms if f is not None]

    def compile(self) -> None:
        """Replace the UFL forms by compiled ones (``fem.form``; inside a batch: no compile)."""
        from dolfinx import fem

        def c(f: Any) -> Any:
            return None if f is None else fem.form(f)

        self.flux = {k: c(f) for k, f in self.flux.items()}
        self.frozen = {k: c(f) for k, f in self.frozen.items()}
        if self._point_forms:
            self.point = {k: c(f) for k, f in self.point.items()}
        self.flux_res = [c(f) for f in self.flux_res]
        self.residual_fluxes = [c(f) for f in self.residual_fluxes]


def _split_forms(
    parts: list[tuple[ufl.Form, ufl.Form | None]],
    integrands: list[Expr] | None,
    unknowns: list[fem.Function],
    static: list[fem.Constant | fem.Function],
) -> _SplitForms:
    """The UFL forms of :meth:`NewtonSolver._split_assembly` (not compiled yet).

    Raises:
        ValueError: If the unknowns are not all on one space.
    """
    import ufl
    from dolfinx import fem
    from ufl.algorithms import expand_derivatives

    V = unknowns[0].function_space
    if any(u.function_space is not V for u in unknowns):
        raise ValueError("the split assembly needs all unknowns on one space")
    out = _SplitForms()
    out.ones = fem.Function(V)
    out.ones.x.array[:] = 1.0
    out._point_forms = integrands is None
    static_ids = {id(o) for o in static}
    for i, (fp, ff) in enumerate(parts):
        for j, uj in enumerate(unknowns):
            if ff is not None:
                d = expand_derivatives(ufl.derivative(ff, uj))
                if not d.empty():
                    target = out.frozen if _depends_only_on(d, static_ids) else out.flux
                    target[(i, j)] = d
            if integrands is not None:
                e = expand_derivatives(ufl.derivative(integrands[i], uj, out.ones))
                if not isinstance(e, ufl.constantvalue.Zero):
                    out.point[(i, j)] = e
            else:
                d = expand_derivatives(ufl.derivative(fp, uj, out.ones))
                if not d.empty():
                    out.point[(i, j)] = d
    out.residual_fluxes = [ff for _, ff in parts]
    if integrands is not None:
        # a flux residual whose Jacobian blocks are all frozen is affine in the unknowns:
        # r_i = r_i(0) + sum_j K_ij u_j, evaluated as matrix-vector products
        known = static_ids | {id(u) for u in unknowns}
        out.linear_rows = {
            i
            for i, (_, ff) in enumerate(parts)
            if ff is not None
            and not any(k[0] == i for k in out.flux)
            and _depends_only_on(ff, known)
        }
        out.flux_res = [
            ff if ff is not None and i not in out.linear_rows else None
            for i, (_, ff) in enumerate(parts)
        ]
    return out


def _layout_forms(
    blocks: set[tuple[int, int]], n: int, unknowns: list[fem.Function], own_residual: bool
) -> tuple[list[Any] | None, list[list[ufl.Form | None]]]:
    """Stand-in forms for NonlinearProblem when the split assembly computes J (and F).

    The Jacobian's preallocation needs only which blocks are non-zero (``blocks``, from the
    split's derivatives): each is replaced by the P1 mass form, whose cell-integral pattern is
    the same (the assembled matrix keeps only the entries the callbacks insert). With
    ``own_residual`` the residual callback is the split one too, and the ``n`` residuals are
    replaced by one P1 load form (only the vector layout is used); otherwise ``F`` is None and
    the caller keeps its residuals. One kernel each instead of one per block.

    Returns:
        ``(F or None, J)`` for ``NonlinearProblem(F, u, J=J)``.
    """
    import ufl

    V = unknowns[0].function_space
    v, w = ufl.TestFunction(V), ufl.TrialFunction(V)
    dx = ufl.Measure("dx", domain=V.mesh)
    mass = w * v * dx
    J: list[list[ufl.Form | None]] = [
        [mass if (i, j) in blocks else None for j in range(len(unknowns))] for i in range(n)
    ]
    F = [v * dx for _ in range(n)] if own_residual else None
    return F, J


def _depends_only_on(expr: ufl.Form | Expr, ids: set[int]) -> bool:
    """Whether every Coefficient and Constant in the UFL ``expr`` is one of ``ids``."""
    from ufl.algorithms.analysis import extract_coefficients, extract_constants

    deps = list(extract_coefficients(expr)) + list(extract_constants(expr))
    return all(id(o) in ids for o in deps)


def solver_for(
    state: State,
    forms: Forms,
    petsc_options: dict[str, Any],
    prefix: str = PREFIX,
    flux_jacobian: str = "iteration",
) -> NewtonSolver:
    """The product's solver for a state and its forms: split Jacobian, per-species bounds.

    Args:
        state: :class:`tumorpde.fem.state.State` (species and unknowns).
        forms: :class:`tumorpde.fem.forms.Forms` (residuals and their pointwise/flux parts).
        petsc_options: PETSc options without prefix.
        prefix: PETSc options prefix.
        flux_jacobian: When the unknown-dependent flux blocks are reassembled (see
            :class:`NewtonSolver`).
    """
    splits = None
    condensed = None
    if str(petsc_options.get("pc_type", "")) == "fieldsplit":
        splits = species_splits(state.species)
        petsc_options = transport_options(petsc_options, splits)
    elif (
        str(petsc_options.get("pc_type", "")) == "python" and "pc_python_type" not in petsc_options
    ):
        # [solver] preconditioner = "condensed": the Python PC is the static condensation
        from tumorpde.fem.condense import condensed_options

        condensed = [(s.name, s.kind == "ode") for s in state.species]
        transport = [name for name, pointwise in condensed if not pointwise]
        petsc_options = condensed_options(petsc_options, transport)
    return NewtonSolver(
        forms.residuals,
        state.unknowns(),
        petsc_options,
        prefix=prefix,
        lower_bounds=[0.0 if s.nonnegative else None for s in state.species],
        parts=forms.parts,
        integrands=forms.integrands,
        static=forms.static,
        flux_jacobian=flux_jacobian,
        fixed=[(f.index, f.dofs, f.value) for f in forms.fixed],
        splits=splits,
        condensed=condensed,
    )


def restrict_to_inactive(
    sets: Sequence[np.ndarray], inactive: np.ndarray, start: int
) -> list[np.ndarray]:
    """Index sets of the full space renumbered in the VI's reduced (inactive-set) space.

    The reduced space numbers this rank's inactive entries ``start, start + 1, ...`` in the
    order of ``inactive`` (sorted global indices, owned); entries of ``sets`` that are active
    drop out.

    Args:
        sets: Per split, this rank's owned global indices (sorted).
        inactive: This rank's inactive global indices (sorted).
        start: This rank's first index in the reduced space (inactive entries on lower ranks).

    Returns:
        Per split, the reduced indices (PETSc's integer type).
    """
    from petsc4py import PETSc

    out = []
    for ix in sets:
        if inactive.size == 0:  # every entry of this rank active
            out.append(np.zeros(0, dtype=PETSc.IntType))
            continue
        pos = np.searchsorted(inactive, ix)
        hit = (pos < inactive.size) & (inactive[np.minimum(pos, inactive.size - 1)] == ix)
        out.append((start + pos[hit]).astype(PETSc.IntType))
    return out


#: The split of the pointwise (ODE) species in :func:`species_splits`.
SPLIT_LOCAL = "local"
#: Options ``fieldsplit_transport_*`` apply to every transport split (:func:`transport_options`).
SPLIT_TRANSPORT = "transport"


def species_splits(species: Sequence[Species]) -> dict[str, list[int]]:
    """Field splits of the coupled step: one per transported species, then ``local``.

    A transported species (kind ``pde`` or ``algebraic``) couples neighbouring nodes
    (diffusion, chemotaxis): its split, named after it, is where multigrid pays. The pointwise
    (``ode``) species couple only the species at one node, so their joint block is
    block-diagonal by node and an LU of it is exact and cheap: they form one split ``local``
    (left out when there is none).

    Args:
        species: The unknowns' species, in unknown order.

    Returns:
        Split name -> unknown indices, transport splits first.
    """
    splits = {s.name: [i] for i, s in enumerate(species) if s.kind != "ode"}
    local = [i for i, s in enumerate(species) if s.kind == "ode"]
    if SPLIT_LOCAL in splits or SPLIT_TRANSPORT in splits:
        raise ValueError(f"species names {SPLIT_LOCAL!r} and {SPLIT_TRANSPORT!r} are reserved")
    if local:
        splits[SPLIT_LOCAL] = local
    return splits


def transport_options(options: dict[str, Any], splits: dict[str, list[int]]) -> dict[str, Any]:
    """Copy each ``fieldsplit_transport_<opt>`` to ``fieldsplit_<name>_<opt>`` per transport split.

    An option given for one split by name wins over the copied one. Without pointwise species
    (no ``local`` split) the ``fieldsplit_local_*`` options are dropped: PETSc would never read
    them, and unused options are errors.
    """
    head = f"fieldsplit_{SPLIT_TRANSPORT}_"
    drop = (head,) if SPLIT_LOCAL in splits else (head, f"fieldsplit_{SPLIT_LOCAL}_")
    out = {k: v for k, v in options.items() if not k.startswith(drop)}
    names = [name for name in splits if name != SPLIT_LOCAL]
    for key, value in options.items():
        if key.startswith(head):
            for name in names:
                out.setdefault(f"fieldsplit_{name}_{key[len(head) :]}", value)
    return out
