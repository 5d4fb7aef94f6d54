"""Seed check: the initial tumor mass and peak the mesh delivers against those the case asks for.

A Gaussian seed ``peak * exp(-|x - c|^2 / r^2)`` enters the run as its P1 interpolant (nodal
values). On a mesh whose cells are large against ``r`` that interpolant can hold a fraction of
the intended cells, or many more, without any error: this module measures it before compute.

For every Gaussian seed:

* delivered mass: the exact integral of the P1 interpolant, ``sum_T |T| * mean(u at the
  vertices of T)`` (what the run reports as ``tumor_burden_mm3`` at t = 0 for this seed
  alone); delivered peak: the largest nodal value;
* requested mass: the integral of the continuous profile over the domain: analytic (product of
  error functions) on a box mesh, a refined quadrature on a mesh file (tetrahedra within 3 r of
  the centre cut 8-fold until their edges are below r, then a 64-point collapsed Gauss rule on
  each); requested peak: ``peak`` (the profile's value at its centre);
* local h: the longest edge of the tetrahedra that reach within ``r`` of the centre, and the h
  the seed needs (:func:`needed_h`).

The kernels here work on tetrahedra given as coordinates (one rank's cells); the fem layer
(:mod:`tumorpde.fem.seeds`) runs them on the loaded (and refined) mesh and reduces over ranks.
Each seed is judged alone (several seeds are summed and capped at 1 in the run). Numpy only;
no dolfinx, no MPI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tumorpde.config.schema import BoxMesh, CaseConfig, GaussianSeed

__all__ = [
    "SeedReport",
    "gaussian_mass_box",
    "gaussian_mass_quadrature",
    "h_near",
    "needed_h",
    "p1_mass_peak",
    "seed_problems",
    "seed_report",
    "seed_sums",
]

#: The seed profile is integrated over the cells within this many radii of its centre
#: (exp(-25) ~ 1e-11 of the peak beyond).
_REACH = 5.0


@dataclass(frozen=True)
class SeedReport:
    """Delivered against requested initial mass and peak of one Gaussian seed.

    Attributes:
        field: Where the seed is in the case (``tumor.initial`` or ``tumor.initial.1``).
        center: Seed centre (mm).
        radius: Seed radius (mm).
        requested_mass: Integral of the continuous profile over the domain (mm^3 at u = 1).
        delivered_mass: Integral of its P1 interpolant (mm^3).
        requested_peak: The profile's peak.
        delivered_peak: Largest nodal value of the interpolant.
        h_local: Longest edge of the tetrahedra within ``radius`` of the centre (mm).
        h_needed: Largest edge that keeps the seed within the tolerance (mm), see
            :func:`needed_h`.
    """

    field: str
    center: tuple[float, float, float]
    radius: float
    requested_mass: float
    delivered_mass: float
    requested_peak: float
    delivered_peak: float
    h_local: float
    h_needed: float

    @property
    def mass_ratio(self) -> float:
        """Delivered / requested mass."""
        return self.delivered_mass / self.requested_mass if self.requested_mass > 0 else 0.0

    @property
    def peak_ratio(self) -> float:
        """Delivered / requested peak."""
        return self.delivered_peak / self.requested_peak

    def ok(self, tolerance: float) -> bool:
        """Whether mass and peak are both within ``tolerance`` (relative) of the request."""
        return abs(self.mass_ratio - 1) <= tolerance and abs(self.peak_ratio - 1) <= tolerance

    def line(self) -> str:
        """One line for ``validate``: delivered/requested mass and peak, h."""
        return (
            f"seed {self.field}: mass {self.delivered_mass:.4g}/{self.requested_mass:.4g} mm^3 "
            f"({100 * self.mass_ratio:.0f} %), peak {self.delivered_peak:.3g}/"
            f"{self.requested_peak:.3g} ({100 * self.peak_ratio:.0f} %), local h "
            f"{self.h_local:.3g} mm (h <= {self.h_needed:.3g} mm guarantees it anywhere)"
        )


def needed_h(radius: float, tolerance: float) -> float:
    """Edge length that keeps a Gaussian seed's P1 peak (and mass) within ``tolerance``.

    The nearest vertex lies up to about 0.6 h from the centre in a tetrahedral mesh of edge h
    (the circumradius of a regular tetrahedron is 0.61 h), where the profile is
    ``exp(-(0.6 h / r)^2)`` of its peak; asking that to be >= 1 - tolerance gives
    ``h <= r sqrt(-ln(1 - tolerance)) / 0.6`` (1.6 mm for r = 3 mm and 10 %). On such meshes the
    mass error measured on box meshes is below the peak error.

    Args:
        radius: Seed radius (mm).
        tolerance: Relative tolerance, in (0, 1).

    Returns:
        The edge length (mm).
    """
    return radius * math.sqrt(-math.log(1 - tolerance)) / 0.6


def _gaussian(seed: GaussianSeed, x: np.ndarray) -> np.ndarray:
    """The profile at points ``x`` (shape (..., 3))."""
    c = np.asarray(seed.center, dtype=float)
    return seed.peak * np.exp(-((x - c) ** 2).sum(axis=-1) / seed.radius**2)


def _volumes(p: np.ndarray) -> np.ndarray:
    """Volumes of tetrahedra given as coordinates, shape (m, 4, 3)."""
    e = p[:, 1:] - p[:, :1]
    return np.abs(np.linalg.det(e)) / 6.0


def p1_mass_peak(points: np.ndarray, tets: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Integral and largest nodal value of a P1 field.

    Args:
        points: Vertex coordinates, shape (n, 3).
        tets: Tetrahedra, shape (m, 4).
        values: Nodal values, shape (n,).

    Returns:
        ``(sum_T |T| mean(values on T), max over the vertices of the tetrahedra)``.
    """
    if not len(tets):
        return 0.0, 0.0
    vol = _volumes(points[tets])
    mass = float((vol * values[tets].mean(axis=1)).sum())
    return mass, float(values[np.unique(tets)].max())


