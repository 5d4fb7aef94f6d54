"""Scenes: one panel per field of an organ cut through the lesion, drawn off-screen with PyVista.

Each panel shows the data on a planar cut through the lesion's centre (flat shading, so the
colours match the colour bar), the far half of the organ as neutral translucent context, the
outlines of every region on the cut (grey/white, cortex/marrow, both lungs), a scale bar and
orientation marks. The camera is parallel and framed on the organ's bounds (never cropped);
an optional second row zooms onto the lesion. PyVista is imported inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tumorpde.output.viz.presets import ORGAN_VIEWS, FieldStyle, OrganView, nice_length

__all__ = ["MODES", "Panel", "lesion", "pyvista", "render_grids", "to_grid", "view_for"]

#: Scene modes: planar cut, oblique clip of the far half, tumor isosurfaces.
MODES = ("slice", "clip", "iso")

_CONTEXT = "#9a9a9a"  # neutral grey of the organ context
_OUTLINE = "#202020"


def pyvista() -> Any:
    """PyVista set up for off-screen rendering through EGL (imported on first use).

    Returns:
        The ``pyvista`` module.

    Raises:
        ImportError: PyVista is not installed (``pip install 'tumorpde[viz]'``).
    """
    os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")
    # Render through EGL (Debian libegl1 + libegl-mesa0): no X server needed, no warning.
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    try:
        import pyvista as pv
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("pictures need pyvista: pip install 'tumorpde[viz]'") from exc
    pv.OFF_SCREEN = True
    return pv


def to_grid(
    points: np.ndarray,
    cells: np.ndarray,
    fields: Mapping[str, np.ndarray],
    cell_regions: np.ndarray | None = None,
) -> Any:
    """A tetrahedral ``pyvista.UnstructuredGrid`` from arrays (duplicate points merged).

    Args:
        points: Vertex coordinates (n, 3).
        cells: Tetrahedra (m, 4).
        fields: Nodal values per field.
        cell_regions: Region tag per cell.

    Returns:
        The grid with point data and (if given) cell data ``region``.
    """
    pv = pyvista()
    cells = np.asarray(cells, dtype=np.int64)
    conn = np.hstack([np.full((cells.shape[0], 1), 4, dtype=np.int64), cells]).ravel()
    ctypes = np.full(cells.shape[0], pv.CellType.TETRA, dtype=np.uint8)
    grid = pv.UnstructuredGrid(conn, ctypes, np.asarray(points, dtype=float))
    for name, vals in fields.items():
        grid.point_data[name] = np.asarray(vals, dtype=float)
    if cell_regions is not None:
        grid.cell_data["region"] = np.asarray(cell_regions)
    # points gathered from several ranks are duplicated along partition boundaries
    return grid.clean(tolerance=1e-9)


def lesion(grid: Any, field: str = "tumor") -> tuple[np.ndarray, float]:
    """Centre (where ``field`` exceeds 10 % of its maximum) and radius (50 %) of the lesion.

    Args:
        grid: The organ grid.
        field: The tumor field (the organ's centre if absent or zero).

    Returns:
        (centre, radius).
    """
    pts = np.asarray(grid.points)
    if field not in grid.point_data:
        return np.asarray(grid.center, dtype=float), 0.0
    u = np.asarray(grid.point_data[field], dtype=float)
    top = float(u.max()) if u.size else 0.0
    if not top > 0:
        return np.asarray(grid.center, dtype=float), 0.0
    inside = u > 0.1 * top
    w = np.where(inside, u, 0.0)
    centre = (w[:, None] * pts).sum(0) / w.sum()
    core = u >= 0.5 * top
    radius = float(np.linalg.norm(pts[core] - centre, axis=1).max())
    return centre, radius


def view_for(organ: str, bounds: Sequence[float]) -> OrganView:
    """The organ's camera preset, or for ``box`` the plane normal to the thinnest extent.

    Args:
        organ: Organ name.
        bounds: (xmin, xmax, ymin, ymax, zmin, zmax).

    Returns:
        The view.
    """
    if organ in ORGAN_VIEWS:
        return ORGAN_VIEWS[organ]
    ext = np.array([bounds[1] - bounds[0], bounds[3] - bounds[2], bounds[5] - bounds[4]])
    thin = int(np.argmin(ext))
    rest = [i for i in range(3) if i != thin]
    up_ax = max(rest, key=lambda i: (ext[i], i))
    normal = [0.0, 0.0, 0.0]
    up = [0.0, 0.0, 0.0]
    normal[thin] = 1.0
    up[up_ax] = 1.0
    return OrganView(tuple(normal), tuple(up), False, "xyz"[thin] + " cut")  # type: ignore[arg-type]


@dataclass
class Panel:
    """One row of a figure: a grid (one run or time) and its label."""

    grid: Any
    label: str = ""


def _principal(grid: Any, view: OrganView) -> OrganView:
    """``view`` with the normal along the organ's axis of least spread (facing +y or +x)."""
    pts = np.asarray(grid.points, dtype=float)
    _, vecs = np.linalg.eigh(np.cov((pts - pts.mean(0)).T))
    normal = vecs[:, 0]
    ax = 1 if abs(normal[1]) >= abs(normal[0]) else 0
    if normal[ax] < 0:  # seen from the front (+y) or the side (+x)
        normal = -normal
    new = tuple(float(x) for x in normal)
    return OrganView(new, view.up, view.anatomical, view.name)  # type: ignore[arg-type]


def _basis(view: OrganView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = np.asarray(view.normal, dtype=float)
    n /= np.linalg.norm(n)
    up = np.asarray(view.up, dtype=float)
    up = up - up.dot(n) * n
    up /= np.linalg.norm(up)
    right = np.cross(up, n)  # camera looks along -n: right = up x n
    return n, up, right


def _mark(v: np.ndarray, anatomical: bool) -> tuple[str, str]:
    ax = int(np.argmax(np.abs(v)))
    sign = v[ax] > 0
    if anatomical:  # x right, y anterior, z superior
        plus, minus = [("R", "L"), ("A", "P"), ("S", "I")][ax]
    else:
        plus, minus = f"+{'xyz'[ax]}", f"-{'xyz'[ax]}"
    return (plus, minus) if sign else (minus, plus)


def _outlines(grid: Any, origin: np.ndarray, normal: np.ndarray) -> list[Any]:
    """Cut lines of the organ surface and of every region's boundary."""
    out = []
    surfaces = [grid.extract_surface(algorithm="dataset_surface")]
    if "region" in grid.cell_data:
        tags = np.unique(np.asarray(grid.cell_data["region"]))
        if tags.size > 1:
            for t in tags:
                part = grid.extract_cells(np.flatnonzero(grid.cell_data["region"] == t))
                surfaces.append(part.extract_surface(algorithm="dataset_surface"))
    for s in surfaces:
        line = s.slice(normal=normal, origin=origin)
        if line.n_points:
            out.append(line)
    return out


def render_grids(
    rows: Sequence[Panel],
    fields: Sequence[str],
    styles: Mapping[str, FieldStyle],
    clims: Mapping[str, tuple[float, float]],
    *,
    organ: str = "box",
    mode: str = "slice",
    inset: bool = False,
    title: str = "",
    stamp: str = "",
    cut_origin: np.ndarray | None = None,
    panel_size: tuple[int, int] = (420, 400),
    window_size: tuple[int, int] | None = None,
) -> Any:
    """Draw a figure: one column per field, one row per panel (run, arm or time).

    Args:
        rows: The grids to show (rows share the camera and colour limits).
        fields: Field per column.
        styles: Style per field.
        clims: Colour limits per field.
        organ: Organ camera preset (``brain``, ``lung``, ``bone``, ``liver`` or ``box``).
        mode: ``slice`` (planar cut, viewed face-on), ``clip`` (the same cut seen obliquely
            over the far half of the organ) or ``iso`` (tumor isosurfaces in the translucent
            organ, coloured by the field).
        inset: Add a zoomed view of the lesion under each panel.
        title: Figure title (top left).
        stamp: Time stamp (top right).
        cut_origin: Point the cut passes through (default: the first row's lesion centre).
        panel_size: Pixels per panel when ``window_size`` is not given.
        window_size: Whole picture size in pixels.

    Returns:
        The ``pyvista.Plotter`` (off-screen; call ``screenshot`` or ``show``).
    """
    pv = pyvista()
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if not rows:
        raise ValueError("nothing to draw: no grid")
    for name in fields:
        for r in rows:
            if name not in r.grid.point_data:
                raise ValueError(
                    f"field {name!r} is not stored (stored: {list(r.grid.point_data)})"
                )
    first = rows[0].grid
    bounds = first.bounds
    view = view_for(organ, bounds)
    if view.principal:
        view = _principal(first, view)
    n, up, right = _basis(view)
    centre, radius = lesion(first)
    origin = np.asarray(cut_origin if cut_origin is not None else centre, dtype=float)
    ncol, nrow = len(fields), len(rows)
    shape_rows = nrow * (2 if inset else 1)
    if window_size is None:
        h = panel_size[1] + (panel_size[1] // 2 if inset else 0)
        window_size = (panel_size[0] * ncol, h * nrow)
    row_weights = ([3, 1.5] * nrow) if inset else [1] * nrow
    pl = pv.Plotter(
        off_screen=True,
        shape=(shape_rows, ncol),
        row_weights=row_weights,
        window_size=list(window_size),
        border=False,
    )
    pl.set_background("white")
    pw = window_size[0] / ncol
    ph = window_size[1] / nrow * (3 / 4.5 if inset else 1)
    lay = _Layout.of(pw, ph)

    # organ corners in screen coordinates: framing never crops the organ
    corners = np.array([[x, y, z] for x in bounds[:2] for y in bounds[2:4] for z in bounds[4:]])
    sx = (corners - origin) @ right
    sy = (corners - origin) @ up
    width, height = float(sx.max() - sx.min()), float(sy.max() - sy.min())
    middle = origin + right * (sx.max() + sx.min()) / 2 + up * (sy.max() + sy.min()) / 2
    # the organ fills the band between the colour bar and the title lines, 6 % side margins
    avail = lay.top - lay.bottom
    scale = max(height / avail, width / (pw / ph) / 0.86) / 2
    focal = middle - up * scale * (lay.bottom + lay.top - 1.0)
    bar_mm = nice_length(max(width, height))

    for j, row in enumerate(rows):
        grid = row.grid
        cut = grid.slice(normal=n, origin=origin)
        surface = grid.extract_surface(algorithm="dataset_surface")
        far = surface.clip(normal=n, origin=origin, invert=True)
        lines = _outlines(grid, origin, n)
        lc, lr = lesion(grid)
        lift = n * (0.002 * scale + 0.01)
        for i, name in enumerate(fields):
            st = styles[name]
            lo, hi = clims[name]
            sub_r = j * (2 if inset else 1)
            pl.subplot(sub_r, i)
            data = pl.add_mesh(
                cut,
                scalars=name,
                cmap=st.cmap,
                clim=(lo, hi),
                lighting=False,  # flat: the colours are those of the bar
                opacity=0.0 if mode == "iso" else 1.0,
                show_scalar_bar=False,
            )
            if mode == "iso":
                pl.add_mesh(surface, color=_CONTEXT, opacity=0.12, lighting=True)
                _isosurfaces(pl, grid, name, st.cmap, (lo, hi))
            else:
                if far.n_points:
                    pl.add_mesh(far, color=_CONTEXT, opacity=0.18, lighting=True)
                _draw_outlines(pl, lines, lift)
            if j == nrow - 1:
                _colour_bar(pl, data, st.title, lay)
            head = st.label if j == 0 else ""
            if row.label and i == 0:
                head = f"{row.label}: {head}" if head else row.label
            if head:
                lay.text(pl, head, 0.03, lay.line2 if j == 0 else lay.line1)
            _camera(pl, focal, n, up, scale, mode)
            _scale_bar(pl, origin, focal, n, up, right, scale, bar_mm, lay.bottom + 0.02, lay)
            _orientation(pl, up, right, view.anatomical, lay)
            if inset:
                r = min(max(3.0 * (lr or radius), 2.0), 0.5 * scale)
                c = origin + right * (lc - origin).dot(right) + up * (lc - origin).dot(up)
                _frame(pl, c + 3 * lift, right * r * pw / (ph * 1.5 / 3), up * r)
                pl.subplot(sub_r + 1, i)
                pl.add_mesh(
                    cut,
                    scalars=name,
                    cmap=st.cmap,
                    clim=(lo, hi),
                    lighting=False,
                    show_scalar_bar=False,
                )
                _draw_outlines(pl, lines, lift)
                _camera(pl, c, n, up, r, "slice")
                _scale_bar(pl, origin, c, n, up, right, r, nice_length(2 * r), 0.08, lay)
                lay.text(pl, "lesion (zoom)", 0.03, 1.0 - lay.line / (ph * 1.5 / 3))
    if title or stamp:
        pl.subplot(0, 0)
        lay.text(pl, title, 0.02, lay.line1, size=lay.font + 1)
        pl.subplot(0, ncol - 1)
        lay.text(pl, stamp, 0.98, lay.line1, size=lay.font + 1, align="right")
    return pl


@dataclass
class _Layout:
    """Text and bar positions of a panel (viewport fractions) from its size in pixels."""

    ph: float
    font: int
    line: float  # text line height, pixels

    @classmethod
    def of(cls, pw: float, ph: float) -> _Layout:
        fs = float(np.clip(min(pw / 420.0, ph / 400.0), 0.5, 1.6))
        font = max(6, round(10 * fs))
        return cls(ph, font, 1.9 * font + 3.0)

    @property
    def line1(self) -> float:
        return 1.0 - self.line / self.ph

    @property
    def line2(self) -> float:
        return 1.0 - 2.0 * self.line / self.ph

    @property
    def top(self) -> float:
        """Top of the organ band: below two title lines and the orientation mark."""
        return 1.0 - 3.1 * self.line / self.ph

    @property
    def bar_y(self) -> float:
        return (self.line + 2.0) / self.ph

    @property
    def bar_h(self) -> float:
        return (1.9 * self.line) / self.ph

    @property
    def bottom(self) -> float:
        """Bottom of the organ band: above the colour bar and the orientation mark."""
        return self.bar_y + self.bar_h + 1.1 * self.line / self.ph

    def text(
        self, pl: Any, text: str, x: float, y: float, *, size: int | None = None, align: str = ""
    ) -> None:
        if not text:
            return
        actor = pl.add_text(
            text, position=(x, y), viewport=True, font_size=size or self.font, color="black"
        )
        prop = actor.GetTextProperty()
        if align == "right":
            prop.SetJustificationToRight()
        elif align == "centre":
            prop.SetJustificationToCentered()


def _isosurfaces(pl: Any, grid: Any, name: str, cmap: str, clim: tuple[float, float]) -> None:
    """Tumor isosurfaces at 10 % and 50 % of its maximum, coloured by ``name``."""
    u = grid.point_data.get("tumor", None)
    top = float(np.max(u)) if u is not None and u.size else 0.0
    if top > 0:
        iso = grid.contour([0.1 * top, 0.5 * top], scalars="tumor")
        if iso.n_points:
            pl.add_mesh(iso, scalars=name, cmap=cmap, clim=clim, opacity=0.6, show_scalar_bar=False)


def _colour_bar(pl: Any, data: Any, title: str, lay: _Layout) -> None:
    """Horizontal bar, labels above it, the title (with unit) below: they never overlap."""
    bar = pl.add_scalar_bar(
        title=title,
        mapper=data.mapper,
        vertical=False,
        fmt="%.3g",
        n_labels=5,
        position_x=0.12,
        position_y=lay.bar_y,
        width=0.76,
        height=lay.bar_h,
        label_font_size=max(6, lay.font + 1),
        color="black",
        unconstrained_font_size=True,
    )
    bar.SetTitle("")
    bar.SetTextPositionToSucceedScalarBar()
    bar.GetLabelTextProperty().SetBold(False)
    lay.text(pl, title, 0.5, 0.15 * lay.line / lay.ph, align="centre")


def _frame(pl: Any, centre: np.ndarray, half_x: np.ndarray, half_y: np.ndarray) -> None:
    """The rectangle the lesion inset shows, drawn on the main panel."""
    pv = pyvista()
    pts = [centre - half_x - half_y, centre + half_x - half_y, centre + half_x + half_y]
    pts += [centre - half_x + half_y, centre - half_x - half_y]
    pl.add_mesh(pv.lines_from_points(np.array(pts)), color="black", line_width=1.5)


def _draw_outlines(pl: Any, lines: Sequence[Any], lift: np.ndarray) -> None:
    """Region outlines as a dark line on a light halo: visible on every colour of the map.

    The lines are lifted towards the camera (``lift``, then twice that for the dark line) so
    that they never fight with the coplanar cut for depth.
    """
    for ln in lines:
        pl.add_mesh(ln.translate(lift), color="white", line_width=3.5, lighting=False)
    for ln in lines:
        pl.add_mesh(ln.translate(2 * lift), color=_OUTLINE, line_width=1.3, lighting=False)


def _camera(
    pl: Any, focal: np.ndarray, n: np.ndarray, up: np.ndarray, scale: float, mode: str
) -> None:
    cam = pl.camera
    pl.enable_parallel_projection()
    d = 10.0 * scale + 100.0
    if mode == "clip":
        pos = focal + d * (n + 0.5 * up) / np.linalg.norm(n + 0.5 * up)
    else:
        pos = focal + d * n
    cam.position = tuple(pos)
    cam.focal_point = tuple(focal)
    cam.up = tuple(up)
    cam.parallel_scale = scale
    pl.renderer.ResetCameraClippingRange()


def _scale_bar(
    pl: Any,
    origin: np.ndarray,
    focal: np.ndarray,
    n: np.ndarray,
    up: np.ndarray,
    right: np.ndarray,
    scale: float,
    length: float,
    y: float,
    lay: _Layout,
) -> None:
    """A bar of ``length`` mm at the bottom right (``y``: viewport fraction), labelled."""
    pv = pyvista()
    x0, y0, x1, y1 = pl.renderer.GetViewport()
    w, h = pl.window_size
    aspect = (x1 - x0) * w / max((y1 - y0) * h, 1e-9)
    # in the plane of the cut, slightly in front of it
    base = origin + n * (0.01 * scale + 0.1)
    base = base + right * (focal - origin).dot(right) + up * (focal - origin).dot(up)
    a = base + right * (0.8 * scale * aspect - length) + up * (2.0 * y - 1.0) * scale
    b = a + right * length
    pl.add_mesh(pv.Line(a, b), color="black", line_width=3, lighting=False)
    pl.add_point_labels(
        [(a + b) / 2 + up * 0.02 * scale],
        [f"{length:g} mm"],
        show_points=False,
        shape=None,
        font_size=lay.font + 2,
        text_color="black",
        always_visible=True,
        justification_horizontal="center",
        justification_vertical="bottom",
    )


def _orientation(
    pl: Any, up: np.ndarray, right: np.ndarray, anatomical: bool, lay: _Layout
) -> None:
    """Anatomical direction letters (or +x/-x ...) at the four sides of the organ band."""
    r_plus, r_minus = _mark(right, anatomical)
    u_plus, u_minus = _mark(up, anatomical)
    mid = (lay.top + lay.bottom) / 2
    drop = 0.5 * lay.line / lay.ph
    lay.text(pl, r_plus, 0.985, mid - drop, align="right")
    lay.text(pl, r_minus, 0.015, mid - drop)
    lay.text(pl, u_plus, 0.5, lay.top + 0.1 * lay.line / lay.ph, align="centre")
    lay.text(pl, u_minus, 0.5, lay.bottom - 1.0 * lay.line / lay.ph, align="centre")
