"""``tumorpde warmup [CASE ...]``: compile every form of the shipped cases into the JIT cache.

A case's first run spends most of its set-up in the DOLFINx JIT (FFCx code generation and a C
compiler for each of ~40 distinct kernels); later runs load the kernels from the cache
(``$XDG_CACHE_HOME/fenics``, by default ``~/.cache/fenics``; DOLFINx's ``cache_dir`` option).
This command runs each case for one time step into a temporary directory, in a fresh child
process that executes ``tumorpde run`` itself, so the cache receives exactly the kernels a later
``tumorpde run`` of the case asks for. A fresh process matters: UFL sorts the operands of a sum
of ``Constant`` objects by their text (``c_11`` before ``c_9``), so a form's signature can
depend on how many constants were created before it in the same process; the construction in a
run's own process is reproduced only by a new process.

Default cases: the checkout's ``benchmarks/cases/*.toml`` (when the package runs from a
checkout) and the package's library cases; a case without a ``[mesh]`` table gets its organ's
atlas mesh from the mesh cache or the checkout's ``meshes/`` (skipped if there is none). Under
``mpiexec`` rank 0 does the work (serial children; the kernels do not depend on the rank count)
while the other ranks wait. Prints, per case, the kernels it added and the time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["default_cases", "register", "warm_case"]

#: Environment variables of an MPI launcher; removed for the serial children (a child that saw
#: them would try to join the parent's job).
_LAUNCHER_PREFIXES = ("PMI_", "PMIX_", "HYDRA_", "MPIR_", "OMPI_", "MPI_LOCAL")

#: The checkout that holds this package, if it is one (``benchmarks/cases`` and ``meshes``).
_CHECKOUT = Path(__file__).resolve().parents[2]


def default_cases() -> list[Path]:
    """The shipped cases: a checkout's ``benchmarks/cases/*.toml``, then the library cases."""
    from importlib import resources

    cases = sorted((_CHECKOUT / "benchmarks" / "cases").glob("*.toml"))
    lib = Path(str(resources.files("tumorpde.library").joinpath("data", "cases")))
    return cases + sorted(lib.glob("*.toml"))


def _kernels(cache: Path) -> set[str]:
    """Names of the compiled modules in a DOLFINx JIT cache (one per distinct kernel set)."""
    return {p.name[: -len(".c.cached")] for p in cache.glob("libffcx_*.c.cached")}


def _mesh_overrides(case: Path) -> list[str] | None:
    """``--set`` items giving a case without ``[mesh]`` its organ's atlas mesh ([] if it has one).

    Returns:
        The items, or None when the case has neither a mesh nor a cached atlas mesh.
    """
    from tumorpde.config import read_case_tables
    from tumorpde.meshing.atlas import default_cache_dir

    tables = read_case_tables(case)
    if "mesh" in tables:
        return []
    organ = tables.get("organ")
    if not organ:
        return None
    for folder in (default_cache_dir(), _CHECKOUT / "meshes"):
        msh = folder / f"{organ}.msh"
        if msh.is_file():
            return ["mesh.kind=file", f"mesh.path={msh}", "mesh.unit=mm"]
    return None


