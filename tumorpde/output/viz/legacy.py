"""Pictures from plain arrays: the in-run ``final.png`` and ``tumorpde mesh info --png``.

:func:`render_fields` keeps the call used by :func:`tumorpde.output.fields.write_picture` and
draws through the same scene as ``tumorpde plot`` (:mod:`.scene`); :func:`render_regions` draws
the tissue regions of a mesh on a planar cut in anatomical colours. Both run on one process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tumorpde.output.viz.presets import field_style, merge_clims, organ_of
from tumorpde.output.viz.scene import Panel, pyvista, render_grids, to_grid

__all__ = ["REGION_COLOURS", "render_fields", "render_regions"]

#: Anatomical colours of named regions (grey matter darker than white matter, etc.).
REGION_COLOURS = {
    "grey": "#8e8e8e",
    "white": "#ece8dc",
    "cortical": "#e9e2c8",
    "marrow": "#b5524a",
    "right_lung": "#e6a3a8",
    "left_lung": "#d38a90",
    "liver": "#9a4a35",
    "tumor": "#4b2991",
}
_FALLBACK = ["#4c72b0", "#55a868", "#8172b3", "#937860", "#da8bc3", "#ccb974"]


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
    units: dict[str, str] | None = None,
    region_names: dict[str, int] | None = None,
    organ: str | None = None,
    window_size: tuple[int, int] | None = None,
) -> str | None:
    """Render one panel per field on a cut through the lesion (the in-run summary picture).

    Args:
        points: Vertex coordinates, shape (n, 3), mm.
        cells: Tetrahedra as vertex indices, shape (m, 4).
        fields: Nodal values per field name (``tumor`` locates the lesion).
        path: PNG file to write.
        cell_regions: Optional region tag per cell (drawn as outlines on the cut).
        title: Figure title.
        time_h: Time stamp in hours.
        labels: Colour-bar titles per field (units may be part of them).
        units: Units per field (added to the titles when ``labels`` has none).
        region_names: Region name -> tag (to pick the organ's camera preset).
        organ: Camera preset (default: guessed from the region names, else the mesh shape).
        window_size: Picture size in pixels.

    Returns:
        The PNG path, or None if PyVista is not installed.
    """
    try:
        pyvista()
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    grid = to_grid(points, cells, fields, cell_regions)
    names = list(fields)
    labels = labels or {}
    units = units or {}
    styles = {}
    for n in names:
        base = field_style(n, units.get(n, ""))
        styles[n] = field_style(n, "" if n in labels else units.get(n, ""), labels.get(n))
        styles[n] = type(base)(
            styles[n].label, styles[n].unit, base.cmap, base.clim, base.zero_floor
        )
    ranges = {
        n: (float(np.min(grid.point_data[n])), float(np.max(grid.point_data[n]))) for n in names
    }
    organ = organ or organ_of(None, region_names or {})
    from tumorpde.output.viz.figure import time_label

    pl = render_grids(
        [Panel(grid)],
        names,
        styles,
        merge_clims(styles, ranges),
        organ=organ,
        title=title,
        stamp=time_label(time_h) if time_h is not None else "",
        window_size=window_size,
    )
    path = Path(path)
    try:
        pl.screenshot(str(path))
    finally:
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
    try:
        pv = pyvista()
    except ImportError:  # pragma: no cover - depends on the environment
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
    plotter.set_background("white")
    n = len(tags)
    colours = []
    for i, t in enumerate(tags):
        colours.append(REGION_COLOURS.get(names[t], _FALLBACK[i % len(_FALLBACK)]))
    plotter.add_mesh(
        grid.extract_surface(algorithm="dataset_surface"), color="lightgrey", opacity=0.15
    )
    plotter.add_mesh(
        cut,
        scalars="region",
        cmap=colours,
        clim=(-0.5, n - 0.5),
        n_colors=n,
        show_edges=True,
        edge_color="black",
        line_width=0.3,
        lighting=False,
        annotations={i: names[t] for i, t in enumerate(tags)},
        scalar_bar_args={"title": "region", "n_labels": 0, "color": "black"},
    )
    plotter.view_vector(normal, viewup=(0, 0, 1) if axis != "z" else (0, 1, 0))
    plotter.add_text(f"{axis} = {centre[ax]:.1f}", font_size=10, color="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plotter.screenshot(str(path))
    plotter.close()
    return str(path)
