"""Visualization: off-screen PyVista pictures of tumor, growth-factor and receptor fields.

PyVista is imported lazily inside the functions, so the solver core never needs it. Functions
here take plain numpy arrays (points, tetrahedra, nodal values) and run on one process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["render_fields", "render_regions"]


def _pyvista() -> Any:
    os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")
    # Render through EGL (Debian libegl1 + libegl-mesa0): no X server needed, no warning.
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    try:
        import pyvista as pv
    except ImportError:
        return None
    pv.OFF_SCREEN = True
    return pv


def render_fields(
    points: np.ndarray,
    cells: np.ndarray,
    fields: dict[str, np.ndarray],
    path: str | Path,
    *,
    cell_regions: np.ndarray | None = None,
    title: str = "",
    time_h: float | None = None,
    labels: dict[str, str] | None = None,
    window_size: tuple[int, int] = (1500, 560),
    zoom: float = 1.8,
) -> str | None:
    """Render one panel per field: the domain cut through the tumor's centre of mass.

    Args:
        points: Vertex coordinates, shape (n, 3), mm.
        cells: Tetrahedra as vertex indices, shape (m, 4).
        fields: Nodal values per field name (first field is used to find the tumor).
        path: PNG file to write.
        cell_regions: Optional region tag per cell (drawn as the cut's outline context).
        title: Text for the first panel.
        time_h: Time shown in the title.
        labels: Colour-bar titles per field.
        window_size: Picture size in pixels.
        zoom: Camera zoom towards the tumor (1 shows the whole domain).

    Returns:
        The PNG path, or None if PyVista is not installed.
    """
    pv = _pyvista()
    if pv is None:
        return None
    cells = np.asarray(cells, dtype=np.int64)
    conn = np.hstack([np.full((cells.shape[0], 1), 4, dtype=np.int64), cells]).ravel()
    ctypes = np.full(cells.shape[0], pv.CellType.TETRA, dtype=np.uint8)
    grid = pv.UnstructuredGrid(conn, ctypes, np.asarray(points, dtype=float))
    for name, vals in fields.items():
        grid.point_data[name] = np.asarray(vals, dtype=float)
    if cell_regions is not None:
        grid.cell_data["region"] = np.asarray(cell_regions)
    # points gathered from several ranks are duplicated along partition boundaries
    grid = grid.clean(tolerance=1e-9)
    names = list(fields)
    first = grid.point_data[names[0]]
    w = np.clip(first, 0, None)
    centre = (w[:, None] * grid.points).sum(0) / w.sum() if w.sum() > 0 else np.array(grid.center)
    labels = labels or {}

    pl = pv.Plotter(off_screen=True, shape=(1, len(names)), window_size=window_size, border=False)
    surface = grid.extract_surface(algorithm=None)
    for i, name in enumerate(names):
        pl.subplot(0, i)
        cut = grid.clip(normal="x", origin=centre, invert=True)
        pl.add_mesh(surface, color="lightgrey", opacity=0.12)
        vals = cut.point_data[name]
        lo = 0.0 if i == 0 else float(vals.min())
        pl.add_mesh(
            cut,
            scalars=name,
            clim=(lo, max(float(vals.max()), lo + 1e-12)),
            cmap="YlOrRd" if i == 0 else "viridis",
            scalar_bar_args={
                "title": labels.get(name, name),
                "vertical": False,
                "fmt": "%.3g",
                "n_labels": 4,
                "position_x": 0.15,
                "width": 0.7,
            },
        )
        if i == 0 and title:
            when = f"   t = {time_h / 24:.1f} d" if time_h is not None else ""
            pl.add_text(f"{title}{when}", font_size=10)
        pl.camera_position = "yz"  # look at the cut face
        pl.camera.azimuth = 25
        pl.camera.elevation = 15
        pl.reset_camera()
        cam = pl.camera  # translate the view so it centres on the tumor, then zoom in
        offset = np.array(cam.position) - np.array(cam.focal_point)
        cam.focal_point = tuple(centre)
        cam.position = tuple(centre + offset)
        cam.zoom(zoom)
    path = Path(path)
    pl.screenshot(str(path))
    pl.close()
    return str(path)


def render_regions(
    points: np.ndarray,
    tets: np.ndarray,
    tet_tags: np.ndarray,
    regions: dict[str, int],
    path: str | Path,
    *,
    axis: str = "z",
    origin: float | None = None,
) -> str | None:
    """Draw the tissue regions of a tetrahedral mesh on a planar cut (``tumorpde mesh info``).

    Args:
        points: Vertex coordinates, shape (n, 3).
        tets: Tetrahedra as vertex indices, shape (m, 4).
        tet_tags: Region tag of every tetrahedron, shape (m,).
        regions: Region name -> tag.
        path: PNG file to write (its folder is created).
        axis: Normal of the cut plane (``x``, ``y`` or ``z``).
        origin: Position of the cut along ``axis`` (default: the centre of the bounding box).

    Returns:
        The PNG path, or None if PyVista is not installed.
    """
    pv = _pyvista()
    if pv is None:  # pragma: no cover - depends on the environment
        return None
    cells = np.hstack([np.full((tets.shape[0], 1), 4), tets]).ravel()
    grid = pv.UnstructuredGrid(cells, np.full(tets.shape[0], pv.CellType.TETRA), points)
    names = {t: n for n, t in regions.items()}
    tags = sorted(names)
    grid.cell_data["region"] = np.searchsorted(tags, tet_tags)
    ax = "xyz".index(axis)
    centre = list(grid.center)
    if origin is not None:
        centre[ax] = origin
    normal = [0.0, 0.0, 0.0]
    normal[ax] = 1.0
    cut = grid.slice(normal=normal, origin=centre)
    plotter = pv.Plotter(off_screen=True, window_size=(900, 800))
    palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3"]
    n = len(tags)
    plotter.add_mesh(
        grid.extract_surface(algorithm="dataset_surface"), color="lightgrey", opacity=0.15
    )
    plotter.add_mesh(
        cut,
        scalars="region",
        cmap=[palette[i % len(palette)] for i in range(n)],
        clim=(-0.5, n - 0.5),
        n_colors=n,
        show_edges=True,
        edge_color="black",
        line_width=0.3,
        annotations={i: names[t] for i, t in enumerate(tags)},
        scalar_bar_args={"title": "region", "n_labels": 0},
    )
    plotter.view_vector(normal, viewup=(0, 0, 1) if axis != "z" else (0, 1, 0))
    plotter.add_text(f"{axis} = {centre[ax]:.1f}", font_size=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plotter.screenshot(str(path))
    plotter.close()
    return str(path)
