"""Visualization: field figures, animations and QoI plots of runs (``tumorpde.viz``).

* :func:`plot` — a field figure of a run (or of several arms) at a stored time: a cut through
  the lesion framed on the organ, neutral translucent context, region outlines, colour bars
  with units, scale bar and orientation marks (:mod:`.scene`), fields chosen by a preset
  (:mod:`.presets`); :func:`save` writes it as PNG, PDF or SVG.
* :func:`animate` — the same figure over every stored time, to MP4 or GIF (:mod:`.animate`).
* :func:`plot_qoi` — quantities of interest against time (:mod:`.qoiplots`).
* :func:`render_fields` / :func:`render_regions` — pictures from plain arrays (the in-run
  ``final.png`` and ``tumorpde mesh info --png``; :mod:`.legacy`).

PyVista, matplotlib and imageio are imported inside the functions, so importing this package
(and ``tumorpde``) loads none of them.
"""

from __future__ import annotations

from tumorpde.output.viz.animate import animate
from tumorpde.output.viz.figure import plot, save
from tumorpde.output.viz.legacy import render_fields, render_regions
from tumorpde.output.viz.presets import ORGAN_VIEWS, PRESETS, field_style, preset_fields
from tumorpde.output.viz.qoiplots import plot_qoi

__all__ = [
    "ORGAN_VIEWS",
    "PRESETS",
    "animate",
    "field_style",
    "plot",
    "plot_qoi",
    "preset_fields",
    "render_fields",
    "render_regions",
    "save",
]