def gaussian_mass_box(seed: GaussianSeed, size: tuple[float, float, float]) -> float:
    """Exact integral of a Gaussian seed over the box ``[0, size]``.

    Args:
        seed: The seed.
        size: Box edges (mm).

    Returns:
        ``peak * prod_i (sqrt(pi) r / 2) (erf((L_i - c_i)/r) + erf(c_i/r))``.
    """
    r = seed.radius
    out = seed.peak
    for c, L in zip(seed.center, size, strict=True):
        out *= math.sqrt(math.pi) * r / 2 * (math.erf((L - c) / r) + math.erf(c / r))
    return out


def _gauss_rule(n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Collapsed (Duffy) Gauss-Legendre rule on the reference tetrahedron (volume 1/6)."""
    g, w = np.polynomial.legendre.leggauss(n)
    g, w = (g + 1) / 2, w / 2
    a, b, c = np.meshgrid(g, g, g, indexing="ij")
    wa, wb, wc = np.meshgrid(w, w, w, indexing="ij")
    x = a
    y = b * (1 - a)
    z = c * (1 - a) * (1 - b)
    wt = wa * wb * wc * (1 - a) ** 2 * (1 - b)
    return np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1), wt.ravel()


#: Children of a regular (red) 8-fold split: indices into (v0..v3, m01, m02, m03, m12, m13, m23).
_RED = np.array(
    [
        [0, 4, 5, 6],
        [4, 1, 7, 8],
        [5, 7, 2, 9],
        [6, 8, 9, 3],
        [4, 5, 6, 8],
        [4, 5, 7, 8],
        [5, 6, 8, 9],
        [5, 7, 8, 9],
    ]
)


def _refine(p: np.ndarray) -> np.ndarray:
    """Split tetrahedra (coordinates, shape (m, 4, 3)) into 8 each, shape (8m, 4, 3)."""
    mids = [(p[:, i] + p[:, j]) / 2 for i, j in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))]
    allp = np.concatenate([p, np.stack(mids, axis=1)], axis=1)  # (m, 10, 3)
    return allp[:, _RED].reshape(-1, 4, 3)


def _max_edge(p: np.ndarray) -> np.ndarray:
    """Longest edge of tetrahedra given as coordinates, shape (m, 4, 3)."""
    pairs = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    return np.max([np.linalg.norm(p[:, i] - p[:, j], axis=1) for i, j in pairs], axis=0)


def gaussian_mass_quadrature(seed: GaussianSeed, points: np.ndarray, tets: np.ndarray) -> float:
    """Integral of a Gaussian seed over a tetrahedral mesh, by refined quadrature.

    Tetrahedra within ``3 r`` of the centre are cut 8-fold until their edges are below ``r``
    (at most 6 levels), then each is integrated with a 64-point collapsed Gauss-Legendre rule,
    up to ``5 r`` (relative error below 1e-5 against the analytic box value, tested).

    Args:
        seed: The seed.
        points: Vertex coordinates (mm), shape (n, 3).
        tets: Tetrahedra, shape (m, 4).

    Returns:
        The integral (mm^3 at u = 1).
    """
    return _quadrature(seed, points[tets])


def _quadrature(seed: GaussianSeed, p: np.ndarray) -> float:
    """:func:`gaussian_mass_quadrature` on tetrahedra given as coordinates (m, 4, 3)."""
    xi, w = _gauss_rule()
    total = 0.0
    c = np.asarray(seed.center, dtype=float)
    for _level in range(7):
        p = p[_near(p, c, _REACH * seed.radius)]  # children far from the seed add nothing
        if not len(p):
            break
        # fine: edges below r, or beyond 3 r from the centre (profile < 1.3e-4 of the peak)
        fine = (_max_edge(p) <= seed.radius) | ~_near(p, c, 3 * seed.radius)
        done = p[fine] if _level < 6 else p
        if len(done):
            e = done[:, 1:] - done[:, :1]  # (k, 3, 3)
            x = done[:, :1] + np.einsum("qj,kjd->kqd", xi, e)
            jac = np.abs(np.linalg.det(e))
            total += float((jac * (_gaussian(seed, x) @ w)).sum())
        p = _refine(p[~fine]) if _level < 6 else p[:0]
    return total


def _gaps(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Distance from ``c`` to the bounding box of each tetrahedron (coordinates (m, 4, 3))."""
    gap = np.maximum(p.min(axis=1) - c, 0) + np.maximum(c - p.max(axis=1), 0)
    return np.sqrt((gap**2).sum(axis=1))


def _near(p: np.ndarray, c: np.ndarray, dist: float) -> np.ndarray:
    """Mask of tetrahedra (coordinates) whose bounding box comes within ``dist`` of ``c``."""
    return _gaps(p, c) <= dist


def seed_sums(seed: GaussianSeed, cells: np.ndarray, *, quadrature: bool) -> dict[str, float]:
    """One seed on some tetrahedra (e.g. one rank's owned cells): the sums to reduce.

    Args:
        seed: The seed.
        cells: Vertex coordinates of the tetrahedra (mm), shape (m, 4, 3).
        quadrature: Also integrate the continuous profile (mesh files; a box has its
            analytic value, :func:`gaussian_mass_box`).

    Returns:
        ``mass`` (integral of the P1 interpolant; sum over ranks), ``peak`` (largest vertex
        value; max), ``requested`` (integral of the profile, 0 without ``quadrature``; sum),
        ``gap`` (distance from the centre to the nearest tetrahedron's bounding box; min;
        then :func:`h_near` with the reduced gap gives the local h).
    """
    c = np.asarray(seed.center, dtype=float)
    p = cells[_near(cells, c, _REACH * seed.radius)]
    out = {"mass": 0.0, "peak": 0.0, "requested": 0.0, "gap": math.inf}
    if not len(p):
        if len(cells):
            out["gap"] = float(_gaps(cells, c).min())
        return out
    g = _gaussian(seed, p)  # (k, 4)
    out["mass"] = float((_volumes(p) * g.mean(axis=1)).sum())
    out["peak"] = float(g.max())
    if quadrature:
        out["requested"] = _quadrature(seed, p)
    out["gap"] = float(_gaps(p, c).min())
    return out


def h_near(seed: GaussianSeed, cells: np.ndarray, gap: float) -> float:
    """Local h: the longest edge of the tetrahedra within ``gap + r`` of the centre.

    ``gap`` is 0 for a centre inside the mesh (the cells within ``r``); otherwise the
    distance to the nearest cells, which then count. 0 if there are none.
    """
    p = cells[_gaps(cells, np.asarray(seed.center, dtype=float)) <= gap + seed.radius]
    return float(_max_edge(p).max()) if len(p) else 0.0


def seed_report(
    where: str, seed: GaussianSeed, sums: dict[str, float], requested: float, h: float, tol: float
) -> SeedReport:
    """The report of one seed from its reduced sums (:func:`seed_sums`)."""
    c = seed.center
    return SeedReport(
        field=where,
        center=(float(c[0]), float(c[1]), float(c[2])),
        radius=seed.radius,
        requested_mass=requested,
        delivered_mass=sums["mass"],
        requested_peak=seed.peak,
        delivered_peak=sums["peak"],
        h_local=h,
        h_needed=needed_h(seed.radius, tol),
    )


def seed_problems(
    cfg: CaseConfig,
    reports: list[SeedReport],
    *,
    allow_coarse: bool = False,
    mesh_hint: str = "MESH",
) -> tuple[list[tuple[str, str]], list[str]]:
    """Turn seed reports into problems (refused) or warnings.

    Args:
        cfg: The case (tolerance ``tumor.initial_tolerance``, ``tumor.allow_coarse_seed``).
        reports: From :func:`tumorpde.fem.seeds.seed_reports`.
        allow_coarse: Warn instead of refusing (``--allow-coarse-seed``); the case key
            ``tumor.allow_coarse_seed`` does the same.
        mesh_hint: The mesh file named in the suggested refine command.

    Returns:
        ``(problems, warnings)``: ``(field, message)`` pairs when refused; messages otherwise.
    """
    tol = cfg.tumor.initial_tolerance
    allow = allow_coarse or cfg.tumor.allow_coarse_seed
    problems: list[tuple[str, str]] = []
    warnings: list[str] = []
    for rep in reports:
        if rep.ok(tol):
            continue
        c = ",".join(f"{v:g}" for v in rep.center)
        size = f"{rep.h_needed:.2g}"
        zone = (
            f"[[mesh.refine]] center = [{', '.join(f'{v:g}' for v in rep.center)}], radius = "
            f"{3 * rep.radius:g}, size = {size} (refined at load)"
        )
        fix = (
            f"refine the mesh near the seed: {zone}, or tumorpde mesh refine {mesh_hint} "
            f"--around {c} --radius {3 * rep.radius:g} --size {size}"
            if not isinstance(cfg.mesh, BoxMesh)
            else f"use more box cells (mesh.cells) or {zone}"
        )
        msg = (
            f"the mesh delivers {100 * rep.mass_ratio:.0f} % of the requested initial mass "
            f"({rep.delivered_mass:.4g} of {rep.requested_mass:.4g} mm^3) and "
            f"{100 * rep.peak_ratio:.0f} % of the peak ({rep.delivered_peak:.3g} of "
            f"{rep.requested_peak:.3g}), beyond the {100 * tol:g} % tolerance "
            f"(tumor.initial_tolerance): local h {rep.h_local:.3g} mm near the seed, a radius "
            f"{rep.radius:g} mm seed needs h <= {rep.h_needed:.2g} mm. Fix: {fix}, or use a "
            f"larger radius (>= {rep.radius * rep.h_local / rep.h_needed:.2g} mm)"
        )
        if allow:
            warnings.append(f"{rep.field}: {msg} (allowed: --allow-coarse-seed)")
        else:
            problems.append(
                (rep.field, msg + "; --allow-coarse-seed (or tumor.allow_coarse_seed) runs it")
            )
    return problems, warnings
