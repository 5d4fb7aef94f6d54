"""Quantities of interest against time (matplotlib): one panel per unit, linear axes.

Used by ``tumorpde plot RUN --qoi``; ``qoi.csv`` columns are grouped by their unit (tumor burden
in mm³, concentrations in nM, fractions) and solver bookkeeping columns are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_qoi"]

_SKIP = (
    "step",
    "t_h",
    "dt_h",
    "wall_s",
    "newton_iterations",
    "linear_iterations",
    "rejected_steps",
    "error_estimate",
)
_SKIP_PREFIX = ("min_", "balance_", "max_")
#: Line styles and markers cycled so that overlapping curves stay distinguishable.
STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v"), ((0, (1, 1)), "x")]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_qoi(
    run: Any, path: str | Path, *, columns: Sequence[str] | None = None, title: str | None = None
) -> Path:
    """Plot QoI columns of a run against time in days, one panel per unit.

    Args:
        run: A run directory or loaded run (``.qoi`` DataFrame with ``attrs["units"]``).
        path: Output file (.png, .pdf or .svg).
        columns: Columns to plot (default: every physical QoI).
        title: Figure title (default: the case name).

    Returns:
        The written path.

    Raises:
        ValueError: An unknown column, or nothing to plot.
    """
    from tumorpde.output.viz.figure import _name, as_run

    run = as_run(run)
    df = run.qoi
    units = dict(df.attrs.get("units", {}))
    if columns:
        unknown = [c for c in columns if c not in df.columns]
        if unknown:
            raise ValueError(f"unknown QoI column(s) {unknown}; columns: {list(df.columns)}")
        cols = list(columns)
    else:
        cols = [c for c in df.columns if c not in _SKIP and not c.startswith(_SKIP_PREFIX)]
    if not cols:
        raise ValueError("nothing to plot: the run has no QoI columns")
    groups: dict[str, list[str]] = {}
    for c in cols:
        groups.setdefault(units.get(c, ""), []).append(c)
    plt = _pyplot()
    n = len(groups)
    ncol = min(n, 2)
    nrow = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.4 * nrow), squeeze=False)
    days = df["t_h"].to_numpy() / 24.0
    for ax, (unit, cs) in zip(axes.flat, groups.items(), strict=False):
        for k, c in enumerate(cs):
            ls, mk = STYLES[k % len(STYLES)]
            every = max(1, len(days) // 12)
            ax.plot(
                days,
                df[c].to_numpy(),
                linestyle=ls,
                marker=mk,
                markevery=every,
                markersize=4,
                label=c,
            )
        ax.set_xlabel("time (days)")
        ax.set_ylabel(unit if unit and unit != "1" else "(dimensionless)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(title if title is not None else _name(run))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
