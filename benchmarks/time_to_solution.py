r"""Time to solution at fixed accuracy: tumorpde (P1/P2, uniform/graded) against a voxel grid.

Problem: a spherical tumor of radius ``a`` secreting a growth factor at a uniform rate ``q``
into tissue where it diffuses and decays (``D``, ``k``, ``lam = sqrt(D/k)``)::

    -D lap c + k c = q 1{r < a}    in the ball r < Rb,    c = c_exact on r = Rb.

The exact solution (free space, hence exact for the finite ball with its own Dirichlet data)
is, with ``c`` and ``dc/dr`` continuous at ``r = a``::

    c = q/k + A sinh(r/lam)/r      (r < a),   A = -(q/k) (lam + a) exp(-a/lam)
    c = B exp(-r/lam)/r            (r > a),   B = (q/k) (a cosh(a/lam) - lam sinh(a/lam))

tumorpde side: DOLFINx P1 and P2 on gmsh meshes of the ball with the tumor as its own volume
(the source jump lies on element faces), quasi-uniform or graded away from the tumor surface
(size ``h0 exp(max(r - a, 0)/Lg)``, capped at ``20 h0``). P2 uses second-order (curved,
isoparametric) tetrahedra; P2 on affine tetrahedra is included to show why. Cost = wall time of
assembly + solve (CG + GAMG) on one process; meshing and form compilation are reported apart.
Error: relative L2 error against the exact solution as a UFL expression (quadrature degree 8).

Voxel side: the uniform cell-centred 7-point finite-volume scheme of a voxel code such as
BioFVM, with a staircase source (voxel centre inside the tumor) on a cube of half-width ``Rb``
with exact Dirichlet values on its faces, solved exactly with a fast sine transform. The tumor
centre is placed at random offsets within a voxel and the errors are RMS-averaged over them.
Three error measures are fitted to ``C h^p``: the values at voxel centres (what the scheme
computes), their trilinear interpolant (a continuous field, like the FE one) and the
piecewise-constant field (what an agent reading its voxel sees). The voxel
count for a target error follows from the fit; the cost uses the per-step cost of BioFVM
measured on this machine (``--voxel-step-cost`` s per step per 1M voxels per substrate). BioFVM
is transient (LOD splitting, first order in time), so the steps to steady state are computed
for its LOD scheme in the same sine basis: at its default dt and at the largest dt whose
splitting error is below the target.

Usage::

    python benchmarks/time_to_solution.py            # < 10 min -> benchmarks/results/
    python benchmarks/time_to_solution.py --quick    # smoke run, < 1 min

Writes ``time_to_solution.json`` and ``time_to_solution.png`` and prints the summary table.
Serial only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: BioFVM (PhysiCell's diffusion solver) per-step cost on one core of this machine (issue
#: "Performance"): seconds per step for 1M voxels and one substrate.
BIOFVM_S_PER_MVOXEL_STEP = 0.074
#: BioFVM's default diffusion time step (PhysiCell ``diffusion_dt``), 0.01 min, in hours.
BIOFVM_DT_H = 0.01 / 60.0

TARGETS = (1e-2, 1e-3)


# ------------------------------------------------------------------------------ exact solution
@dataclass(frozen=True)
class Problem:
    """Secreting spherical tumor in decaying tissue (units: mm, h, arbitrary concentration).

    Attributes:
        D: Diffusivity (mm²/h); the default is a growth factor (6e-7 cm²/s).
        k: Decay rate (1/h).
        q: Secretion rate inside the tumor (concentration/h).
        a: Tumor radius (mm).
        rb_over_lam: Outer radius in units of ``lam``.
    """

    D: float = 0.216
    k: float = 0.36
    q: float = 1.0
    a: float = 1.0
    rb_over_lam: float = 8.0

    @property
    def lam(self) -> float:
        """Decay length sqrt(D/k) (mm)."""
        return math.sqrt(self.D / self.k)

    @property
    def rb(self) -> float:
        """Outer radius (mm)."""
        return self.rb_over_lam * self.lam

    @property
    def coef_a(self) -> float:
        """Coefficient of sinh(r/lam)/r inside the tumor."""
        return -(self.q / self.k) * (self.lam + self.a) * math.exp(-self.a / self.lam)

    @property
    def coef_b(self) -> float:
        """Coefficient of exp(-r/lam)/r outside the tumor."""
        lam, a = self.lam, self.a
        return (self.q / self.k) * (a * math.cosh(a / lam) - lam * math.sinh(a / lam))

    def exact(self, r: np.ndarray) -> np.ndarray:
        """Exact concentration at radius ``r`` (numpy)."""
        r = np.maximum(np.asarray(r, dtype=float), 1e-12)
        inside = self.q / self.k + self.coef_a * np.sinh(r / self.lam) / r
        return np.where(r < self.a, inside, self.coef_b * np.exp(-r / self.lam) / r)

    def exact_dr(self, r: np.ndarray) -> np.ndarray:
        """Radial derivative of the exact concentration (numpy)."""
        r = np.maximum(np.asarray(r, dtype=float), 1e-12)
        lam = self.lam
        inside = self.coef_a * (np.cosh(r / lam) / (lam * r) - np.sinh(r / lam) / r**2)
        outside = -self.coef_b * np.exp(-r / lam) * (1.0 / (lam * r) + 1.0 / r**2)
        return np.where(r < self.a, inside, outside)

    def exact_ufl(self, msh: Any) -> Any:
        """Exact concentration as a UFL expression of the spatial coordinate of ``msh``."""
        import ufl

        x = ufl.SpatialCoordinate(msh)
        r = ufl.sqrt(ufl.inner(x, x))
        inside = self.q / self.k + self.coef_a * ufl.sinh(r / self.lam) / r
        outside = self.coef_b * ufl.exp(-r / self.lam) / r
        return ufl.conditional(ufl.lt(r, self.a), inside, outside)


# ---------------------------------------------------------------------------------- voxel side
def _voxel_grid(p: Problem, n: int, offset: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """Cell centres of an n³ grid on [-Rb, Rb]³, shifted by ``offset`` voxels (tumor at 0)."""
    h = 2.0 * p.rb / n
    base = -p.rb + (np.arange(n) + 0.5) * h
    return h, [base + o * h for o in offset]


def _dst_eigs(p: Problem, n: int, h: float) -> np.ndarray:
    """Eigenvalues of -D d²/dx² (3-point, Dirichlet on the faces) in the DST-II basis."""
    return (p.D / h**2) * (2.0 - 2.0 * np.cos(np.pi * (np.arange(n) + 1.0) / n))


def voxel_solve(p: Problem, n: int, offset: np.ndarray) -> dict[str, float]:
    """Steady voxel solution on an n³ grid; errors against the exact solution.

    Cell-centred finite volumes, 7-point Laplacian, decay, staircase source ``q`` in voxels
    whose centre lies in the tumor, exact Dirichlet values on the cube faces (ghost value
    ``2 g - u``). The linear system is solved exactly by a 3D sine transform (DST-II).

    Args:
        p: The problem.
        n: Voxels per side of the cube [-Rb, Rb]³.
        offset: Shift of the grid in voxels (3 numbers in [0, 1)).

    Returns:
        ``h``, ``node`` (relative L2 error of the voxel-centre values over the voxels whose
        centre is in the ball r < Rb), ``pwc`` (same for the piecewise-constant field, the
        in-voxel variation of the exact solution added as h²/12 |grad c|²), ``trilinear``
        (continuous L2 error of the trilinear interpolant of the voxel values) and ``solve_s``.
    """
    import scipy.fft as sf

    h, xs = _voxel_grid(p, n, offset)
    X, Y, Z = np.meshgrid(*xs, indexing="ij", sparse=True)
    R = np.sqrt(X * X + Y * Y + Z * Z)
    b = p.q * (p.a > R).astype(float)
    c2 = 2.0 * p.D / h**2
    lo = [x[0] - 0.5 * h for x in xs]
    hi = [x[-1] + 0.5 * h for x in xs]
    b[0, :, :] += c2 * p.exact(np.sqrt(lo[0] ** 2 + Y * Y + Z * Z))[0]
    b[-1, :, :] += c2 * p.exact(np.sqrt(hi[0] ** 2 + Y * Y + Z * Z))[0]
    b[:, 0, :] += c2 * p.exact(np.sqrt(X * X + lo[1] ** 2 + Z * Z))[:, 0, :]
    b[:, -1, :] += c2 * p.exact(np.sqrt(X * X + hi[1] ** 2 + Z * Z))[:, 0, :]
    b[:, :, 0] += c2 * p.exact(np.sqrt(X * X + Y * Y + lo[2] ** 2))[:, :, 0]
    b[:, :, -1] += c2 * p.exact(np.sqrt(X * X + Y * Y + hi[2] ** 2))[:, :, 0]
    t0 = time.perf_counter()
    mu = _dst_eigs(p, n, h)
    bh = sf.dstn(b, type=2, norm="ortho", overwrite_x=True)
    bh /= mu[:, None, None] + mu[None, :, None] + mu[None, None, :] + p.k
    u = sf.idstn(bh, type=2, norm="ortho", overwrite_x=True)
    solve_s = time.perf_counter() - t0
    tri2, tri_norm2 = _trilinear_error2(p, u, xs, h)
    inside = p.rb > R
    ce = p.exact(R)[inside]
    err2 = float(((u[inside] - ce) ** 2).sum())
    norm2 = float((ce**2).sum())
    var2 = float((p.exact_dr(R)[inside] ** 2).sum()) * h**2 / 12.0
    return {
        "h": h,
        "node": math.sqrt(err2 / norm2),
        "pwc": math.sqrt((err2 + var2) / norm2),
        "trilinear": math.sqrt(tri2 / tri_norm2),
        "solve_s": solve_s,
    }


def _trilinear_error2(
    p: Problem, u: np.ndarray, xs: list[np.ndarray], h: float
) -> tuple[float, float]:
    """Squared L2 error and norm of the trilinear interpolant of voxel values (in r < Rb).

    Integrated over the cells of the dual grid (corners at voxel centres) with the 2³-point
    Gauss rule, one slab of dual cells at a time.
    """
    g = 0.5 + np.array([-0.5, 0.5]) / math.sqrt(3.0)
    err2 = norm2 = 0.0
    y0, z0 = xs[1][:-1, None], xs[2][None, :-1]
    for i in range(u.shape[0] - 1):
        for gx in g:
            ux = (1.0 - gx) * u[i] + gx * u[i + 1]
            x = xs[0][i] + gx * h
            for gy in g:
                uy = (1.0 - gy) * ux[:-1, :] + gy * ux[1:, :]
                for gz in g:
                    uz = (1.0 - gz) * uy[:, :-1] + gz * uy[:, 1:]
                    r = np.sqrt(x * x + (y0 + gy * h) ** 2 + (z0 + gz * h) ** 2)
                    c = np.where(p.rb > r, p.exact(r), 0.0)
                    err2 += float(((uz - c)[p.rb > r] ** 2).sum())
                    norm2 += float((c * c).sum())
    return err2, norm2


def fit_power(h: list[float], e: list[float]) -> tuple[float, float]:
    """Least-squares fit of ``e = C h^p`` in log-log; returns ``(C, p)``."""
    p_, logc = np.polyfit(np.log(h), np.log(e), 1)
    return float(math.exp(logc)), float(p_)


def voxel_study(p: Problem, ns: list[int], n_offsets: int, seed: int = 1) -> dict[str, Any]:
    """Voxel errors for the grids ``ns`` (RMS over random offsets) and their power-law fits."""
    rng = np.random.default_rng(seed)
    offsets = rng.random((n_offsets, 3))
    points = []
    for n in ns:
        runs = [voxel_solve(p, n, off) for off in offsets]
        points.append(
            {
                "n_per_side": n,
                "h": runs[0]["h"],
                "voxels_cube": n**3,
                "voxels_ball": 4.0 / 3.0 * math.pi * p.rb**3 / runs[0]["h"] ** 3,
                "err_node": math.sqrt(np.mean([r["node"] ** 2 for r in runs])),
                "err_node_min": min(r["node"] for r in runs),
                "err_node_max": max(r["node"] for r in runs),
                "err_pwc": math.sqrt(np.mean([r["pwc"] ** 2 for r in runs])),
                "err_trilinear": math.sqrt(np.mean([r["trilinear"] ** 2 for r in runs])),
                "fast_solve_s": float(np.mean([r["solve_s"] for r in runs])),
            }
        )
    hs = [q["h"] for q in points]
    fits = {}
    for key in ("node", "trilinear", "pwc"):
        c, pw = fit_power(hs, [q[f"err_{key}"] for q in points])
        fits[key] = {"C": c, "p": pw}
    return {"offsets": offsets.tolist(), "points": points, "fits": fits}


def voxel_needed(p: Problem, fit: dict[str, float], tol: float) -> dict[str, float]:
    """Voxel size and count (in the ball; the bounding cube has 6/pi times more) for ``tol``."""
    h = (tol / fit["C"]) ** (1.0 / fit["p"])
    ball = 4.0 / 3.0 * math.pi * p.rb**3 / h**3
    return {"h": h, "voxels_ball": ball, "voxels_cube": (2.0 * p.rb / h) ** 3}


def lod_study(p: Problem, n: int, tols: tuple[float, ...], dt_default: float) -> dict[str, Any]:
    """Steps to steady state of BioFVM's LOD scheme, from the zero state, for each target.

    The scheme per step: ``u += dt q``, then three implicit 1D solves, each with decay ``k/3``:
    ``u <- Lz^-1 Ly^-1 Lx^-1 u`` with ``Ld = I + dt (Ad + k/3)``. With zero Dirichlet data all
    ``Ld`` are diagonal in the 3D sine basis, so the fixed point (which differs from the
    steady state by the splitting error, growing with dt) and the error after ``m`` steps,
    ``||G^m u_fp|| / ||u_fp||`` with ``G = 1/(Lx Ly Lz)``, are computed exactly, mode by mode.

    Args:
        p: The problem.
        n: Voxels per side of the proxy grid (the splitting error does not depend on h once the
            field is resolved).
        tols: Target relative errors.
        dt_default: BioFVM's default time step (h).

    Returns:
        Per target: steps at ``dt_default``, the largest dt with splitting error <= target and
        the steps at that dt (each error part <= target on its own).
    """
    import scipy.fft as sf

    h, xs = _voxel_grid(p, n, np.full(3, 0.5))
    X, Y, Z = np.meshgrid(*xs, indexing="ij", sparse=True)
    f = p.q * (p.a > np.sqrt(X * X + Y * Y + Z * Z)).astype(float)
    fh = sf.dstn(f, type=2, norm="ortho")
    mu = _dst_eigs(p, n, h)
    mx, my, mz = mu[:, None, None], mu[None, :, None], mu[None, None, :]
    u_ss = fh / (mx + my + mz + p.k)
    n_ss = float(np.linalg.norm(u_ss))

    def scheme(dt: float) -> tuple[np.ndarray, np.ndarray]:
        ax, ay, az = (dt * (m + p.k / 3.0) for m in (mx, my, mz))
        pm1 = ax + ay + az + ax * ay + ay * az + ax * az + ax * ay * az  # (1+ax)(1+ay)(1+az)-1
        return dt * fh / pm1, -np.log1p(pm1)  # fixed point, log G

    def split_err(dt: float) -> float:
        return float(np.linalg.norm(scheme(dt)[0] - u_ss)) / n_ss

    def steps(dt: float, tol: float) -> int:
        u_fp, log_g = scheme(dt)
        w2, n_fp = u_fp**2, float(np.linalg.norm(u_fp))

        def err(m: int) -> float:
            return math.sqrt(float((w2 * np.exp(2.0 * m * log_g)).sum())) / n_fp

        hi = 1
        while err(hi) > tol:
            hi *= 2
        lo = hi // 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if err(mid) <= tol else (mid, hi)
        return hi

    out: dict[str, Any] = {"n_per_side": n, "h": h, "per_target": {}}
    for tol in tols:
        lo, hi = math.log(dt_default), math.log(1e3)
        if split_err(math.exp(hi)) <= tol:
            lo = hi
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if split_err(math.exp(mid)) <= tol else (lo, mid)
        dt_max = math.exp(lo)
        out["per_target"][f"{tol:g}"] = {
            "dt_default_h": dt_default,
            "split_err_default_dt": split_err(dt_default),
            "steps_default_dt": steps(dt_default, tol),
            "dt_max_h": dt_max,
            "steps_dt_max": steps(dt_max, tol),
            "relaxation_estimate_T_h": math.log(1.0 / tol) / p.k,
        }
    return out


# ------------------------------------------------------------------------------------- FE side
@dataclass(frozen=True)
class Family:
    """A mesh/element family for the refinement study."""

    name: str
    degree: int
    geometry_order: int
    graded: bool
    h0: tuple[float, ...]


def families(quick: bool) -> list[Family]:
    """The refinement families (element sizes ``h0`` in mm) of the default or quick study."""
    if quick:
        return [
            Family("P1 uniform", 1, 1, False, (0.9, 0.7)),
            Family("P1 graded", 1, 1, True, (0.3, 0.21, 0.15)),
            Family("P2 graded (curved)", 2, 2, True, (0.5, 0.36)),
        ]
    return [
        Family("P1 uniform", 1, 1, False, (0.7, 0.5, 0.36, 0.26)),
        Family("P1 graded", 1, 1, True, (0.24, 0.17, 0.12, 0.085, 0.06, 0.045)),
        Family("P2 uniform (curved)", 2, 2, False, (0.9, 0.65, 0.48)),
        Family("P2 graded (curved)", 2, 2, True, (0.5, 0.36, 0.26, 0.19, 0.14)),
        Family("P2 graded (affine)", 2, 1, True, (0.36, 0.26, 0.19)),
    ]


def build_mesh(p: Problem, h0: float, graded: bool, order: int, grading: float) -> Any:
    """Gmsh ball of radius Rb with the tumor ball as its own volume (physical groups).

    Args:
        p: The problem.
        h0: Element size (uniform), or at and inside the tumor surface (graded).
        graded: Grade as ``h0 exp(max(r - a, 0)/grading)``, capped at ``20 h0``.
        order: Geometry order (2: curved tetrahedra, nodes on the spheres).
        grading: Grading length (mm).

    Returns:
        ``(MeshData, seconds)``; cell tags tumor = 1, host = 2, facet tag outer = 10.
    """
    from mpi4py import MPI

    import gmsh
    from dolfinx.io import gmsh as gmshio

    gmsh.initialize()
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("tumor_in_ball")
        occ = gmsh.model.occ
        ball = occ.addSphere(0.0, 0.0, 0.0, p.rb)
        tum = occ.addSphere(0.0, 0.0, 0.0, p.a)
        occ.fragment([(3, ball)], [(3, tum)])
        occ.synchronize()
        vols = [t for _, t in gmsh.model.getEntities(3)]
        tumor = min(vols, key=lambda t: occ.getMass(3, t))
        inner = {s for _, s in gmsh.model.getBoundary([(3, tumor)], oriented=False)}
        outer = [s for _, s in gmsh.model.getEntities(2) if s not in inner]
        gmsh.model.addPhysicalGroup(3, [tumor], tag=1, name="tumor")
        gmsh.model.addPhysicalGroup(3, [v for v in vols if v != tumor], tag=2, name="host")
        gmsh.model.addPhysicalGroup(2, outer, tag=10, name="outer")
        for opt in ("MeshSizeFromCurvature", "MeshSizeFromPoints", "MeshSizeExtendFromBoundary"):
            gmsh.option.setNumber(f"Mesh.{opt}", 0)
        gmsh.option.setNumber("Mesh.RandomSeed", 1)
        if graded:
            fld = gmsh.model.mesh.field.add("MathEval")
            expr = f"{h0}*Exp(Max(Sqrt(x*x+y*y+z*z)-{p.a},0)/{grading})"
            gmsh.model.mesh.field.setString(fld, "F", expr)
            gmsh.model.mesh.field.setAsBackgroundMesh(fld)
            gmsh.option.setNumber("Mesh.MeshSizeMax", 20.0 * h0)
        else:
            gmsh.option.setNumber("Mesh.MeshSizeMin", h0)
            gmsh.option.setNumber("Mesh.MeshSizeMax", h0)
        t0 = time.perf_counter()
        gmsh.model.mesh.generate(3)
        if order == 2:
            gmsh.model.mesh.setOrder(2)
        seconds = time.perf_counter() - t0
        md = gmshio.model_to_mesh(gmsh.model, MPI.COMM_SELF, 0, gdim=3)
    finally:
        gmsh.finalize()
    return md, seconds


def fe_solve(p: Problem, md: Any, degree: int, rtol: float, repeats: int) -> dict[str, Any]:
    """Assemble and solve the steady problem; time it; relative L2 error against the exact.

    Args:
        p: The problem.
        md: Mesh data from :func:`build_mesh`.
        degree: Lagrange degree.
        rtol: CG relative residual tolerance.
        repeats: Timed repetitions of assembly + solve (the fastest is kept).

    Returns:
        Sizes, times (``setup_s``: forms and boundary data; ``assemble_s``, ``solve_s``,
        ``cost_s`` = their sum), Krylov iterations and ``rel_l2``.
    """
    from petsc4py import PETSc

    import ufl
    from dolfinx import fem
    from dolfinx.fem.petsc import apply_lifting, assemble_matrix, assemble_vector, set_bc

    msh, ct, ft = md.mesh, md.cell_tags, md.facet_tags
    t0 = time.perf_counter()
    V = fem.functionspace(msh, ("Lagrange", degree))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    dx = ufl.Measure("dx", domain=msh, subdomain_data=ct)
    a = fem.form((p.D * ufl.inner(ufl.grad(u), ufl.grad(v)) + p.k * u * v) * dx)
    rhs = fem.form(p.q * v * dx(1))
    g = fem.Function(V)
    g.interpolate(lambda x: p.exact(np.sqrt((x**2).sum(axis=0))))
    msh.topology.create_connectivity(2, 3)
    bc = fem.dirichletbc(g, fem.locate_dofs_topological(V, 2, ft.find(10)))
    uh = fem.Function(V)
    setup_s = time.perf_counter() - t0
    best: tuple[float, float, int] | None = None
    for _ in range(repeats):
        t1 = time.perf_counter()
        A = assemble_matrix(a, bcs=[bc])
        A.assemble()
        b = assemble_vector(rhs)
        apply_lifting(b, [a], [[bc]])
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        set_bc(b, [bc])
        t2 = time.perf_counter()
        ksp = PETSc.KSP().create(msh.comm)
        ksp.setOperators(A)
        ksp.setType("cg")
        ksp.getPC().setType("gamg")
        ksp.setTolerances(rtol=rtol, atol=0.0)
        uh.x.petsc_vec.set(0.0)
        ksp.solve(b, uh.x.petsc_vec)
        t3 = time.perf_counter()
        if ksp.getConvergedReason() <= 0:
            raise RuntimeError(f"CG+GAMG did not converge (reason {ksp.getConvergedReason()})")
        its = ksp.getIterationNumber()
        for obj in (ksp, A, b):
            obj.destroy()
        if best is None or (t3 - t1) < best[0] + best[1]:
            best = (t2 - t1, t3 - t2, its)
    assert best is not None
    uh.x.scatter_forward()
    ex = p.exact_ufl(msh)
    dq = ufl.Measure("dx", domain=msh, metadata={"quadrature_degree": 8})
    err2 = fem.assemble_scalar(fem.form((uh - ex) ** 2 * dq))
    nrm2 = fem.assemble_scalar(fem.form(ex**2 * dq))
    return {
        "dofs": V.dofmap.index_map.size_global,
        "cells": msh.topology.index_map(3).size_global,
        "setup_s": setup_s,
        "assemble_s": best[0],
        "solve_s": best[1],
        "cost_s": best[0] + best[1],
        "ksp_its": best[2],
        "rel_l2": math.sqrt(err2 / nrm2),
    }


def fe_study(
    p: Problem, fams: list[Family], grading: float, rtol: float, log: Any
) -> list[dict[str, Any]]:
    """Run every family and level; one record per mesh."""
    records = []
    for fam in fams:
        for h0 in fam.h0:
            md, mesh_s = build_mesh(p, h0, fam.graded, fam.geometry_order, grading)
            n_cells = md.mesh.topology.index_map(3).size_global
            repeats = 3 if n_cells < 100_000 else 1
            rec = {"family": fam.name, "degree": fam.degree, "geometry_order": fam.geometry_order}
            rec |= {"graded": fam.graded, "h0": h0, "mesh_s": mesh_s}
            rec |= fe_solve(p, md, fam.degree, rtol, repeats)
            records.append(rec)
            log(
                f"  {fam.name:20s} h0={h0:<6g} dofs={rec['dofs']:>8d} err={rec['rel_l2']:.3e} "
                f"cost={rec['cost_s']:.3f}s (asm {rec['assemble_s']:.3f}, solve "
                f"{rec['solve_s']:.3f}, {rec['ksp_its']} its) mesh={mesh_s:.1f}s"
            )
            del md
    return records


def rates(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """L2 rates per family in terms of ``h ~ dofs^(-1/3)``, between successive levels."""
    out: dict[str, list[float]] = {}
    for fam in dict.fromkeys(r["family"] for r in records):
        rs = [r for r in records if r["family"] == fam]
        out[fam] = [
            -3.0 * math.log(r1["rel_l2"] / r0["rel_l2"]) / math.log(r1["dofs"] / r0["dofs"])
            for r0, r1 in itertools.pairwise(rs)
        ]
    return out


def at_target(rs: list[dict[str, Any]], tol: float) -> dict[str, Any]:
    """Cost and dofs of one family at error ``tol``, interpolated/extrapolated in log-log.

    Between the two levels that bracket ``tol`` (or the last two if none does: then
    ``extrapolated`` is true); if the coarsest level already meets ``tol`` it is returned.
    """
    rs = sorted(rs, key=lambda r: r["dofs"])
    if rs[0]["rel_l2"] <= tol:
        return {"dofs": rs[0]["dofs"], "cost_s": rs[0]["cost_s"], "how": "measured (coarsest)"}
    pair = next(((r0, r1) for r0, r1 in itertools.pairwise(rs) if r1["rel_l2"] <= tol), None)
    how = "interpolated"
    if pair is None:
        pair, how = (rs[-2], rs[-1]), "extrapolated"
    r0, r1 = pair
    s = math.log(tol / r0["rel_l2"]) / math.log(r1["rel_l2"] / r0["rel_l2"])

    def lerp(key: str) -> float:
        return math.exp(math.log(r0[key]) + s * (math.log(r1[key]) - math.log(r0[key])))

    return {"dofs": lerp("dofs"), "cost_s": lerp("cost_s"), "how": how}


# ------------------------------------------------------------------------------------ summary
def summarize(
    p: Problem,
    fe: list[dict[str, Any]],
    vox: dict[str, Any],
    lod: dict[str, Any],
    step_cost: float,
) -> list[dict[str, Any]]:
    """One row per target and voxel error measure: best tumorpde configuration and voxel costs."""
    rows = []
    for tol in TARGETS:
        per_family = {
            fam: at_target([r for r in fe if r["family"] == fam], tol)
            for fam in dict.fromkeys(r["family"] for r in fe)
        }
        best_fam = min(per_family, key=lambda f: per_family[f]["cost_s"])
        best = per_family[best_fam]
        lt = lod["per_target"][f"{tol:g}"]
        fe_steps = math.ceil(math.log(1.0 / tol) / math.log(1.0 + 10.0))  # BE, dt = 10/k
        for measure in ("node", "trilinear", "pwc"):
            need = voxel_needed(p, vox["fits"][measure], tol)
            per_step = need["voxels_ball"] / 1e6 * step_cost
            rows.append(
                {
                    "target": tol,
                    "voxel_error_measure": measure,
                    "fe_best": best_fam,
                    "fe_how": best["how"],
                    "fe_dofs": best["dofs"],
                    "fe_cost_s": best["cost_s"],
                    "fe_by_family": per_family,
                    "fe_transient_steps_dt_10_over_k": fe_steps,
                    "fe_transient_cost_bound_s": fe_steps * best["cost_s"],
                    "voxel_h": need["h"],
                    "voxels_ball": need["voxels_ball"],
                    "voxels_cube": need["voxels_cube"],
                    "voxel_step_s": per_step,
                    "voxel_steps_default_dt": lt["steps_default_dt"],
                    "voxel_steady_default_dt_s": per_step * lt["steps_default_dt"],
                    "voxel_steps_dt_max": lt["steps_dt_max"],
                    "voxel_steady_dt_max_s": per_step * lt["steps_dt_max"],
                    "ratio_step": per_step / best["cost_s"],
                    "ratio_steady_dt_max": per_step * lt["steps_dt_max"] / best["cost_s"],
                    "ratio_steady_default_dt": per_step * lt["steps_default_dt"] / best["cost_s"],
                }
            )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The summary as a fixed-width text table."""
    head = (
        f"{'target':>6s} {'tumorpde best':24s} {'dofs':>8s} {'wall s':>7s} {'voxel':>5s} "
        f"{'h mm':>6s} {'voxels':>8s} {'step s':>8s} {'steady s':>9s} {'steady s':>9s} "
        f"{'ratio':>7s} {'ratio':>7s}\n"
        f"{'':6s} {'':24s} {'':8s} {'':7s} {'error':>5s} {'':6s} {'(ball)':>8s} {'':8s} "
        f"{'dt max':>9s} {'dt .01m':>9s} {'step':>7s} {'steady':>7s}"
    )
    lines = [head]
    for r in rows:
        fe = f"{r['fe_best']}{'*' if r['fe_how'] == 'extrapolated' else ''}"
        lines.append(
            f"{r['target']:6.0e} {fe:24s} {r['fe_dofs']:8.3g} {r['fe_cost_s']:7.3f} "
            f"{r['voxel_error_measure'][:5]:>5s} {r['voxel_h']:6.4f} {r['voxels_ball']:8.3g} "
            f"{r['voxel_step_s']:8.3g} {r['voxel_steady_dt_max_s']:9.3g} "
            f"{r['voxel_steady_default_dt_s']:9.3g} {r['ratio_step']:7.3g} "
            f"{r['ratio_steady_dt_max']:7.3g}"
        )
    return "\n".join(lines)


