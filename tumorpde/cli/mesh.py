"""``tumorpde mesh build | from-labels | import | info``: the mesh command group (serial).

Each command forwards to :mod:`tumorpde.meshing` (``info --png`` draws with
:func:`tumorpde.output.viz.render_regions`); gmsh, scipy and PyVista are imported only when a
command runs. ``from-labels`` and ``import`` refuse to replace an existing ``-o`` file or its
``.json`` sidecar (exit 2, naming the file) unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

_UNITS = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "um": 1e-3}


def _fail(exc: Exception) -> int:
    print(f"error: {exc}", file=sys.stderr, flush=True)
    return 2


def _check_new(out: Path, overwrite: bool) -> None:
    """Refuse to replace ``out`` or its ``.json`` sidecar unless ``--overwrite`` (MeshingError)."""
    from tumorpde.meshing.labels import MeshingError

    if overwrite:
        return
    for p in (out, out.with_suffix(".json")):
        if p.exists():
            raise MeshingError(
                f"{p} exists (-o {out} writes {out.name} and {out.with_suffix('.json').name}); "
                "pass --overwrite to replace it, or choose another -o"
            )


def _summary(meta: dict[str, Any], path: Path) -> None:
    vols = ", ".join(f"{n} {v / 1000:.1f} mL" for n, v in meta["volumes_mm3"].items())
    print(f"wrote {path} and {path.with_suffix('.json').name}")
    print(
        f"  {meta['cells']} tetrahedra, {meta['vertices']} vertices; regions {meta['regions']}; "
        f"boundaries {meta['boundaries']}"
    )
    print(
        f"  volumes: {vols}; min dihedral {meta['min_dihedral_deg']:.2f} deg, "
        f"{meta['slivers_below_5deg']} sliver(s) < 5 deg; {meta['build_time_s']:.1f} s"
    )


def _cmd_build(args: argparse.Namespace) -> int:
    from tumorpde.meshing.atlas import build_organ, default_cache_dir
    from tumorpde.meshing.labels import MeshingError

    out = args.out or default_cache_dir()
    try:
        meta = build_organ(args.organ, args.resolution, out, size=args.size)
    except (MeshingError, ImportError) as exc:
        return _fail(exc)
    stem = args.organ if args.resolution == "coarse" else f"{args.organ}_{args.resolution}"
    _summary(meta, Path(out) / f"{stem}.msh")
    return 0


def _cmd_from_labels(args: argparse.Namespace) -> int:
    from tumorpde.meshing.labels import (
        MeshingError,
        MeshParameters,
        auto_size,
        labels_to_mesh,
        parse_labels,
        read_label_image,
    )

    try:
        regions = parse_labels(args.labels, "--labels")
        holes = parse_labels(args.holes or "", "--holes")
        img = read_label_image(args.image, spacing=args.spacing)
        out = args.output or Path(args.image.name.split(".")[0] + ".msh")
        if out.suffix != ".msh":
            raise MeshingError(f"-o {out}: the output must be a .msh file")
        _check_new(out, args.overwrite)
        size = args.size if args.size is not None else auto_size(img, regions)
        params = MeshParameters(
            size=size, gap=args.gap, smoothing=args.smoothing, outer_name=args.outer_name
        )
        meta = labels_to_mesh(img, regions, out, holes=holes, params=params)
    except (MeshingError, ImportError) as exc:
        return _fail(exc)
    _summary(meta, out)
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from tumorpde.meshing.labels import MeshingError, import_mesh

    out = args.output or Path(args.file.name.split(".")[0] + ".msh")
    if out.suffix != ".msh":
        return _fail(MeshingError(f"-o {out}: the output must be a .msh file"))
    if out.resolve() == args.file.resolve():
        return _fail(MeshingError(f"-o {out}: would overwrite the input; choose another name"))
    try:
        _check_new(out, args.overwrite)
        meta = import_mesh(args.file, out, scale=_UNITS[args.unit])
    except (MeshingError, ImportError) as exc:
        return _fail(exc)
    _summary(meta, out)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from tumorpde.meshing.info import format_info, mesh_info
    from tumorpde.meshing.msh import read_msh

    try:
        m = read_msh(args.mesh)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(exc)
    info = mesh_info(m, sliver_deg=args.threshold)
    print(json.dumps(info, indent=2) if args.json else format_info(args.mesh, info))
    if args.png:
        from tumorpde.output.viz import render_regions

        path = render_regions(
            m.points, m.tets, m.tet_tags, m.regions, args.png, axis=args.axis, origin=args.at
        )
        if path is None:  # pragma: no cover - depends on the environment
            return _fail(RuntimeError("--png needs PyVista: pip install 'tumorpde[viz]'"))
        if not args.json:
            print(f"  picture: {path}")
    if args.check and info["slivers"]:
        print(
            f"error: {args.mesh}: {info['slivers']} tetrahedra have a dihedral angle below "
            f"{args.threshold:g} deg (min {info['min_dihedral_deg']:.2f} deg)",
            file=sys.stderr,
        )
        return 1
    return 0


def register(subparsers: Any) -> None:
    """Add the ``mesh`` command group to the main parser's subparsers.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    from tumorpde.meshing.atlas import ORGANS

    m = subparsers.add_parser(
        "mesh", help="build, convert and inspect organ meshes (serial; needs tumorpde[mesh])"
    )
    sub = m.add_subparsers(dest="mesh_command", required=True)

    b = sub.add_parser("build", help="(re)generate an atlas organ mesh")
    b.add_argument("organ", choices=sorted(ORGANS))
    b.add_argument("--resolution", choices=("coarse", "fine"), default="coarse")
    b.add_argument("--out", type=Path, help="output directory (default ~/.cache/tumorpde/meshes)")
    b.add_argument("--size", type=float, help="override the target edge length (mm)")
    b.set_defaults(func=_cmd_build)

    f = sub.add_parser("from-labels", help="label image (NIfTI, NRRD, INR, .npy) -> tagged mesh")
    f.add_argument("image", type=Path)
    f.add_argument("--labels", required=True, help="regions, e.g. 1=tumor,2=white,3=grey")
    f.add_argument("--holes", help="labels removed from the innermost region, e.g. 4=ventricle")
    f.add_argument("--spacing", help="voxel size in mm (required for .npy): 1 or 0.5,0.5,1.2")
    f.add_argument(
        "--size",
        type=float,
        help="target edge length in mm (default: 4, smaller when a region is small)",
    )
    f.add_argument("--gap", type=float, help="min distance between nested surfaces (0.5 size)")
    f.add_argument("--smoothing", type=float, help="label smoothing sigma in mm (0.3 size)")
    f.add_argument("--outer-name", default="outer", help="name of the outer boundary")
    f.add_argument("-o", "--output", type=Path, help="output .msh (default ./<image>.msh)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing -o and its .json")
    f.set_defaults(func=_cmd_from_labels)

    i = sub.add_parser("import", help="gmsh .msh or meshio format -> tumorpde .msh + .json")
    i.add_argument("file", type=Path)
    i.add_argument("--unit", choices=sorted(_UNITS), default="mm", help="length unit of FILE")
    i.add_argument("-o", "--output", type=Path, help="output .msh (default ./<file>.msh)")
    i.add_argument("--overwrite", action="store_true", help="replace an existing -o and its .json")
    i.set_defaults(func=_cmd_import)

    n = sub.add_parser("info", help="cells, regions, boundaries, quality, bounding box")
    n.add_argument("mesh", type=Path)
    n.add_argument("--json", action="store_true")
    n.add_argument("--png", type=Path, help="draw the regions on a cut (PyVista, off-screen)")
    n.add_argument("--axis", choices=("x", "y", "z"), default="z", help="normal of the cut")
    n.add_argument("--at", type=float, help="cut position along --axis (default: centre)")
    n.add_argument("--threshold", type=float, default=5.0, help="sliver angle in deg (5)")
    n.add_argument("--check", action="store_true", help="exit 1 if there are slivers")
    n.set_defaults(func=_cmd_info)
