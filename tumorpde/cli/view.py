"""``tumorpde view RUN``: look at a finished run interactively, in a window or in a browser.

Forwards to :mod:`tumorpde.output.viz.session`: without ``--server`` a PyVista window opens
(needs a display) with a time slider, field and preset choice, region toggles and a draggable
cut plane; with ``--server`` the same session is served to a web browser with trame, for a run
on a remote cluster node (reach it with ``ssh -L PORT:localhost:PORT NODE``). A missing run, an
unknown field or preset, a time that is not stored, a port in use or a missing trame install
are reported (exit 2) before anything opens. Runs on one process.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import time as _time
from pathlib import Path

__all__ = ["register"]


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _cmd_view(args: argparse.Namespace) -> int:
    from tumorpde.output.load import RunReadError, load_run
    from tumorpde.output.viz import session as viz_session

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr, flush=True)
        return 2

    if args.server:
        if not viz_session.trame_available():
            return fail(
                "--server needs trame: pip install 'tumorpde[viz]' "
                "(trame, trame-vtk, trame-vuetify, trame-pyvista)"
            )
        if args.port and not _port_free(args.host, args.port):
            return fail(f"--port {args.port}: already in use on {args.host}; choose another")
    elif not viz_session.display_available():
        return fail(
            "no display for a window (DISPLAY is not set); serve the view to a browser instead: "
            f"tumorpde view {args.run} --server [--port 8080]"
        )
    start = _time.perf_counter()
    try:
        run = load_run(args.run)
    except (RunReadError, FileNotFoundError, NotADirectoryError) as exc:
        return fail(str(exc))
    when: float | str | None = args.time
    with contextlib.suppress(ValueError, TypeError):  # hours; else a quantity such as "2 day"
        when = float(args.time)
    options = {"preset": args.preset, "field": args.field, "time": when}
    try:
        if not args.server:
            viz_session.open_window(run, **options)
            return 0

        def ready(url: str) -> None:
            port = url.rstrip("/").rsplit(":", 1)[-1]
            print(
                f"tumorpde view: serving {Path(args.run)} at {url} "
                f"(ready in {_time.perf_counter() - start:.1f} s; Ctrl-C stops)\n"
                f"  from another machine: ssh -L {port}:localhost:{port} "
                f"{socket.gethostname()}   then open {url}",
                flush=True,
            )

        viz_session.serve(run, port=args.port, host=args.host, ready=ready, **options)
    except ValueError as exc:  # unknown field/preset, time not stored
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``view`` command.

    Args:
        sub: The ``tumorpde`` subparsers.
    """
    p = sub.add_parser(
        "view",
        help="look at a run interactively (window, or browser with --server)",
        description=(
            "Open a run in an interactive viewer: time slider, field and preset choice, cut "
            "plane, region toggles. Without a display, use --server and open the printed "
            "address in a browser (over an SSH tunnel on a cluster node)."
        ),
    )
    p.add_argument("run", type=Path, help="run directory (written by tumorpde run)")
    p.add_argument(
        "--server",
        action="store_true",
        help="serve the viewer to a web browser (trame) instead of opening a window",
    )
    p.add_argument(
        "--port", type=int, default=8080, help="port of --server (default 8080; 0: any free)"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface of --server (default 127.0.0.1: this machine only, use an SSH tunnel; "
        "0.0.0.0 exposes it to the network)",
    )
    p.add_argument("--field", default=None, help="field shown first (default: the preset's first)")
    p.add_argument(
        "--preset",
        default="auto",
        help="figure preset: auto, growth, therapy, oxygen, bone, emt, modules or all",
    )
    p.add_argument(
        "--time",
        default=None,
        help="stored time shown first: hours or a quantity ('2 day'); default the last",
    )
    p.set_defaults(func=_cmd_view)
