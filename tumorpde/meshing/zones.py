"""Refinement zones: balls around lesions where the mesh is finer (no DOLFINx, no gmsh import).

A :class:`RefineZone` is a ball (centre, radius) inside which edges are at most ``size`` long.
The same zones serve two places:

* at build time, :func:`apply_size_fields` turns them into gmsh ``Ball`` size fields (the atlas
  recipes and ``tumorpde mesh build|from-labels --refine-around``);
* for an existing mesh, :func:`edges_to_split` picks the edges to bisect; the bisection itself
  (DOLFINx, parallel, tags transferred) is :func:`tumorpde.fem.refine.refine_domain`, and
  :func:`tumorpde.meshing.refine.write_mesh_arrays` writes the result back as a ``.msh``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["RefineZone", "ZoneError", "apply_size_fields", "edges_to_split", "parse_zones"]


class ZoneError(ValueError):
    """An invalid refinement zone or zone option; the message names the option and value."""


@dataclass(frozen=True)
class RefineZone:
    """A ball in which the mesh edges should be at most ``size`` long (all lengths in mm).

    Attributes:
        center: Centre of the ball.
        radius: Radius of the ball (> 0).
        size: Target edge length inside the ball (> 0).
    """

    center: tuple[float, float, float]
    radius: float
    size: float

    def __post_init__(self) -> None:
        import math

        if len(self.center) != 3 or not all(math.isfinite(float(c)) for c in self.center):
            raise ZoneError(f"refine zone centre {self.center}: need three finite numbers")
        for name in ("radius", "size"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ZoneError(f"refine zone {name} = {v}: must be a positive length (mm)")


def _floats(text: str, option: str, n: int | None = None) -> list[float]:
    try:
        vals = [float(v) for v in re.split(r"[,\s]+", text.strip()) if v]
    except ValueError:
        raise ZoneError(f"{option} {text!r}: expected numbers separated by commas") from None
    if n is not None and len(vals) != n:
        raise ZoneError(f"{option} {text!r}: expected {n} numbers (x,y,z in mm)")
    return vals


def parse_zones(
    around: list[str] | None, radius: list[float] | None, size: list[float] | None
) -> list[RefineZone]:
    """Refinement zones from the ``--around X,Y,Z --radius R --size H`` options (repeatable).

    ``--radius`` and ``--size`` are given once (used for every ``--around``) or once per
    ``--around``.

    Args:
        around: Centres as ``"x,y,z"`` strings (mm).
        radius: Radii (mm).
        size: Target edge lengths (mm).

    Returns:
        The zones (empty if ``around`` is empty).

    Raises:
        ZoneError: On a malformed centre, mismatched counts or non-positive lengths.
    """
    around = around or []
    if not around:
        if radius or size:
            raise ZoneError("--radius/--size need --around X,Y,Z (the centre of the zone)")
        return []
    out = []
    for opt, vals in (("--radius", radius), ("--size", size)):
        if not vals:
            raise ZoneError(f"--around needs {opt} (mm)")
        if len(vals) not in (1, len(around)):
            raise ZoneError(
                f"{opt} given {len(vals)} times for {len(around)} --around: give it once or "
                "once per --around"
            )
    assert radius is not None and size is not None
    for i, text in enumerate(around):
        c = _floats(text, "--around", 3)
        r = radius[i if len(radius) > 1 else 0]
        h = size[i if len(size) > 1 else 0]
        out.append(RefineZone((c[0], c[1], c[2]), float(r), float(h)))
    return out


def edges_to_split(
    p0: np.ndarray, p1: np.ndarray, zones: list[RefineZone], scale: float = 1.0
) -> np.ndarray:
    """Which edges cross a zone while being longer than the zone's size.

    Args:
        p0: First end points of the edges, shape (n, 3).
        p1: Second end points, shape (n, 3).
        zones: The refinement zones.
        scale: Factor from the coordinates of ``p0``/``p1`` to mm (zones are in mm).

    Returns:
        Boolean mask of shape (n,).
    """
    import numpy as np

    d = (p1 - p0) * scale
    length = np.linalg.norm(d, axis=1)
    mark = np.zeros(length.shape[0], dtype=bool)
    for z in zones:
        c = np.asarray(z.center, dtype=float)
        a = p0 * scale
        t = np.clip(np.einsum("ij,ij->i", c - a, d) / np.maximum(length**2, 1e-300), 0.0, 1.0)
        dist = np.linalg.norm(a + t[:, None] * d - c, axis=1)
        mark |= (dist <= z.radius) & (length > z.size)
    return mark


def apply_size_fields(zones: list[RefineZone], size_out: float) -> None:
    """Make the zones the background mesh size of the current gmsh model.

    Each zone becomes a gmsh ``Ball`` field (``size`` inside, ``size_out`` outside, graded over
    one radius); their minimum is the background field. ``Mesh.MeshSizeMin`` is lowered to the
    smallest zone size when needed. Surfaces meshed before the call (e.g. the remeshed organ
    surfaces of :mod:`tumorpde.meshing.labels`) keep their own edge length: a zone refines the
    volume (and, for CAD geometry such as the lung, the surfaces it crosses).

    Args:
        zones: The refinement zones (nothing is done if empty).
        size_out: Edge length outside the zones (the recipe's target size).
    """
    import gmsh

    if not zones:
        return
    ids = []
    for z in zones:
        f = gmsh.model.mesh.field.add("Ball")
        gmsh.model.mesh.field.setNumber(f, "Radius", z.radius)
        gmsh.model.mesh.field.setNumber(f, "Thickness", z.radius)
        gmsh.model.mesh.field.setNumber(f, "VIn", z.size)
        gmsh.model.mesh.field.setNumber(f, "VOut", size_out)
        for axis, v in zip("XYZ", z.center, strict=True):
            gmsh.model.mesh.field.setNumber(f, f"{axis}Center", v)
        ids.append(f)
    fmin = gmsh.model.mesh.field.add("Min")
    gmsh.model.mesh.field.setNumbers(fmin, "FieldsList", ids)
    gmsh.model.mesh.field.setAsBackgroundMesh(fmin)
    smallest = min(z.size for z in zones)
    if gmsh.option.getNumber("Mesh.MeshSizeMin") > smallest:
        gmsh.option.setNumber("Mesh.MeshSizeMin", smallest)
