"""``tumorpde plot RUN`` and ``tumorpde animate RUN``: figures and animations of stored runs.

Forward to :func:`tumorpde.viz.plot` / :func:`tumorpde.viz.plot_qoi` and
:func:`tumorpde.viz.animate`; serial (one process). Unknown fields, times, presets or output
formats end with exit code 2 and a message naming them, before anything is rendered.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["register"]


def _clims(items: list[str] | None) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for item in items or []:
        try:
            name, rng = item.split("=", 1)
            lo, hi = (float(x) for x in rng.split(":"))
        except ValueError:
            raise ValueError(f"--clim: expected FIELD=LOW:HIGH, got {item!r}") from None
        if not hi > lo:
            raise ValueError(f"--clim {item!r}: HIGH must exceed LOW")
        out[name] = (lo, hi)
    return out


def _fail(what: str, exc: Exception) -> int:
    print(f"error: {what}: {exc}", file=sys.stderr)
    return 2


def _cmd_plot(args: argparse.Namespace) -> int:
    from tumorpde.output import viz
    from tumorpde.output.load import RunReadError

    start = time.perf_counter()
    if args.output.suffix.lower() not in (".png", ".pdf", ".svg"):
        return _fail("tumorpde plot", ValueError(f"{args.output}: use .png, .pdf or .svg"))
    try:
        clim = _clims(args.clim)
        if args.qoi:
            out = viz.plot_qoi(args.runs[0], args.output, columns=args.qoi_column or None)
        else:
            pl = viz.plot(
                args.runs if len(args.runs) > 1 else args.runs[0],
                fields=args.field,
                time=args.time,
                preset=args.preset,
                mode=args.mode,
                inset=args.inset,
                clim=clim,
                organ=args.organ,
            )
            out = viz.save(pl, args.output)
    except (ValueError, RunReadError, FileNotFoundError) as exc:
        return _fail("tumorpde plot", exc)
    print(f"tumorpde plot: wrote {out} in {time.perf_counter() - start:.1f} s")
    return 0


def _cmd_animate(args: argparse.Namespace) -> int:
    from tumorpde.output import viz
    from tumorpde.output.load import RunReadError

    start = time.perf_counter()
    try:
        times = viz.animate(
            args.run,
            args.output,
            fields=args.field,
            preset=args.preset,
            mode=args.mode,
            times=args.time,
            fps=args.fps,
            clim=_clims(args.clim),
            organ=args.organ,
        )
    except (ValueError, RunReadError, FileNotFoundError) as exc:
        return _fail("tumorpde animate", exc)
    print(
        f"tumorpde animate: wrote {args.output} ({len(times)} frames) in "
        f"{time.perf_counter() - start:.1f} s"
    )
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    from tumorpde.output.viz.presets import ORGAN_VIEWS, PRESETS
    from tumorpde.output.viz.scene import MODES

    p.add_argument("--field", action="append", metavar="F", help="field to show (repeatable)")
    p.add_argument("--preset", default="auto", choices=PRESETS, help="field preset (default auto)")
    p.add_argument(
        "--mode", default="slice", choices=MODES, help="cut, oblique clip or isosurfaces"
    )
    p.add_argument("--organ", choices=[*ORGAN_VIEWS, "box"], help="camera preset (default: case)")
    p.add_argument(
        "--clim", action="append", metavar="F=LO:HI", help="colour limits of a field (repeatable)"
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``plot`` and ``animate`` commands.

    Args:
        sub: The ``tumorpde`` subparsers.
    """
    p = sub.add_parser(
        "plot",
        help="figure of a stored run (or of several arms) at a stored time",
        description="Field figure of one or more runs (arms as rows, shared colour limits), or "
        "with --qoi the QoIs against time. Writes PNG, PDF or SVG.",
    )
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directory (or several)")
    p.add_argument("-o", "--output", type=Path, required=True, help="FILE.png|.pdf|.svg")
    p.add_argument("--time", help='stored time ("10 day", or hours; default the last)')
    p.add_argument("--inset", action="store_true", help="add a zoomed view of the lesion")
    p.add_argument("--qoi", action="store_true", help="plot the QoIs against time instead")
    p.add_argument("--qoi-column", action="append", metavar="C", help="QoI column (repeatable)")
    _common(p)
    p.set_defaults(func=_cmd_plot)
    a = sub.add_parser(
        "animate",
        help="animation of a stored run over its stored times",
        description="Animation over the stored times with a time stamp per frame (MP4 or GIF).",
    )
    a.add_argument("run", type=Path, help="run directory")
    a.add_argument("-o", "--output", type=Path, required=True, help="FILE.mp4|.gif")
    a.add_argument("--time", action="append", help="stored time to include (repeatable)")
    a.add_argument("--fps", type=float, default=2.0, help="frames per second (default 2)")
    _common(a)
    a.set_defaults(func=_cmd_animate)
