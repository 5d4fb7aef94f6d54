"""Animations of stored runs: ``tumorpde animate RUN -o FILE.mp4|.gif``.

Every stored time (or a chosen subset) is drawn with the figure presets of :mod:`.figure`,
with colour limits and the cut plane fixed over all frames and a time stamp on each, and
written with imageio (GIF through Pillow, MP4 through imageio-ffmpeg's bundled ffmpeg).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tumorpde.output.viz.figure import as_run, figure_setup, pick_time, time_label
from tumorpde.output.viz.scene import Panel, lesion, render_grids

__all__ = ["animate"]

_FORMATS = (".gif", ".mp4")


def animate(
    run: Any,
    path: str | Path,
    *,
    fields: Sequence[str] | None = None,
    preset: str = "auto",
    mode: str = "slice",
    times: Sequence[float | str] | None = None,
    fps: float = 2.0,
    clim: Mapping[str, tuple[float, float]] | None = None,
    organ: str | None = None,
    window_size: tuple[int, int] | None = None,
) -> list[float]:
    """Write an animation of a run over its stored times.

    Args:
        run: Run directory or loaded run.
        path: ``.gif`` or ``.mp4`` file.
        fields: Fields to show (default: the preset's).
        preset: Field preset (see :func:`tumorpde.viz.plot`).
        mode: ``slice``, ``clip`` or ``iso``.
        times: Stored times to show (default: all).
        fps: Frames per second.
        clim: Colour limits per field (default: over every shown time).
        organ: Camera preset (default: the case's organ).
        window_size: Frame size in pixels (even numbers for MP4).

    Returns:
        The times (h) of the frames, in order.

    Raises:
        ValueError: Unsupported suffix, unknown field or time.
        ImportError: imageio (or imageio-ffmpeg for MP4) is missing.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(f"{path}: unsupported animation format; use {', '.join(_FORMATS)}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    r = as_run(run)
    shown = [pick_time(r, t) for t in times] if times else [float(t) for t in r.times]
    names, styles, limits, guessed = figure_setup([r], fields, preset, clim, shown)
    try:
        import imageio.v2 as imageio
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("animations need imageio: pip install 'tumorpde[viz]'") from exc
    centre, _ = lesion(r.dataset(time=shown[-1]))
    from tumorpde.output.viz.figure import _name

    frames = []
    for t in shown:
        pl = render_grids(
            [Panel(r.dataset(time=t))],
            names,
            styles,
            limits,
            organ=organ or guessed,
            mode=mode,
            title=_name(r),
            stamp=time_label(t),
            cut_origin=centre,
            window_size=window_size,
        )
        try:
            img = np.asarray(pl.screenshot(return_img=True))
        finally:
            pl.close()
        if suffix == ".mp4":  # yuv420p needs even sides
            img = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
        frames.append(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        imageio.mimsave(path, frames, duration=1000.0 / fps, loop=0)
    else:
        with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as w:
            for f in frames:
                w.append_data(f)
    return shown