def warm_case(case: Path, cache: Path, timeout_s: float = 900.0) -> dict[str, Any]:
    """Run ``case`` for one time step in a child ``tumorpde run`` and report what it compiled.

    Args:
        case: The TOML case.
        cache: The JIT cache directory the child compiles into (its ``cache_dir`` option).
        timeout_s: Limit for the child.

    Returns:
        ``{"case", "status" ("ok", "failed", "skipped"), "seconds", "kernels_added",
        "message"}``.
    """
    from tumorpde.config import ConfigError, load_config, parse_override

    out: dict[str, Any] = {"case": str(case), "kernels_added": 0, "seconds": 0.0, "message": ""}
    try:
        mesh = _mesh_overrides(case)
        dt = load_config(case, dict(parse_override(s) for s in mesh or [])).time.dt  # hours
        if mesh is None:  # valid without a mesh table (not expected): nothing to run it on
            return {**out, "status": "skipped", "message": "no [mesh] and no atlas mesh"}
    except ConfigError as exc:
        first = "; ".join(f"{field}: {msg}" for field, msg in exc.problems[:2])
        return {**out, "status": "failed", "message": first or str(exc)}
    except (OSError, ValueError) as exc:
        return {**out, "status": "failed", "message": str(exc)}
    sets = [f"time.t_end={dt!r} h", f"time.output_every={dt!r} h", "output.picture=false"]
    sets += mesh
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LAUNCHER_PREFIXES)}
    before = _kernels(cache)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tumorpde-warmup-") as tmp:
        # the child runs in tmp, where DOLFINx's per-directory option file names the cache
        (Path(tmp) / "dolfinx_jit_options.json").write_text(json.dumps({"cache_dir": str(cache)}))
        cmd = [sys.executable, "-m", "tumorpde", "run", str(case.resolve())]
        cmd += ["-o", str(Path(tmp) / "run"), "--allow-coarse-seed", "--quiet"]
        for item in sets:
            cmd += ["--set", item]
        try:
            proc = subprocess.run(
                cmd,
                env=env,
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
            failed = proc.returncode != 0
            message = proc.stderr.strip().splitlines()[-1] if failed and proc.stderr else ""
        except subprocess.TimeoutExpired:
            failed, message = True, f"timed out after {timeout_s:.0f} s"
    out["seconds"] = time.perf_counter() - t0
    out["kernels_added"] = len(_kernels(cache) - before)
    out["status"] = "failed" if failed else "ok"
    out["message"] = message
    return out


def _cmd_warmup(args: argparse.Namespace) -> int:
    """Warm the JIT cache for the given or the shipped cases (rank 0 works, the others wait).

    Returns:
        0 if every case ran (skipped cases allowed), 1 if one failed.
    """
    from tumorpde.cli._mpi import install_abort_hook

    comm = install_abort_hook()
    import dolfinx.jit

    rc = 0
    if comm.rank == 0:
        cache = args.cache_dir or Path(dolfinx.jit.get_options()["cache_dir"])
        cache = cache.expanduser().resolve()
        cases = [Path(c) for c in args.case] if args.case else default_cases()
        print(f"warmup: {len(cases)} case(s) into the JIT cache {cache}", flush=True)
        total0, n0 = time.perf_counter(), len(_kernels(cache))
        for case in cases:
            r = warm_case(case, cache, args.timeout)
            line = f"  {case.name:40s} {r['status']:7s} {r['seconds']:6.1f} s"
            line += f"  {r['kernels_added']:3d} kernel(s) compiled"
            print(line + (f"  ({r['message']})" if r["message"] else ""), flush=True)
            rc = 1 if r["status"] == "failed" else rc
        n1 = len(_kernels(cache))
        print(
            f"warmup: {n1 - n0} kernel(s) compiled, {n1} in the cache, "
            f"{time.perf_counter() - total0:.1f} s",
            flush=True,
        )
    req = comm.Ibarrier()  # the other ranks sleep while rank 0's children compile
    while not req.Test():
        time.sleep(0.2)
    return int(comm.bcast(rc, root=0))


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``tumorpde warmup [CASE ...] [--cache-dir DIR] [--timeout S]``.

    Args:
        subparsers: The main parser's ``add_subparsers()`` object.

    Returns:
        The ``warmup`` parser.
    """
    p = subparsers.add_parser(
        "warmup",
        help="compile the forms of the shipped (or given) cases into the JIT cache",
        description=(
            "Run each case for one time step (a fresh `tumorpde run` per case, output in a "
            "temporary directory) so that the DOLFINx JIT cache holds every kernel a later run "
            "needs. Default: the checkout's benchmarks/cases and the library cases. The cache "
            "is DOLFINx's (XDG_CACHE_HOME/fenics, default ~/.cache/fenics)."
        ),
    )
    p.add_argument("case", nargs="*", type=Path, help="TOML cases (default: the shipped ones)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="JIT cache to fill (default: DOLFINx's, as `tumorpde info` prints it)",
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per case (default: 900)")
    p.set_defaults(func=_cmd_warmup)
    return p
