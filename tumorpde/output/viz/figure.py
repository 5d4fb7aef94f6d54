"""Field figures of stored runs: ``tumorpde plot`` and :func:`tumorpde.viz.plot`.

A run (a directory or a loaded :class:`tumorpde.output.load.Run`) is read through its
``dataset(time=...)``; the fields come from a preset (:mod:`.presets`) or are named, the colour
limits are fixed over every stored time of every run shown (so pictures of different times and
arms compare), and several runs (therapy arms) are drawn as rows sharing camera and limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tumorpde.output.viz.presets import (
    FieldStyle,
    field_style,
    merge_clims,
    organ_of,
    preset_fields,
)
from tumorpde.output.viz.scene import Panel, lesion, render_grids

__all__ = ["as_run", "figure_setup", "pick_time", "plot", "save", "time_label"]

_FORMATS = (".png", ".pdf", ".svg")


def as_run(run: Any) -> Any:
    """A loaded run from a path (``load_run``) or the run itself.

    Args:
        run: Run directory or an object with ``dataset``, ``times`` and ``fields``.

    Returns:
        The run object.
    """
    if isinstance(run, (str, Path)):
        from tumorpde.output.load import load_run

        return load_run(run)
    return run


def time_label(t_h: float) -> str:
    """Time stamp text: days with one decimal, hours below two days.

    Args:
        t_h: Time in hours.

    Returns:
        For example ``t = 30.0 d`` or ``t = 12 h``.
    """
    return f"t = {t_h / 24:.1f} d" if abs(t_h) >= 48 else f"t = {t_h:.3g} h"


def pick_time(run: Any, time: float | str | None) -> float:
    """The stored time to show: the last by default, else the stored time equal to ``time``.

    Args:
        run: The run.
        time: Hours (number) or a quantity (``"10 day"``); None for the last stored time.

    Returns:
        The stored time in hours.

    Raises:
        ValueError: ``time`` is not a stored time (the message lists them).
    """
    times = np.asarray(run.times, dtype=float)
    if times.size == 0:
        raise ValueError("the run stored no field times")
    if time is None:
        return float(times[-1])
    if isinstance(time, str):
        from tumorpde.units import to_internal

        t = float(to_internal(time, "time"))
    else:
        t = float(time)
    k = int(np.argmin(np.abs(times - t)))
    if abs(times[k] - t) > 1e-6 * max(1.0, abs(t)):
        stored = ", ".join(f"{x:g}" for x in times)
        raise ValueError(f"time {time!r} ({t:g} h) is not stored; stored times (h): {stored}")
    return float(times[k])


def figure_setup(
    runs: Sequence[Any],
    fields: Sequence[str] | None,
    preset: str,
    clim: Mapping[str, tuple[float, float]] | None,
    times: Sequence[float] | None = None,
) -> tuple[list[str], dict[str, FieldStyle], dict[str, tuple[float, float]], str]:
    """Fields, styles, colour limits (over ``times`` of every run) and organ of a figure.

    Args:
        runs: Loaded runs (arms) shown together.
        fields: Named fields, or None for the preset.
        preset: Preset name when ``fields`` is None.
        clim: User colour limits per field.
        times: Times (h) the limits cover (default: every stored time).

    Returns:
        (fields, styles, limits, organ).

    Raises:
        ValueError: A named field is not stored by every run, or the preset has none.
    """
    first = runs[0]
    stored = [f for f in first.fields if all(f in r.fields for r in runs)]
    if fields:
        unknown = [f for f in fields if f not in stored]
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(map(repr, unknown))}; stored: {', '.join(stored)}"
            )
        names = list(fields)
    else:
        names = preset_fields(preset, stored, getattr(first, "case", None))
    units = dict(getattr(first, "units", {}) or {})
    styles = {n: field_style(n, str(units.get(n, ""))) for n in names}
    need = [n for n in names if styles[n].clim is None and not (clim and n in clim)]
    ranges: dict[str, tuple[float, float]] = {}
    for r in runs:
        for t in times if times is not None else r.times:
            if not need:
                break
            ds = r.dataset(time=float(t))
            for n in need:
                v = np.asarray(ds.point_data[n])
                lo, hi = float(v.min()), float(v.max())
                a, b = ranges.get(n, (lo, hi))
                ranges[n] = (min(a, lo), max(b, hi))
    organ = organ_of(getattr(first, "case", None), getattr(first, "regions", {}) or {})
    return names, styles, merge_clims(styles, ranges, clim), organ


def plot(
    runs: Any,
    *,
    fields: Sequence[str] | None = None,
    time: float | str | None = None,
    preset: str = "auto",
    mode: str = "slice",
    inset: bool = False,
    clim: Mapping[str, tuple[float, float]] | None = None,
    labels: Sequence[str] | None = None,
    organ: str | None = None,
    title: str | None = None,
    window_size: tuple[int, int] | None = None,
) -> Any:
    """A field figure of one run, or of several runs (arms) as rows with shared limits.

    Args:
        runs: A run (directory or loaded run) or a list of them.
        fields: Fields to show (default: the preset's).
        time: Stored time (hours or ``"10 day"``); default the last.
        preset: ``auto`` (by the case's components), ``growth``, ``therapy``, ``oxygen``,
            ``bone``, ``emt``, ``modules`` or ``all``.
        mode: ``slice``, ``clip`` or ``iso`` (see :func:`.scene.render_grids`).
        inset: Add a zoomed view of the lesion.
        clim: Colour limits per field (default: fixed ones for fractions, else the range over
            every stored time of every run).
        labels: Row labels (default: the run names).
        organ: Camera preset (default: the case's organ).
        title: Figure title (default: the case name).
        window_size: Picture size in pixels.

    Returns:
        The off-screen ``pyvista.Plotter`` (``.screenshot(path)``; see :func:`save`).
    """
    seq = list(runs) if isinstance(runs, (list, tuple)) else [runs]
    loaded = [as_run(r) for r in seq]
    t = pick_time(loaded[0], time)
    for r in loaded[1:]:
        pick_time(r, t)
    names, styles, limits, guessed = figure_setup(loaded, fields, preset, clim)
    rows = []
    for k, r in enumerate(loaded):
        lab = labels[k] if labels else (_name(r) if len(loaded) > 1 else "")
        rows.append(Panel(r.dataset(time=t), lab))
    if title is None:
        title = _name(loaded[0]) if len(loaded) == 1 else ""
    # the cut passes through the lesion at the last time: the plane is the same at every time
    centre, _ = lesion(loaded[0].dataset(time=float(loaded[0].times[-1])))
    return render_grids(
        rows,
        names,
        styles,
        limits,
        organ=organ or guessed,
        mode=mode,
        inset=inset,
        title=title,
        stamp=time_label(t),
        cut_origin=centre,
        window_size=window_size,
    )


def _name(run: Any) -> str:
    case = getattr(run, "case", None)
    return str(getattr(case, "name", "") or Path(str(getattr(run, "path", "run"))).name)


def save(plotter: Any, path: str | Path) -> Path:
    """Write a figure to PNG, PDF or SVG and close the plotter.

    Args:
        plotter: The plotter of :func:`plot`.
        path: Output file (``.png``, ``.pdf`` or ``.svg``).

    Returns:
        The written path.

    Raises:
        ValueError: Unsupported suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(f"{path}: unsupported picture format; use {', '.join(_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if suffix == ".png":
            plotter.screenshot(str(path))
        else:
            plotter.save_graphic(str(path), raster=True, painter=True)
    finally:
        plotter.close()
    return path