def plot(
    p: Problem,
    fe: list[dict[str, Any]],
    vox: dict[str, Any],
    lod: dict[str, Any],
    step_cost: float,
    path: Path,
) -> None:
    """Error against unknowns and against cost (per step and to steady state)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for fam in dict.fromkeys(r["family"] for r in fe):
        rs = [r for r in fe if r["family"] == fam]
        e = [r["rel_l2"] for r in rs]
        axes[0].loglog([r["dofs"] for r in rs], e, "o-", label=f"tumorpde {fam}")
        axes[1].loglog([r["cost_s"] for r in rs], e, "o-", label=f"tumorpde {fam}")
    errs = np.geomspace(3e-4, 0.3, 50)
    styles = {
        "node": ("k", "voxel values"),
        "trilinear": ("tab:brown", "voxel, trilinear"),
        "pwc": ("0.5", "voxel, piecewise const."),
    }
    for key, (color, label) in styles.items():
        pts = vox["points"]
        fit = vox["fits"][key]
        axes[0].loglog(
            [q["voxels_ball"] for q in pts], [q[f"err_{key}"] for q in pts], "s", color=color
        )
        n_fit = [voxel_needed(p, fit, t)["voxels_ball"] for t in errs]
        fit_label = f"{label}: {fit['C']:.3g} h^{fit['p']:.2f}"
        axes[0].loglog(n_fit, errs, "--", color=color, label=fit_label)
        step = np.array(n_fit) / 1e6 * step_cost
        axes[1].loglog(step, errs, "--", color=color, label=f"{label}: 1 BioFVM step")
    # time to steady state (dt max) for the voxel values, at the two targets
    for tol in TARGETS:
        lt = lod["per_target"][f"{tol:g}"]
        n_vox = voxel_needed(p, vox["fits"]["node"], tol)["voxels_ball"]
        for steps, mk in ((lt["steps_dt_max"], "v"), (lt["steps_default_dt"], "^")):
            axes[1].loglog(n_vox / 1e6 * step_cost * steps, tol, mk, color="k", ms=8)
    axes[1].plot([], [], "kv", label="voxel values to steady state, largest accurate dt")
    axes[1].plot([], [], "k^", label="... at BioFVM default dt = 0.01 min")
    for ax in axes:
        for tol in TARGETS:
            ax.axhline(tol, color="r", lw=0.6, ls=":")
        ax.set_ylabel("relative L2 error")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_xlabel("unknowns (FE dofs; voxels in the ball r < Rb)")
    axes[1].set_xlabel(
        f"cost (s, one core): tumorpde assembly + solve; voxel {step_cost} s/Mvox/step"
    )
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=6)
    fig.suptitle(
        f"Secreting tumor a={p.a} mm, D={p.D} mm²/h, k={p.k}/h, Rb={p.rb_over_lam:g} λ: "
        "steady state, error vs cost"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------- main
def assumptions(p: Problem, step_cost: float, grading: float, rtol: float) -> list[str]:
    """The modelling assumptions behind the comparison, stored in the JSON."""
    return [
        "Steady problem; the exact solution is the free-space one, exact in the ball with its "
        "own Dirichlet data on r = Rb (FE) and on the cube faces (voxels).",
        "tumorpde cost = wall time of matrix + vector assembly + CG/GAMG solve (rtol "
        f"{rtol:g}) on one process of a shared 2-core machine; meshing and form compilation "
        "are one-off and reported separately (mesh_s, setup_s).",
        f"Graded meshes: size h0 exp(max(r - a, 0)/Lg), Lg = {grading:.3g} mm (2 lambda), "
        "capped at 20 h0; P2 'curved' = second-order (isoparametric) tetrahedra.",
        "Voxel scheme: cell-centred 7-point FV, staircase source (voxel centre in tumor), exact "
        "Dirichlet on the faces of the cube [-Rb, Rb]^3, solved exactly (sine transform); error "
        "RMS over random positions of the tumor centre inside a voxel, over voxels in r < Rb.",
        "Voxel error measures: 'node' = discrete L2 of the values at voxel centres (favourable "
        "to the voxel code: the FE error is the continuous L2 norm, including the variation "
        "inside elements); 'trilinear' = continuous L2 of the trilinear interpolant of the voxel "
        "values (the like-for-like comparison with the FE field); 'pwc' = continuous L2 of the "
        "piecewise-constant field an agent reads from its voxel (BioFVM/PhysiCell usage).",
        "Voxel count = voxels in the ball r < Rb (the bounding cube a voxel code simulates has "
        "6/pi = 1.9x more): favourable to the voxel code.",
        f"Voxel cost per step = voxels/1e6 x {step_cost} s (BioFVM LOD, one substrate, one core "
        "of this machine).",
        "Voxel steps to steady state from zero: BioFVM's LOD scheme (u += dt q, then implicit "
        "1D solves with decay k/3 each), error after m steps computed mode by mode; 'dt max' = "
        "largest dt whose splitting error is <= target, with the transient also decayed to the "
        "target (each error part <= target on its own, so the voxel code may end up to ~3x "
        "less accurate than tumorpde: a lower bound on its cost); 'default dt' = 0.01 min.",
        "tumorpde solves the steady state directly; its backward Euler has no splitting error, "
        "so a transient run reaches the same steady state within the target in "
        "ceil(ln(1/tol)/ln(1 + k dt)) steps (2 and 3 steps at dt = 10/k).",
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the study and return the JSON document."""
    from tumorpde.studies.bench import machine_info

    t_start = time.perf_counter()
    p = Problem()
    grading = 2.0 * p.lam
    quick = args.quick

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", flush=True)

    log(f"problem: lam={p.lam:.4f} mm, Rb={p.rb:.3f} mm, c(0)={float(p.exact(0.0)):.4f}")
    log("FE study")
    fe = fe_study(p, families(quick), grading, args.rtol, log)
    log("voxel study")
    ns = [32, 48, 64] if quick else [32, 48, 64, 96, 128, 160, 192]
    vox = voxel_study(p, ns, 2 if quick else 4)
    for q in vox["points"]:
        n, h, e0, e1, e2 = (
            q[k] for k in ("n_per_side", "h", "err_node", "err_trilinear", "err_pwc")
        )
        log(f"  n={n:4d} h={h:.4f} node={e0:.3e} trilinear={e1:.3e} pwc={e2:.3e}")
    for key, fit in vox["fits"].items():
        log(f"  fit {key}: error = {fit['C']:.4g} h^{fit['p']:.3f}")
    log("LOD steps to steady state")
    lod = lod_study(p, 48 if quick else 96, TARGETS, BIOFVM_DT_H)
    lod_check = lod_study(p, 32 if quick else 64, TARGETS, BIOFVM_DT_H)  # proxy-grid check
    for tol, lt in lod["per_target"].items():
        dt_c = lod_check["per_target"][tol]["dt_max_h"]
        log(
            f"  target {tol}: default dt {lt['steps_default_dt']} steps; dt max "
            f"{lt['dt_max_h']:.4g} h ({dt_c:.4g} h on the coarser proxy) {lt['steps_dt_max']} steps"
        )
    rows = summarize(p, fe, vox, lod, args.voxel_step_cost)
    doc = {
        "benchmark": "time_to_solution",
        "quick": quick,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine_info(),
        "load_average_at_start": list(os.getloadavg()),
        "problem": asdict(p) | {"lam": p.lam, "rb": p.rb, "grading_length": grading},
        "targets": list(TARGETS),
        "assumptions": assumptions(p, args.voxel_step_cost, grading, args.rtol),
        "biofvm": {"s_per_Mvoxel_step": args.voxel_step_cost, "default_dt_h": BIOFVM_DT_H},
        "fe": fe,
        "fe_rates": rates(fe),
        "voxel": vox,
        "lod": lod,
        "lod_coarser_proxy": lod_check,
        "summary": rows,
        "runtime_s": time.perf_counter() - t_start,
    }
    return doc


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the study, write JSON + PNG, print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run (< 1 min)")
    ap.add_argument("--out", default="benchmarks/results", help="output directory")
    ap.add_argument(
        "--voxel-step-cost",
        type=float,
        default=BIOFVM_S_PER_MVOXEL_STEP,
        help="voxel code cost, s per step per 1M voxels (one substrate)",
    )
    ap.add_argument("--rtol", type=float, default=1e-8, help="CG relative tolerance")
    args = ap.parse_args(argv)

    # isort: off
    import tumorpde.fem.backend  # noqa: F401  (before mpi4py/dolfinx)
    from mpi4py import MPI

    # isort: on

    if MPI.COMM_WORLD.size > 1:
        print("time_to_solution.py is serial: run it without mpiexec", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = run(args)
    (out / "time_to_solution.json").write_text(json.dumps(doc, indent=1))
    plot(
        Problem(),
        doc["fe"],
        doc["voxel"],
        doc["lod"],
        args.voxel_step_cost,
        out / "time_to_solution.png",
    )
    print(format_table(doc["summary"]))
    print("* extrapolated beyond the finest level")
    print(
        "rates (L2, h ~ dofs^-1/3):",
        {k: [round(x, 2) for x in v] for k, v in doc["fe_rates"].items()},
    )
    print(
        f"wrote {out / 'time_to_solution.json'}, {out / 'time_to_solution.png'} "
        f"in {doc['runtime_s']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
