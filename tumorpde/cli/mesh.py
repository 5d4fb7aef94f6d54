"""``tumorpde mesh build | from-labels | import | refine | info``: the mesh command group.

All serial except ``refine``, which also runs under ``mpiexec`` (DOLFINx refinement).

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

#: Stages of ``mesh build`` per resolution and their share of the wall time (%), measured on the
#: MNI brain: coarse 80 s (label image 18 s, surfaces 29 s, volume mesh 17 s, optimisation
#: 15 s), fine 32 min (0.3, 9.6, 10.6, 11.5 min; the rest < 10 s each), both on a loaded
#: 2-core machine. The percentage and ETA of the progress lines follow them.
BUILD_STAGES = {
    "coarse": {
        "label image": 22.0,
        "surfaces": 36.0,
        "volume mesh": 22.0,
        "optimise": 19.0,
        "write": 0.3,
        "quality": 0.3,
        "seed point": 0.4,
    },
    "fine": {
        "label image": 1.0,
        "surfaces": 30.0,
        "volume mesh": 33.0,
        "optimise": 34.5,
        "write": 0.5,
        "quality": 0.5,
        "seed point": 0.5,
    },
}


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
    from tumorpde.meshing.atlas import atlas_stem, build_organ, default_cache_dir
    from tumorpde.meshing.labels import MeshingError
    from tumorpde.progress import Stages

    out = args.out or default_cache_dir()
    label = f"mesh build {args.organ} ({args.resolution})"
    try:
        zones = _zones(args)
        with Stages(label, BUILD_STAGES.get(args.resolution, BUILD_STAGES["fine"])) as stages:
            meta = build_organ(args.organ, args.resolution, out, size=args.size, refine=zones)
            stages.finish(f"{meta['cells']} cells")
    except (MeshingError, ImportError) as exc:
        return _fail(exc)
    stem = atlas_stem(args.organ, args.resolution, bool(zones))
    _summary(meta, Path(out) / f"{stem}.msh")
    return 0


def _zones(args: argparse.Namespace) -> list[Any]:
    """The ``--refine-around/--refine-radius/--refine-size`` zones of build and from-labels."""
    return _parsed_zones(args.refine_around, args.refine_radius, args.refine_size, "--refine-")


def _parsed_zones(
    around: list[str] | None, radius: list[float] | None, size: list[float] | None, prefix: str
) -> list[Any]:
    """:func:`~tumorpde.meshing.zones.parse_zones` with errors as MeshingError (exit 2)."""
    from tumorpde.meshing.labels import MeshingError
    from tumorpde.meshing.zones import ZoneError, parse_zones

    try:
        return parse_zones(around, radius, size)
    except ZoneError as exc:
        raise MeshingError(str(exc).replace("--", prefix)) from None


def _add_zone_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--refine-around",
        action="append",
        metavar="X,Y,Z",
        help="centre (mm) of a ball meshed finer, e.g. around a lesion (repeatable)",
    )
    p.add_argument(
        "--refine-radius", type=float, action="append", help="its radius in mm (once or each)"
    )
    p.add_argument(
        "--refine-size",
        type=float,
        action="append",
        help="tetrahedron edge length in the ball, mm (once or each; surfaces keep --size)",
    )


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
            size=size,
            gap=args.gap,
            smoothing=args.smoothing,
            outer_name=args.outer_name,
            refine=_zones(args),
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


def _cmd_refine(args: argparse.Namespace) -> int:
    from tumorpde.cli._mpi import install_abort_hook, say
    from tumorpde.meshing.labels import MeshingError
    from tumorpde.meshing.msh import MshError, check_msh_header

    world = install_abort_hook()
    out = args.output or args.mesh.with_name(args.mesh.stem + "_refined.msh")
    try:  # all input checks before any compute, identical on every rank
        check_msh_header(args.mesh)
        zones = _parsed_zones(args.around, args.radius, args.size, "--")
        if not zones:
            raise MeshingError("mesh refine needs --around X,Y,Z --radius R --size H")
        if out.suffix != ".msh":
            raise MeshingError(f"-o {out}: the output must be a .msh file")
        if out.resolve() == args.mesh.resolve():
            raise MeshingError(f"-o {out}: would overwrite the input; choose another name")
        _check_new(out, args.overwrite)
    except (MeshingError, MshError, FileNotFoundError) as exc:
        if world.rank == 0:
            _fail(exc)
        return 2
    from tumorpde.fem.refine_file import refine_msh_file

    world.barrier()  # every rank checked -o before rank 0 may create it
    try:
        meta = refine_msh_file(args.mesh, out, zones, world)
    except (MeshingError, MshError) as exc:
        if world.rank == 0:
            _fail(exc)
        return 2
    ref = meta["refinement"]
    say(world, f"wrote {out} and {out.with_suffix('.json').name}")
    say(
        world,
        f"  {ref['cells_before']} -> {meta['cells']} tetrahedra "
        f"({len(ref['edges_split_per_round'])} bisection rounds), {meta['vertices']} vertices; "
        f"{world.size} MPI rank(s)",
    )
    vols = ", ".join(
        f"{n} {v:.1f} (input {ref['input_volumes_mm3'].get(n, float('nan')):.1f})"
        for n, v in meta["volumes_mm3"].items()
        if n != "total"
    )
    say(world, f"  volumes mm^3: {vols}")
    say(
        world,
        f"  min dihedral {meta['min_dihedral_deg']:.2f} deg, {meta['slivers_below_5deg']} "
        f"sliver(s) < 5 deg; {meta['build_time_s']:.1f} s",
    )
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
    _add_zone_options(b)
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
    _add_zone_options(f)
    f.set_defaults(func=_cmd_from_labels)

    i = sub.add_parser("import", help="gmsh .msh or meshio format -> tumorpde .msh + .json")
    i.add_argument("file", type=Path)
    i.add_argument("--unit", choices=sorted(_UNITS), default="mm", help="length unit of FILE")
    i.add_argument("-o", "--output", type=Path, help="output .msh (default ./<file>.msh)")
    i.add_argument("--overwrite", action="store_true", help="replace an existing -o and its .json")
    i.set_defaults(func=_cmd_import)

    r = sub.add_parser(
        "refine",
        help="refine a tagged .msh around lesions (tags, volumes kept; runs under mpiexec)",
    )
    r.add_argument("mesh", type=Path)
    r.add_argument(
        "--around",
        action="append",
        metavar="X,Y,Z",
        required=True,
        help="centre of a refinement ball in mm (repeatable)",
    )
    r.add_argument(
        "--radius", type=float, action="append", help="ball radius in mm (once or per --around)"
    )
    r.add_argument(
        "--size",
        type=float,
        action="append",
        help="largest edge length in the ball, mm (once or per --around)",
    )
    r.add_argument("-o", "--output", type=Path, help="output .msh (default <mesh>_refined.msh)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing -o and its .json")
    r.set_defaults(func=_cmd_refine)

    n = sub.add_parser("info", help="cells, regions, boundaries, quality, bounding box")
    n.add_argument("mesh", type=Path)
    n.add_argument("--json", action="store_true")
    n.add_argument("--png", type=Path, help="draw the regions on a cut (PyVista, off-screen)")
    n.add_argument("--axis", choices=("x", "y", "z"), default="z", help="normal of the cut")
    n.add_argument("--at", type=float, help="cut position along --axis (default: centre)")
    n.add_argument("--threshold", type=float, default=5.0, help="sliver angle in deg (5)")
    n.add_argument("--check", action="store_true", help="exit 1 if there are slivers")
    n.set_defaults(func=_cmd_info)
