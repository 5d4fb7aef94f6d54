"""Adversarial pass: hostile and unlucky inputs, each run as a subprocess and classified.

Every scenario is a command (``tumorpde ...``, under ``mpiexec`` where it matters) run in its own
work folder with a timeout; some prepare files first, some send a signal mid-run, some hold the
run folder's lock. The outcome is classified automatically:

* ``clear error``: exit 2/3/4 (or 128+n for the signal we sent) with a message of at most one
  screen that names a field path or file, and no traceback;
* ``handled``: a scenario that must succeed (or a fault that must be survived) did: exit as
  expected, its own check passed (after a fault: output readable up to the last output time,
  and ``--resume`` completes the run with nothing missing);
* ``vague error``: non-zero exit whose message names no field or file (or is longer than a
  screen);
* ``traceback/C abort``: a Python traceback in the output, or exit 134/139 or from a signal we
  did not send;
* ``hang``: the timeout was reached;
* ``nonsense accepted``: exit 0 on an invalid input;
* ``silent death``: non-zero exit with no output at all;
* ``user data destroyed``: a file that existed before (and is not the run's own) was changed
  or removed;
* ``own output lost``: after a fault, the run's fields or QoIs are not readable up to its last
  output time, or ``--resume`` could not complete it;
* ``wrong result``: a scenario that must succeed failed or its check failed;
* ``not possible here``: the scenario cannot be set up on this machine (recorded, not run).

Usage::

    python benchmarks/adversarial.py [--out DIR] [--only SUBSTRING] [--list]

Writes ``DIR/adversarial.json`` (command, exit code, first lines of output, class and note of
every scenario) and prints the counts per class; exit 1 if any scenario is neither ``clear
error``, ``handled`` nor ``not possible here``. Uses small box cases: the whole pass takes a few
minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import soak

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TUMORPDE = str(BIN / "tumorpde") if (BIN / "tumorpde").exists() else "tumorpde"
MPIEXEC = str(BIN / "mpiexec") if (BIN / "mpiexec").exists() else "mpiexec"
MESH = REPO / "meshes" / "brain_phantom.msh"

OK_CLASSES = ("clear error", "handled", "not possible here")
CLASSES = (
    "clear error",
    "handled",
    "vague error",
    "traceback/C abort",
    "hang",
    "nonsense accepted",
    "silent death",
    "user data destroyed",
    "own output lost",
    "wrong result",
    "not possible here",
)
#: Longest error message that still fits one screen (progress lines not counted).
SCREEN_LINES = 30


# ------------------------------------------------------------------------------- case files
def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Raw):
        return v.text
    raise TypeError(type(v))


class Raw:
    """A TOML value written verbatim (``1e400``, ``9**9``...)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def dumps(d: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer (scalars first, then one ``[table]`` per nested dict)."""
    lines = []
    tables = []
    for k, v in d.items():
        if isinstance(v, dict) and not k.startswith("="):
            tables.append((k, v))
        else:
            lines.append(f"{_key(k.lstrip('='))} = {_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in tables:
        name = f"{prefix}{_key(k)}"
        out += f"\n[{name}]\n" + dumps(v, name + ".")
    return out


DELETE = object()


def base_case(**patch: Any) -> dict[str, Any]:
    """A small valid case (box 6^3, 2 days, 12 h steps); dotted keys in ``patch`` change it."""
    case: dict[str, Any] = {
        "name": "adv_box",
        "mesh": {"kind": "box", "size": [6.0, 6.0, 6.0], "cells": [6, 6, 6]},
        "time": {"t_end": "2 day", "dt": "12 h", "output_every": "1 day"},
        "tumor": {
            "proliferation_rate": "0.05 1/day",
            "motility": "0.65 mm^2/day",
            "chemotaxis": "0.5 mm^2/day/nM",
            "initial": {"kind": "gaussian", "center": [3.0, 3.0, 3.0], "radius": 1.2},
        },
        "ligand": {
            "name": "EGF",
            "diffusivity": "6e-7 cm^2/s",
            "decay_rate": "1e-4 1/s",
            "tumor_secretion": "1 nM/h",
            "stromal_secretion": "0.02 nM/h",
        },
        "receptor": {
            "name": "EGFR",
            "receptors_per_cell": 5e4,
            "k_on": "1e6 1/M/s",
            "k_off": "2e-3 1/s",
            "k_t": "0.03 1/min",
            "k_e": "0.15 1/min",
        },
        "output": {"format": "xdmf", "picture": False},
    }
    for dotted, value in patch.items():
        keys = dotted.split("__") if "__" in dotted else dotted.split(".")
        d = case
        for k in keys[:-1]:
            d = d.setdefault(k, {})
        if value is DELETE:
            d.pop(keys[-1], None)
        else:
            d[keys[-1]] = value
    return case


def fault_case(**patch: Any) -> dict[str, Any]:
    """A case that runs a few seconds (box 12^3, 60 days of 6 h steps, output every 3 days)."""
    case = base_case(**patch)
    case["name"] = patch.get("name", "adv_fault")
    case["mesh"] = {"kind": "box", "size": [8.0, 8.0, 8.0], "cells": [12, 12, 12]}
    case["time"] = {"t_end": "60 day", "dt": "6 h", "output_every": "3 day"}
    case["tumor"]["initial"]["center"] = [4.0, 4.0, 4.0]
    case["output"] = {"format": "xdmf", "picture": False, "checkpoint": {"every_steps": 8}}
    return case


def therapy_case() -> dict[str, Any]:
    """The base case with cetuximab every 7 days and two compare arms."""
    case = base_case(name="adv_therapy")
    case["therapy"] = {"treatments": [{"drug": "cetuximab", "regimen": "weekly"}]}
    case["compare"] = {"arms": {"untreated": [], "cetuximab": ["cetuximab"]}}
    return case


# --------------------------------------------------------------------------------- scenarios
@dataclass
class Fault:
    """A signal sent to a launch once its ``qoi.csv`` has ``rows`` rows (or after ``delay``)."""

    sig: int
    #: group: the launcher's process group (Ctrl-C, ``kill -- -PGID``); tree: every process of
    #: the launch (a batch system, the OOM killer); mpiexec: the launcher only; rank: one rank
    target: str = "tree"
    rows: int | None = 40
    delay: float | None = None
    repeat: int = 1  # send it this many times, 50 ms apart


@dataclass
class Scenario:
    """One hostile input or fault, its expectation and what it must not touch."""

    name: str
    category: str
    argv: list[str] | str  # a list: run as is; a string: through ``bash -c``
    expect: str = "error"  # error | ok | either (exit 0 or a clear error) | fault
    names: tuple[str, ...] = ()
    files: dict[str, Any] = field(default_factory=dict)  # path -> dict (TOML) | str | bytes
    setup: Callable[[Path], None] | None = None
    protect: tuple[str, ...] = ()
    faults: list[Fault] = field(default_factory=list)
    resume_ranks: int | None = None  # fault scenarios: resume on this many ranks afterwards
    check: Callable[[Path, dict[str, Any]], str | None] | None = None  # -> problem or None
    lock: str | None = None  # hold this file's flock during the command
    fsize: int | None = None  # RLIMIT_FSIZE for the command (a simulated full disk)
    timeout: float = 60.0
    ok_rcs: tuple[int, ...] = (0,)  # exit codes that count as success
    skip: str | None = None  # why it is not possible here
    note: str = ""


def T(*args: str) -> list[str]:
    return [TUMORPDE, *args]


def M(n: int, *args: str) -> list[str]:
    return [MPIEXEC, "-n", str(n), TUMORPDE, *args]


def run_case(n: int = 1, case: str = "case.toml", *extra: str) -> list[str]:
    argv = ["run", case, "-o", "out", *extra]
    return T(*argv) if n == 1 else M(n, *argv)


def scenarios() -> list[Scenario]:
    """The whole list (about 130)."""
    S: list[Scenario] = []
    add = S.append

    # ------------------------------------------------------------ bad TOML, keys, types
    cat = "toml/keys/types/units"
    raw_cases = {
        "toml_syntax_unclosed": ('name = "x"\n[time\nt_end = 1\n', ("case.toml", "line")),
        "toml_duplicate_key": (
            dumps(base_case()) + '\n[mesh]\nkind = "box"\n',
            ("case.toml", "mesh"),
        ),
        "toml_binary_garbage": (bytes(range(256)) * 8, ("case.toml",)),
        "toml_empty_file": ("", ("name", "mesh", "time")),
        "toml_not_utf8": ('name = "caf\xe9"\n'.encode("latin-1") + b"\xff\xfe", ("case.toml",)),
        "toml_deep_nesting": ("x = " + "[" * 5000 + "]" * 5000 + "\n", ("case.toml", "x")),
        "toml_huge_string": ('name = "' + "a" * 5_000_000 + '"\n', ("name",)),
    }
    for nm, (text, names) in raw_cases.items():
        add(Scenario(nm, cat, T("validate", "case.toml"), names=names, files={"case.toml": text}))
    for nm, patch, names in [
        ("unknown_key_top", {"colour": "red"}, ("colour",)),
        ("unknown_key_nested", {"tumor.motilty": "1 mm^2/day"}, ("tumor.motilty",)),
        ("unknown_section", {"tumour": {"motility": 1.0}}, ("tumour",)),
        ("wrong_type_t_end_list", {"time.t_end": [1, 2]}, ("time.t_end",)),
        ("wrong_type_cells_str", {"mesh.cells": "ten"}, ("mesh.cells",)),
        ("wrong_type_picture_str", {"output.picture": "yes please"}, ("output.picture",)),
        ("wrong_type_name_int", {"name": 42}, ("name",)),
        ("wrong_type_petsc_table", {"solver.petsc": [1, 2]}, ("solver.petsc",)),
        ("unit_wrong_dimension", {"tumor.proliferation_rate": "0.05 mm"}, ("proliferation",)),
        ("unit_unknown", {"time.t_end": "5 bananas"}, ("time.t_end",)),
        ("unit_grammar_double", {"time.dt": "12 h h"}, ("time.dt",)),
        ("unit_grammar_paren", {"time.dt": "12 h)"}, ("time.dt",)),
        ("unit_code_injection", {"time.dt": "__import__('os').system('true') h"}, ("time.dt",)),
        ("unit_no_number", {"time.dt": "h"}, ("time.dt",)),
        ("unit_empty_string", {"time.dt": ""}, ("time.dt",)),
        ("region_unknown", {"regions": {"whitematter": {"tumor_motility": 1.0}}}, ("whitematter",)),
        ("name_path_traversal", {"name": "../../etc/x"}, ("name",)),
        ("name_very_long", {"name": "a" * 500}, ("name",)),
        ("seed_kind_unknown", {"tumor.initial": {"kind": "cube"}}, ("tumor.initial",)),
        ("scheme_unknown", {"time.scheme": "rk4"}, ("time.scheme",)),
        ("output_field_unknown", {"output.fields": ["tumor", "bogus"]}, ("bogus",)),
        ("output_format_unknown", {"output.format": "vtk"}, ("output.format",)),
        ("missing_required_t_end", {"time.t_end": DELETE}, ("time.t_end",)),
    ]:
        add(
            Scenario(
                nm,
                cat,
                T("validate", "case.toml"),
                names=names,
                files={"case.toml": base_case(**patch)},
            )
        )
    # the same kind of error through `run` and at 2 ranks: no compute, nothing written
    add(
        Scenario(
            "run_unknown_key_2ranks",
            cat,
            run_case(2),
            names=("tumor.motilty",),
            files={"case.toml": base_case(**{"tumor.motilty": 1.0})},
            check=_no_output_dir,
        )
    )
    add(
        Scenario(
            "set_unknown_key",
            cat,
            T("validate", "case.toml", "--set", "tumor.bogus=1"),
            names=("tumor.bogus",),
            files={"case.toml": base_case()},
        )
    )
    add(
        Scenario(
            "set_no_equals",
            cat,
            T("validate", "case.toml", "--set", "time.t_end"),
            names=("--set", "time.t_end"),
            files={"case.toml": base_case()},
        )
    )
    add(
        Scenario(
            "set_bad_value",
            cat,
            T("validate", "case.toml", "--set", "time.dt=[[["),
            names=("time.dt", "--set"),
            files={"case.toml": base_case()},
        )
    )
    add(
        Scenario(
            "set_inf",
            cat,
            T("validate", "case.toml", "--set", "time.t_end=inf"),
            names=("time.t_end",),
            files={"case.toml": base_case()},
        )
    )
    add(
        Scenario(
            "cli_unknown_flag",
            cat,
            T("run", "case.toml", "--frobnicate"),
            names=("--frobnicate",),
            files={"case.toml": base_case()},
        )
    )

    # ---------------------------------------------------------- non-finite / extreme numbers
    cat = "non-finite/extreme"
    for nm, patch, names in [
        ("t_end_inf", {"time.t_end": math.inf}, ("time.t_end",)),
        ("t_end_nan", {"time.t_end": math.nan}, ("time.t_end",)),
        ("t_end_1e400_literal", {"time.t_end": Raw("1e400")}, ("time.t_end",)),
        ("t_end_inf_string", {"time.t_end": "inf day"}, ("time.t_end",)),
        ("t_end_nan_string", {"time.t_end": "nan h"}, ("time.t_end",)),
        ("t_end_1e400_string", {"time.t_end": "1e400 day"}, ("time.t_end",)),
        ("t_end_negative", {"time.t_end": "-2 day"}, ("time.t_end",)),
        ("t_end_zero", {"time.t_end": 0}, ("time.t_end",)),
        ("t_end_huge_steps", {"time.t_end": "1e12 day"}, ("time.t_end", "time.dt", "dt")),
        ("dt_tiny", {"time.dt": 1e-300}, ("time.dt", "dt")),
        ("dt_denormal", {"time.dt": 5e-324}, ("time.dt", "dt")),
        ("dt_gt_t_end", {"time.dt": "100 day"}, ("time.dt", "dt")),
        ("output_every_tiny", {"time.output_every": "1e-9 h"}, ("output_every",)),
        ("tolerance_zero", {"time.tolerance": 0.0}, ("time.tolerance",)),
        ("tolerance_nan", {"time.tolerance": math.nan}, ("time.tolerance",)),
        ("max_retries_huge", {"time.max_retries": 10**12}, ("time.max_retries",)),
        ("units_power_tower", {"time.t_end": "9**9**9 h"}, ("time.t_end",)),
        ("units_caret_tower", {"time.t_end": "2 h^9^9^9"}, ("time.t_end",)),
        ("units_big_exponent", {"tumor.motility": "1 mm^99999/day"}, ("tumor.motility",)),
        ("units_deep_parens", {"time.dt": "1 " + "(" * 50 + "h" + ")" * 50}, ("time.dt",)),
        ("units_very_long", {"time.dt": "1 " + "*".join(["h"] * 400)}, ("time.dt",)),
        (
            "diffusivity_overflow",
            {"ligand.diffusivity": "1e308 cm^2/s"},
            ("ligand.diffusivity", "diffusivity"),
        ),
        ("rate_negative", {"tumor.proliferation_rate": "-1 1/day"}, ("proliferation_rate",)),
        ("peak_above_one", {"tumor.initial.peak": 2.0}, ("peak",)),
        ("radius_zero", {"tumor.initial.radius": 0.0}, ("radius",)),
        ("receptors_1e300", {"receptor.receptors_per_cell": 1e300}, ("receptors_per_cell",)),
        ("box_size_huge", {"mesh.size": [1e300, 1e300, 1e300]}, ("mesh.size",)),
        ("box_size_inf", {"mesh.size": [math.inf, 1.0, 1.0]}, ("mesh.size",)),
        ("box_size_zero", {"mesh.size": [0.0, 6.0, 6.0]}, ("mesh.size",)),
        ("box_cells_huge", {"mesh.cells": [100000, 100000, 100000]}, ("mesh.cells",)),
        ("box_cells_zero", {"mesh.cells": [0, 6, 6]}, ("mesh.cells",)),
        ("box_cells_negative", {"mesh.cells": [-6, 6, 6]}, ("mesh.cells",)),
        (
            "box_cells_int_overflow",
            {"mesh.cells": [Raw("99999999999999999999"), 6, 6]},
            ("mesh.cells",),
        ),
        (
            "box_region_outside",
            {"mesh.regions": [{"name": "r", "min": [0, 0, 0], "max": [99, 99, 99]}]},
            ("mesh.regions",),
        ),
        (
            "checkpoint_minutes_inf",
            {"output.checkpoint": {"every_minutes": math.inf}},
            ("every_minutes",),
        ),
        ("checkpoint_keep_zero", {"output.checkpoint": {"keep": 0}}, ("keep",)),
        (
            "seed_center_nan",
            {"tumor.initial.center": [math.nan, 3.0, 3.0]},
            ("tumor.initial.center",),
        ),
    ]:
        add(
            Scenario(
                nm,
                cat,
                run_case(),
                names=names,
                files={"case.toml": base_case(**patch)},
                check=_no_output_dir,
            )
        )
    therapy = therapy_case()
    for nm, tr, names in [
        (
            "dose_interval_tiny",
            {"drug": "cetuximab", "regimen": "weekly", "interval": "1e-9 h"},
            ("therapy.treatments.0", "interval"),
        ),
        (
            "dose_interval_nan",
            {"drug": "cetuximab", "regimen": "weekly", "interval": math.nan},
            ("therapy.treatments.0", "interval"),
        ),
        (
            "dose_huge",
            {"drug": "cetuximab", "regimen": "weekly", "dose": "1e300 mg/m^2"},
            ("therapy.treatments.0", "dose"),
        ),
        ("drug_unknown", {"drug": "snakeoil"}, ("snakeoil",)),
        ("drug_file_missing", {"drug": "mydrug.toml"}, ("mydrug",)),
        ("regimen_unknown", {"drug": "cetuximab", "regimen": "hourly"}, ("hourly",)),
        (
            "drug_start_after_end",
            {"drug": "cetuximab", "regimen": "weekly", "start": "1e400 day"},
            ("therapy.treatments.0",),
        ),
    ]:
        case = json.loads(json.dumps(therapy))
        case["therapy"]["treatments"] = [tr]
        add(
            Scenario(
                nm, cat, run_case(), names=names, files={"case.toml": case}, check=_no_output_dir
            )
        )

    # ------------------------------------------------------------------------ corrupt meshes
    cat = "meshes/files"
    msh = MESH.read_bytes()
    mesh_case = base_case(
        **{
            "mesh": {"kind": "file", "path": "organ.msh"},
            "tumor.initial.center": [30.0, 35.0, 20.0],
        }
    )
    for nm, content, names in [
        ("mesh_truncated_40pct", msh[: len(msh) * 2 // 5], ("organ.msh",)),
        ("mesh_truncated_header", msh[:200], ("organ.msh",)),
        ("mesh_garbage_bytes", os.urandom(200_000), ("organ.msh",)),
        ("mesh_empty", b"", ("organ.msh",)),
        (
            "mesh_json_content",
            (REPO / "meshes" / "brain_phantom.json").read_bytes(),
            ("organ.msh",),
        ),
        ("mesh_no_physical_names", _msh_without_names(), ("organ.msh", "mesh: ")),
        ("mesh_nan_coordinates", _msh_nan_nodes(), ("organ.msh",)),
    ]:
        add(
            Scenario(
                nm,
                cat,
                run_case(),
                names=names,
                files={"case.toml": mesh_case, "organ.msh": content},
                check=_no_output_dir,
                timeout=90,
            )
        )
    add(
        Scenario(
            "mesh_truncated_2ranks",
            cat,
            run_case(2),
            names=("organ.msh",),
            files={"case.toml": mesh_case, "organ.msh": msh[: len(msh) // 2]},
            check=_no_output_dir,
            timeout=90,
        )
    )
    add(
        Scenario(
            "mesh_json_path",
            cat,
            run_case(),
            names=("mesh.path", "brain_phantom.json"),
            files={
                "case.toml": base_case(
                    mesh={"kind": "file", "path": str(REPO / "meshes" / "brain_phantom.json")}
                )
            },
        )
    )
    add(
        Scenario(
            "mesh_missing_file",
            cat,
            run_case(),
            names=("mesh.path", "nothere.msh"),
            files={"case.toml": base_case(mesh={"kind": "file", "path": "nothere.msh"})},
        )
    )
    add(
        Scenario(
            "mesh_is_directory",
            cat,
            run_case(),
            names=("mesh.path", "adir.msh"),
            files={
                "case.toml": base_case(mesh={"kind": "file", "path": "adir.msh"}),
                "adir.msh/": None,
            },
        )
    )
    add(
        Scenario(
            "mesh_info_garbage",
            cat,
            T("mesh", "info", "organ.msh"),
            names=("organ.msh",),
            files={"organ.msh": os.urandom(50_000)},
        )
    )
    add(
        Scenario("mesh_info_missing", cat, T("mesh", "info", "nothere.msh"), names=("nothere.msh",))
    )
    add(
        Scenario(
            "case_is_directory", cat, run_case(1, "adir"), names=("adir",), files={"adir/": None}
        )
    )
    add(Scenario("case_missing", cat, run_case(1, "nothere.toml"), names=("nothere.toml",)))
    add(Scenario("case_dev_null", cat, T("validate", "/dev/null"), names=("/dev/null", "name")))
    add(
        Scenario(
            "case_dev_zero",
            cat,
            T("validate", "/dev/zero"),
            names=("/dev/zero",),
            timeout=30,
            note="an endless device as case file (memory capped at 2 GB)",
        )
    )
    add(
        Scenario(
            "case_fifo",
            cat,
            T("validate", "pipe.toml"),
            names=("pipe.toml",),
            setup=lambda w: os.mkfifo(w / "pipe.toml"),
            timeout=20,
            note="a named pipe nobody writes to",
        )
    )
    add(
        Scenario(
            "seed_outside_mesh",
            cat,
            run_case(),
            names=("tumor.initial",),
            files={"case.toml": base_case(**{"tumor.initial.center": [50.0, 3.0, 3.0]})},
            check=_no_output_dir,
        )
    )
    add(
        Scenario(
            "seed_outside_mesh_2ranks",
            cat,
            run_case(2),
            names=("tumor.initial",),
            files={"case.toml": base_case(**{"tumor.initial.center": [50.0, 3.0, 3.0]})},
            check=_no_output_dir,
        )
    )
    add(
        Scenario(
            "seed_outside_organ_mesh",
            cat,
            T("validate", "case.toml"),
            names=("tumor.initial",),
            files={
                "case.toml": base_case(
                    **{
                        "mesh": {"kind": "file", "path": str(MESH)},
                        "tumor.initial.center": [-500.0, 0.0, 0.0],
                    }
                )
            },
        )
    )
    add(
        Scenario(
            "petsc_unknown_option",
            cat,
            run_case(),
            names=("tumorpde_bogus_opt", "bogus"),
            files={"case.toml": base_case(**{"solver.petsc": {"bogus_opt": 1}})},
        )
    )
    add(
        Scenario(
            "petsc_unknown_option_2ranks",
            cat,
            run_case(2),
            names=("bogus",),
            files={"case.toml": base_case(**{"solver.petsc": {"bogus_opt": 1}})},
        )
    )
    add(
        Scenario(
            "petsc_bad_ksp_type",
            cat,
            run_case(),
            names=("ksp_type", "nonsense"),
            files={"case.toml": base_case(**{"solver.petsc": {"ksp_type": "nonsense"}})},
        )
    )
    add(
        Scenario(
            "petsc_bad_value_type",
            cat,
            run_case(),
            names=("ksp_rtol",),
            files={"case.toml": base_case(**{"solver.petsc": {"ksp_rtol": "lots"}})},
        )
    )
    add(
        Scenario(
            "petsc_dash_prefix",
            cat,
            T("validate", "case.toml"),
            names=("-ksp_type",),
            files={"case.toml": base_case(**{"solver.petsc": {"-ksp_type": "cg"}})},
        )
    )
    add(
        Scenario(
            "petsc_newton_diverges",
            cat,
            run_case(),
            names=("step", "Newton", "t ="),
            files={
                "case.toml": base_case(
                    **{
                        "solver.petsc": {"snes_max_it": 1, "snes_rtol": 1e-14},
                        "time.max_retries": 0,
                    }
                )
            },
            note="a step that cannot converge: exit 3 expected",
        )
    )

    # -------------------------------------------------------------------------------- extends
    cat = "extends"
    add(
        Scenario(
            "extends_cycle",
            cat,
            T("validate", "a.toml"),
            names=("a.toml", "b.toml"),
            files={
                "a.toml": 'extends = "b.toml"\nname = "a"\n',
                "b.toml": 'extends = "a.toml"\nname = "b"\n',
            },
        )
    )
    add(
        Scenario(
            "extends_self",
            cat,
            T("validate", "a.toml"),
            names=("a.toml",),
            files={"a.toml": 'extends = "a.toml"\nname = "a"\n'},
        )
    )
    add(
        Scenario(
            "extends_missing_base",
            cat,
            T("validate", "a.toml"),
            names=("nobase.toml",),
            files={"a.toml": 'extends = "nobase.toml"\nname = "a"\n'},
        )
    )
    add(
        Scenario(
            "extends_error_in_base",
            cat,
            T("validate", "a.toml"),
            names=("base.toml", "tumor.motilty"),
            files={
                "a.toml": 'extends = "base.toml"\nname = "a"\n',
                "base.toml": base_case(**{"tumor.motilty": 1.0}),
            },
        )
    )
    add(
        Scenario(
            "extends_syntax_error_in_base",
            cat,
            T("validate", "a.toml"),
            names=("base.toml",),
            files={"a.toml": 'extends = "base.toml"\nname = "a"\n', "base.toml": "[[[ not toml\n"},
        )
    )
    add(
        Scenario(
            "extends_wrong_type",
            cat,
            T("validate", "a.toml"),
            names=("extends",),
            files={"a.toml": 'extends = 42\nname = "a"\n'},
        )
    )
    add(
        Scenario(
            "extends_directory",
            cat,
            T("validate", "a.toml"),
            names=("extends", "adir"),
            files={"a.toml": 'extends = "adir"\nname = "a"\n', "adir/": None},
        )
    )
    add(
        Scenario(
            "extends_long_chain_cycle",
            cat,
            T("validate", "c0.toml"),
            names=("c0.toml",),
            files={f"c{i}.toml": f'extends = "c{(i + 1) % 12}.toml"\n' for i in range(12)},
        )
    )
    add(
        Scenario(
            "extends_ok_chain",
            cat,
            T("validate", "a.toml"),
            expect="ok",
            files={"a.toml": 'extends = "base.toml"\nname = "a"\n', "base.toml": base_case()},
        )
    )

    # ------------------------------------------------------------------ output-directory abuse
    cat = "output directory"
    foreign = {
        "out/manifest.json": '{"experiment": "mine", "n": 3}\n',
        "out/data.csv": "a,b\n1,2\n",
    }
    add(
        Scenario(
            "foreign_manifest_overwrite",
            cat,
            run_case(1, "case.toml", "--overwrite"),
            names=("out", "manifest.json"),
            files={"case.toml": base_case(), **foreign},
            protect=("out/manifest.json", "out/data.csv"),
        )
    )
    add(
        Scenario(
            "foreign_manifest_resume",
            cat,
            run_case(1, "case.toml", "--resume"),
            names=("out", "manifest.json"),
            files={"case.toml": base_case(), **foreign},
            protect=("out/manifest.json", "out/data.csv"),
        )
    )
    unrelated = {"out/notes.txt": "my notes\n", "out/sub/data.bin": b"\x00\x01" * 100}
    for nm, extra in [
        ("unrelated_dir", ()),
        ("unrelated_dir_overwrite", ("--overwrite",)),
        ("unrelated_dir_resume", ("--resume",)),
    ]:
        add(
            Scenario(
                nm,
                cat,
                run_case(1, "case.toml", *extra),
                names=("out",),
                files={"case.toml": base_case(), **unrelated},
                protect=("out/notes.txt", "out/sub/data.bin"),
            )
        )
    add(
        Scenario(
            "unrelated_dir_2ranks_overwrite",
            cat,
            run_case(2, "case.toml", "--overwrite"),
            names=("out",),
            files={"case.toml": base_case(), **unrelated},
            protect=("out/notes.txt", "out/sub/data.bin"),
        )
    )
    add(
        Scenario(
            "existing_run_no_overwrite",
            cat,
            run_case(),
            names=("out", "--overwrite"),
            files={"case.toml": base_case()},
            setup=_prior_run,
            protect=("out/qoi.csv", "out/manifest.json"),
        )
    )
    add(
        Scenario(
            "existing_run_overwrite",
            cat,
            run_case(1, "case.toml", "--overwrite"),
            expect="ok",
            files={"case.toml": base_case()},
            setup=_prior_run,
            check=_complete_run,
        )
    )
    add(
        Scenario(
            "overwrite_run_with_user_file",
            cat,
            run_case(1, "case.toml", "--overwrite"),
            expect="ok",
            files={"case.toml": base_case()},
            setup=_prior_run_with_notes,
            protect=("out/my_notes.txt",),
            check=_complete_run,
            note="a user's file inside an earlier run directory, replaced with --overwrite",
        )
    )
    for nm, extra in [
        ("live_run_overwrite", ("--overwrite",)),
        ("live_run_resume", ("--resume",)),
        ("live_run_plain", ()),
    ]:
        add(
            Scenario(
                nm,
                cat,
                run_case(1, "case.toml", *extra),
                names=("out", ".lock"),
                files={"case.toml": base_case()},
                setup=_prior_interrupted_run,
                lock="out/.lock",
                protect=("out/qoi.csv", "out/manifest.json", "out/fields.h5"),
            )
        )
    add(
        Scenario(
            "live_run_overwrite_2ranks",
            cat,
            run_case(2, "case.toml", "--overwrite"),
            names=("out", ".lock"),
            files={"case.toml": base_case()},
            setup=_prior_run,
            lock="out/.lock",
            protect=("out/qoi.csv", "out/manifest.json"),
        )
    )
    add(
        Scenario(
            "output_is_file",
            cat,
            run_case(),
            names=("out",),
            files={"case.toml": base_case(), "out": "a user file\n"},
            protect=("out",),
        )
    )
    add(
        Scenario(
            "output_unwritable_proc",
            cat,
            T("run", "case.toml", "-o", "/proc/tumorpde_adversarial"),
            names=("/proc/tumorpde_adversarial",),
            files={"case.toml": base_case()},
        )
    )
    ro = Scenario(
        "output_read_only_dir",
        cat,
        T("run", "case.toml", "-o", "ro/out"),
        names=("ro",),
        files={"case.toml": base_case(), "ro/": None},
        setup=lambda w: os.chmod(w / "ro", 0o555),
    )
    if os.geteuid() == 0:
        ro.skip = "running as root: a read-only directory does not stop writes"
    add(ro)
    add(
        Scenario(
            "compare_o_existing_files",
            cat,
            T("compare", "case.toml", "-o", "cmp"),
            names=("comparison", "cmp", "--overwrite"),
            files={
                "case.toml": therapy,
                "cmp/comparison.csv": "mine\n",
                "cmp/comparison.md": "# mine\n",
            },
            protect=("cmp/comparison.csv", "cmp/comparison.md"),
            timeout=120,
        )
    )
    add(
        Scenario(
            "compare_no_therapy",
            cat,
            T("compare", "case.toml", "-o", "cmp"),
            names=("therapy",),
            files={"case.toml": base_case()},
            expect="either",
            note="no [therapy]: a control arm alone, or a clear error",
        )
    )
    add(
        Scenario(
            "compare_unknown_arm",
            cat,
            T("compare", "case.toml", "-o", "cmp", "--arms", "nosucharm"),
            names=("nosucharm",),
            files={"case.toml": therapy},
        )
    )
    add(
        Scenario(
            "mesh_import_o_existing",
            cat,
            T("mesh", "import", str(MESH), "-o", "mine.msh"),
            names=("mine.msh", "--overwrite"),
            files={"mine.msh": "my mesh\n"},
            protect=("mine.msh",),
        )
    )
    add(
        Scenario(
            "mesh_import_o_existing_json",
            cat,
            T("mesh", "import", str(MESH), "-o", "mine.msh"),
            names=("mine.json", "--overwrite"),
            files={"mine.json": '{"mine": 1}\n'},
            protect=("mine.json",),
        )
    )
    add(
        Scenario(
            "mesh_from_labels_o_existing",
            cat,
            T(
                "mesh",
                "from-labels",
                "labels.npy",
                "--labels",
                "1=organ",
                "--spacing",
                "1",
                "-o",
                "mine.msh",
            ),
            names=("mine.msh", "--overwrite"),
            files={"mine.msh": "my mesh\n"},
            setup=_labels_npy,
            protect=("mine.msh",),
            timeout=120,
        )
    )
    add(
        Scenario(
            "schema_o_existing",
            cat,
            T("schema", "-o", "notes.json"),
            names=("notes.json",),
            files={"notes.json": '{"my": "notes"}\n'},
            protect=("notes.json",),
            note="schema -o onto an existing file (not named in the issue's list)",
        )
    )
    add(
        Scenario(
            "rerun_o_unrelated_dir",
            cat,
            T("rerun", "run1", "-o", "other"),
            names=("other",),
            setup=_prior_run_named("run1"),
            files={"case.toml": base_case(), "other/notes.txt": "mine\n"},
            protect=("other/notes.txt",),
        )
    )
    add(Scenario("rerun_missing_dir", cat, T("rerun", "nothere"), names=("nothere",)))
    add(
        Scenario(
            "rerun_no_resolved",
            cat,
            T("rerun", "run1"),
            names=("resolved.toml", "run1"),
            files={"case.toml": base_case()},
            setup=_chain(_prior_run_named("run1"), _rm("run1/resolved.toml")),
        )
    )
    add(
        Scenario(
            "rerun_corrupt_resolved",
            cat,
            T("rerun", "run1"),
            names=("resolved.toml",),
            files={"case.toml": base_case()},
            setup=_chain(_prior_run_named("run1"), _write("run1/resolved.toml", "[[x")),
        )
    )

    # ----------------------------------------------------------------- resume / branch misuse
    cat = "resume/branch"
    add(
        Scenario(
            "resume_other_case",
            cat,
            run_case(1, "other.toml", "--resume"),
            names=("out", "adv_box", "other"),
            files={"case.toml": base_case(), "other.toml": base_case(name="other")},
            setup=_prior_interrupted_run,
            protect=("out/qoi.csv",),
        )
    )
    add(
        Scenario(
            "resume_same_name_other_physics",
            cat,
            run_case(1, "changed.toml", "--resume"),
            names=("out", "resolved", "case"),
            files={
                "case.toml": base_case(),
                "changed.toml": base_case(
                    **{
                        "tumor.proliferation_rate": "0.5 1/day",
                        "time.t_end": "20 day",
                        "output.checkpoint": {"every_steps": 4},
                    }
                ),
            },
            setup=_prior_interrupted_run,
            note="same case name, different physics: resuming would splice two models",
        )
    )
    add(
        Scenario(
            "resume_complete_run",
            cat,
            run_case(1, "case.toml", "--resume"),
            expect="ok",
            files={"case.toml": base_case()},
            setup=_prior_run,
            protect=("out/qoi.csv", "out/fields.h5", "out/manifest.json"),
        )
    )
    add(
        Scenario(
            "resume_empty_dir",
            cat,
            run_case(1, "case.toml", "--resume"),
            expect="either",
            names=("out", "manifest.json"),
            files={"case.toml": base_case(), "out/": None},
            check=_complete_run,
        )
    )
    add(
        Scenario(
            "resume_and_overwrite",
            cat,
            run_case(1, "case.toml", "--resume", "--overwrite"),
            expect="either",
            names=("--resume", "--overwrite"),
            files={"case.toml": base_case()},
            setup=_prior_interrupted_run,
            check=_complete_run,
            note="both flags: a clear error, or a defined result",
        )
    )
    add(
        Scenario(
            "resume_corrupt_manifest",
            cat,
            run_case(1, "case.toml", "--resume"),
            names=("manifest.json", "out"),
            files={"case.toml": base_case()},
            setup=_chain(_prior_interrupted_run, _write("out/manifest.json", "{garbage")),
            protect=("out/qoi.csv",),
        )
    )
    add(
        Scenario(
            "resume_all_checkpoints_corrupt",
            cat,
            run_case(1, "case.toml", "--resume"),
            expect="ok",
            files={"case.toml": base_case()},
            setup=_chain(_prior_interrupted_run, _corrupt_checkpoints(all_=True)),
            check=_complete_run,
            note="no valid checkpoint: restart from the start",
        )
    )
    add(
        Scenario(
            "resume_newest_checkpoint_truncated",
            cat,
            run_case(1, "case.toml", "--resume"),
            expect="ok",
            files={"case.toml": base_case()},
            setup=_chain(_prior_interrupted_run, _corrupt_checkpoints(all_=False)),
            check=_complete_run,
        )
    )
    add(
        Scenario(
            "resume_qoi_deleted",
            cat,
            run_case(1, "case.toml", "--resume"),
            files={"case.toml": base_case()},
            expect="either",
            names=("qoi.csv",),
            setup=_chain(_prior_interrupted_run, _rm("out/qoi.csv")),
            check=_complete_run,
            note="qoi.csv removed by hand: either refuse clearly or recreate a full one",
        )
    )
    add(
        Scenario(
            "resume_fields_h5_deleted",
            cat,
            run_case(1, "case.toml", "--resume"),
            files={"case.toml": base_case()},
            expect="either",
            names=("fields.h5",),
            setup=_chain(_prior_interrupted_run, _rm("out/fields.h5")),
            check=_resumed_ok,
            note="fields.h5 removed by hand: the resumed segment must still be written",
        )
    )
    add(
        Scenario(
            "restart_from_no_checkpoint_time",
            cat,
            T("run", "case.toml", "-o", "branch", "--restart-from", "run1", "--at", "17 h"),
            names=("17", "--at", "checkpoint"),
            files={"case.toml": base_case()},
            setup=_prior_run_named("run1"),
        )
    )
    add(
        Scenario(
            "restart_from_missing_dir",
            cat,
            T("run", "case.toml", "-o", "branch", "--restart-from", "nothere", "--at", "1 day"),
            names=("nothere",),
            files={"case.toml": base_case()},
        )
    )
    add(
        Scenario(
            "restart_at_without_from",
            cat,
            T("run", "case.toml", "-o", "b", "--at", "1 day"),
            names=("--at", "--restart-from"),
            files={"case.toml": base_case()},
        )
    )
    add(
        Scenario(
            "restart_at_garbage",
            cat,
            T("run", "case.toml", "-o", "b", "--restart-from", "run1", "--at", "banana"),
            names=("--at", "banana"),
            files={"case.toml": base_case()},
            setup=_prior_run_named("run1"),
        )
    )
    add(
        Scenario(
            "restart_at_inf",
            cat,
            T("run", "case.toml", "-o", "b", "--restart-from", "run1", "--at", "inf day"),
            names=("--at", "inf"),
            files={"case.toml": base_case()},
            setup=_prior_run_named("run1"),
        )
    )
    add(
        Scenario(
            "restart_from_other_mesh",
            cat,
            T("run", "other.toml", "-o", "b", "--restart-from", "run1", "--at", "1 day"),
            names=("run1", "mesh", "checkpoint"),
            files={
                "case.toml": base_case(),
                "other.toml": base_case(name="other", **{"mesh.cells": [5, 5, 5]}),
            },
            setup=_prior_run_named("run1"),
        )
    )
    add(
        Scenario(
            "restart_from_ok",
            cat,
            T("run", "case.toml", "-o", "b", "--restart-from", "run1", "--at", "1 day"),
            expect="ok",
            files={"case.toml": base_case()},
            setup=_prior_run_named("run1"),
            protect=("run1/qoi.csv", "run1/fields.h5"),
            check=_complete_in("b"),
        )
    )

    # --------------------------------------------------------------------- pipes and JSON
    cat = "pipes/json"
    for nm, cmd in [
        ("validate_head_1", "{T} validate case.toml | head -1"),
        ("validate_json_head_1", "{T} validate case.toml --json | head -1"),
        ("schema_head_1", "{T} schema | head -1"),
        ("params_head_1", "{T} params pathways EGFR | head -1"),
        ("drug_head_1", "{T} drug | head -1"),
        ("mesh_info_head_1", "{T} mesh info " + str(MESH) + " | head -1"),
    ]:
        add(
            Scenario(
                nm,
                cat,
                cmd.replace("{T}", TUMORPDE) + "; exit ${PIPESTATUS[0]}",
                expect="ok",
                files={"case.toml": base_case()},
                check=_no_stderr_noise,
                ok_rcs=(0, 128 + signal.SIGPIPE),
                note="stdout closed early: no BrokenPipe traceback",
            )
        )
    add(
        Scenario(
            "validate_json_valid_pure",
            cat,
            T("validate", "case.toml", "--json"),
            expect="ok",
            files={"case.toml": base_case()},
            check=_json_stdout(True),
        )
    )
    add(
        Scenario(
            "validate_json_invalid_pure",
            cat,
            T("validate", "case.toml", "--json"),
            names=("tumor.motilty",),
            files={"case.toml": base_case(**{"tumor.motilty": 1.0})},
            check=_json_stdout(False),
        )
    )
    add(
        Scenario(
            "validate_json_syntax_error_pure",
            cat,
            T("validate", "case.toml", "--json"),
            names=("case.toml",),
            files={"case.toml": "[[[\n"},
            check=_json_stdout(False),
        )
    )
    add(
        Scenario(
            "validate_json_organ_mesh_pure",
            cat,
            T("validate", "case.toml", "--json"),
            expect="ok",
            files={
                "case.toml": base_case(
                    **{
                        "mesh": {"kind": "file", "path": str(MESH)},
                        "tumor.initial.center": [30.0, 35.0, 20.0],
                    }
                )
            },
            check=_json_stdout(True),
        )
    )
    add(Scenario("schema_stdout_is_json", cat, T("schema"), expect="ok", check=_json_stdout(None)))
    add(
        Scenario(
            "validate_stdout_closed",
            cat,
            "{T} validate case.toml >&-".replace("{T}", TUMORPDE),
            names=("stdout", "Bad file", "closed"),
            expect="either",
            files={"case.toml": base_case()},
            note="stdout closed: an error or silence, no traceback",
        )
    )

    # --------------------------------------------------------------------- faults during runs
    cat = "faults"
    fc = {"case.toml": fault_case()}
    for ranks in (1, 2):
        other = 2 if ranks == 1 else 1
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            target = "group" if sig == signal.SIGINT else "tree"  # Ctrl-C: the launcher's group
            add(
                Scenario(
                    f"{sig.name.lower()}_{target}_{ranks}rank",
                    cat,
                    run_case(ranks),
                    expect="fault",
                    files=fc,
                    faults=[Fault(sig, target=target)],
                    resume_ranks=other,
                    timeout=120,
                )
            )
    add(
        Scenario(
            "sigkill_one_rank_of_2",
            cat,
            run_case(2),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGKILL, target="rank")],
            resume_ranks=2,
            timeout=120,
        )
    )
    add(
        Scenario(
            "sigterm_one_rank_of_2",
            cat,
            run_case(2),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGTERM, target="rank")],
            resume_ranks=1,
            timeout=120,
        )
    )
    add(
        Scenario(
            "sigsegv_one_rank_of_2",
            cat,
            run_case(2),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGSEGV, target="rank")],
            resume_ranks=2,
            timeout=120,
            note="a rank crashing (SIGSEGV from outside): the job must end, data kept",
        )
    )
    add(
        Scenario(
            "sigterm_mpiexec_only_2rank",
            cat,
            run_case(2),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGTERM, target="mpiexec")],
            resume_ranks=1,
            timeout=120,
        )
    )
    add(
        Scenario(
            "sigkill_mpiexec_only_2rank",
            cat,
            run_case(2),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGKILL, target="mpiexec")],
            resume_ranks=1,
            timeout=120,
            note="the launcher dies: ranks must not run on as orphans",
        )
    )
    add(
        Scenario(
            "double_sigint_2rank",
            cat,
            run_case(2),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGINT, target="group", repeat=2)],
            resume_ranks=1,
            timeout=120,
            note="Ctrl-C twice: the second ends at once",
        )
    )
    add(
        Scenario(
            "sigkill_before_any_output",
            cat,
            run_case(1),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGKILL, rows=None, delay=0.3)],
            resume_ranks=1,
            timeout=120,
            note="killed before it wrote anything: --resume should start "
            "from the start (a requeued batch job always passes --resume)",
        )
    )
    add(
        Scenario(
            "sigkill_during_startup",
            cat,
            run_case(1),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGKILL, rows=None, delay=0.8)],
            resume_ranks=2,
            timeout=120,
        )
    )
    add(
        Scenario(
            "sigterm_during_startup",
            cat,
            run_case(2),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGTERM, rows=None, delay=1.5)],
            resume_ranks=1,
            timeout=120,
        )
    )
    add(
        Scenario(
            "sigkill_then_kill_resume",
            cat,
            run_case(1),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGKILL, rows=30), Fault(signal.SIGKILL, rows=100)],
            resume_ranks=2,
            timeout=120,
            note="the resume is killed too",
        )
    )
    add(
        Scenario(
            "sigterm_then_sigterm_resume",
            cat,
            run_case(2),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGTERM, rows=30), Fault(signal.SIGTERM, rows=120)],
            resume_ranks=1,
            timeout=120,
        )
    )
    add(
        Scenario(
            "sigkill_at_first_output",
            cat,
            run_case(1),
            expect="fault",
            files=fc,
            faults=[Fault(signal.SIGKILL, rows=13)],
            resume_ranks=1,
            timeout=120,
        )
    )
    fs = Scenario(
        "write_error_fsize_limit",
        cat,
        run_case(1),
        names=("out", "fields", ".h5", "qoi", "checkpoint"),
        files=fc,
        fsize=1_400_000,
        resume_ranks=1,
        timeout=120,
        expect="fault",
        note="RLIMIT_FSIZE 1.4 MB (UCX_TLS=self,tcp): writes beyond it fail with EFBIG "
        "(a full-disk stand-in); exit 4 naming the file, status failed, then --resume",
    )
    add(fs)
    add(
        Scenario(
            "full_disk_real",
            cat,
            [],
            skip="the file system has "
            f"{shutil.disk_usage('/tmp').free / 1e9:.0f} GB free and tmpfs mounts need "
            "privileges: filling a disk is not possible here (see write_error_fsize_limit)",
        )
    )
    return S


# ------------------------------------------------------------------------ setup helpers
def _msh_without_names() -> bytes:
    """A one-tetrahedron gmsh 2.2 mesh with a physical tag but no ``$PhysicalNames``."""
    return (
        b"$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$Nodes\n4\n1 0 0 0\n2 10 0 0\n3 0 10 0\n"
        b"4 0 0 10\n$EndNodes\n$Elements\n1\n1 4 2 1 1 1 2 3 4\n$EndElements\n"
    )


def _msh_nan_nodes() -> bytes:
    """A named one-tetrahedron gmsh 2.2 mesh with a NaN coordinate."""
    return (
        b'$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$PhysicalNames\n1\n3 1 "tissue"\n'
        b"$EndPhysicalNames\n$Nodes\n4\n1 0 0 0\n2 nan 0 0\n3 0 10 0\n"
        b"4 0 0 10\n$EndNodes\n$Elements\n1\n1 4 2 1 1 1 2 3 4\n$EndElements\n"
    )


def _quiet_run(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _prior_run_named(name: str) -> Callable[[Path], None]:
    def setup(w: Path) -> None:
        p = _quiet_run(T("run", "case.toml", "-o", name), w)
        if p.returncode != 0:
            raise RuntimeError(f"setup run failed: {p.stderr[-2000:]}")

    return setup


def _prior_run(w: Path) -> None:
    _prior_run_named("out")(w)


def _prior_run_with_notes(w: Path) -> None:
    _prior_run(w)
    (w / "out" / "my_notes.txt").write_text("observations of this run\n")


def _prior_interrupted_run(w: Path) -> None:
    """A run of the base case stopped by SIGTERM after its first output time (or complete)."""
    case = base_case(**{"time.t_end": "20 day", "output.checkpoint": {"every_steps": 4}})
    (w / "case.toml").write_text(dumps(case))
    proc = subprocess.Popen(
        T("run", "case.toml", "-o", "out"),
        cwd=w,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_rows(w / "out" / "qoi.csv", 8, proc, 60)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)


def _chain(*fs: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(w: Path) -> None:
        for f in fs:
            f(w)

    return setup


def _rm(rel: str) -> Callable[[Path], None]:
    return lambda w: (w / rel).unlink()


def _write(rel: str, text: str) -> Callable[[Path], None]:
    return lambda w: (w / rel).write_text(text)


def _corrupt_checkpoints(all_: bool) -> Callable[[Path], None]:
    def setup(w: Path) -> None:
        cks = sorted((w / "out" / "checkpoints").glob("*.npz"))
        if not cks:
            raise RuntimeError("setup: no checkpoints to corrupt")
        for ck in cks if all_ else cks[-1:]:
            data = ck.read_bytes()
            ck.write_bytes(data[: len(data) // 3])

    return setup


def _labels_npy(w: Path) -> None:
    import numpy as np

    a = np.zeros((12, 12, 12), dtype=np.uint8)
    a[3:9, 3:9, 3:9] = 1
    np.save(w / "labels.npy", a)


def _wait_rows(qoi: Path, rows: int, proc: subprocess.Popen, timeout: float) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            return False
        try:
            with qoi.open("rb") as f:
                if sum(1 for _ in f) - 1 >= rows:
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------------------------- checks
def _no_output_dir(w: Path, res: dict[str, Any]) -> str | None:
    """An invalid case writes nothing: no run directory at all."""
    if (w / "out").exists():
        return f"an invalid case left a run directory: {sorted(os.listdir(w / 'out'))}"
    return None


def _complete_in(rel: str) -> Callable[[Path, dict[str, Any]], str | None]:
    def check(w: Path, res: dict[str, Any]) -> str | None:
        return _run_dir_problems(w / rel, complete=True)

    return check


def _complete_run(w: Path, res: dict[str, Any]) -> str | None:
    return _run_dir_problems(w / "out", complete=True)


def _resumed_ok(w: Path, res: dict[str, Any]) -> str | None:
    """The resumed part is complete (earlier fields were deleted by hand)."""
    out = w / "out"
    man = soak._read_manifest(out)
    if man.get("status") != "complete":
        return f"status {man.get('status')!r}"
    segs = sorted(out.glob("fields.r*.xdmf"))
    if not segs:
        return "no resume segment written"
    return None


def _no_stderr_noise(w: Path, res: dict[str, Any]) -> str | None:
    if any(x in res["output"] for x in ("Traceback", "BrokenPipe", "Exception ignored")):
        return "error noise on a closed pipe: " + _last_line(res["output"])
    return None


def _json_stdout(valid: bool | None) -> Callable[[Path, dict[str, Any]], str | None]:
    def check(w: Path, res: dict[str, Any]) -> str | None:
        try:
            doc = json.loads(res["stdout"])
        except ValueError as exc:
            return f"stdout is not one JSON document: {exc}; starts {res['stdout'][:120]!r}"
        if valid is not None and doc.get("valid") is not valid:
            return f"'valid' is {doc.get('valid')!r}, expected {valid}"
        return None

    return check


def _case_times(case_path: Path) -> tuple[float, float]:
    """t_end and output_every (h) of a case, through ``validate --json``."""
    p = _quiet_run(T("validate", str(case_path), "--json"), case_path.parent)
    cfg = json.loads(p.stdout)["config"]
    return float(cfg["time"]["t_end"]), float(cfg["time"]["output_every"] or cfg["time"]["t_end"])


def _run_dir_problems(
    out: Path, complete: bool, t_end: float | None = None, every: float | None = None
) -> str | None:
    """Fields and QoIs readable up to the last output time (all of them if ``complete``)."""
    if not out.is_dir():
        return "no run directory"
    man = soak._read_manifest(out)
    if complete and man.get("status") != "complete":
        return f"manifest status {man.get('status')!r}, expected complete"
    rows = soak._read_qoi(out / "qoi.csv")
    if not rows:
        return "qoi.csv missing or unreadable" if (out / "qoi.csv").exists() or complete else None
    if t_end is None:
        cfg = man.get("resolved") or {}
        try:
            t_end = float(cfg["time"]["t_end"])
            every = float(cfg["time"].get("output_every") or t_end)
        except (KeyError, TypeError, ValueError):
            t_end = rows[-1]["t_h"]
            every = None
    q = soak.check_qoi(rows, t_end if complete else rows[-1]["t_h"])
    if q["problems"]:
        return "qoi.csv: " + "; ".join(q["problems"][:3])
    times, errors = soak.field_times(out)
    if errors:
        return "fields: " + "; ".join(errors[:3])
    if every:
        last = rows[-1]["t_h"]
        first = rows[0]["t_h"]  # a branched run starts at its branch time
        expected = [first] + [
            k * every for k in range(int(last / every + 1e-9) + 1) if k * every > first + 1e-9
        ]
        # an output time equal to the last QoI row may be cut between the row and the fields
        missing = [t for t in expected if t not in times and not (not complete and t == last)]
        if missing:
            return f"output times missing up to t = {last:g} h: {missing[:8]}"
    return None


# ------------------------------------------------------------------------------ the runner
def _rank_pids(root: int) -> list[int]:
    """The tumorpde rank processes of a launch (not mpiexec or its proxy)."""
    pids = []
    for pid in soak.descendants(root):
        try:
            cmd = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(cmd)
        if b"tumorpde" in text and b"mpiexec" not in text and b"hydra" not in text:
            pids.append(pid)
    return sorted(pids)


def _limits(fsize: int | None, mem: int | None) -> Callable[[], None]:
    def pre() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if mem is not None:
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))

    return pre


def launch(
    argv: list[str] | str,
    cwd: Path,
    timeout: float,
    fault: Fault | None = None,
    fsize: int | None = None,
    mem: int | None = None,
) -> dict[str, Any]:
    """Run one command in its own process group (a fault is sent mid-run), with a timeout."""
    shell = isinstance(argv, str)
    cmd: Any = ["bash", "-c", argv] if shell else argv
    env = dict(os.environ)
    if fsize is not None:  # UCX's shared-memory transport writes files: keep it out of the limit
        env["UCX_TLS"] = "self,tcp"
    t0 = time.monotonic()
    tree: list[int] = []
    with (cwd / ".stdout").open("w+b") as fo, (cwd / ".stderr").open("w+b") as fe:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdout=fo,
            stderr=fe,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_limits(fsize, mem),
            env=env,
        )
        sent: list[str] = []
        hung = False
        try:
            if fault is not None:
                if fault.rows is not None:
                    _wait_rows(cwd / "out" / "qoi.csv", fault.rows, proc, timeout)
                else:
                    time.sleep(fault.delay or 0.0)
                if proc.poll() is None:
                    tree = [proc.pid, *soak.descendants(proc.pid)]
                    for _ in range(fault.repeat):
                        with soak._suppress():
                            if fault.target == "tree":
                                soak.signal_tree(proc.pid, fault.sig)
                            elif fault.target == "group":
                                os.killpg(proc.pid, fault.sig)
                            elif fault.target == "mpiexec":
                                os.kill(proc.pid, fault.sig)
                            else:
                                ranks = _rank_pids(proc.pid)
                                if not ranks:
                                    raise RuntimeError("no rank process found to signal")
                                os.kill(ranks[-1], fault.sig)
                        sent.append(signal.Signals(fault.sig).name)
                        time.sleep(0.05)
            proc.wait(timeout=max(1.0, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            hung = True
            tree = soak.signal_tree(proc.pid, signal.SIGKILL)
            proc.wait()
        left: list[int] = []
        for _ in range(50):  # every process of the launch must be gone soon after the launcher
            left = soak.alive(tree[1:])
            if not left:
                break
            time.sleep(0.1)
        for pid in left:
            with soak._suppress():
                os.kill(pid, signal.SIGKILL)
        fo.seek(0)
        fe.seek(0)
        stdout = fo.read().decode(errors="replace")
        stderr = fe.read().decode(errors="replace")
    for p in (cwd / ".stdout", cwd / ".stderr"):
        p.unlink()
    return {
        "rc": proc.returncode,
        "hung": hung,
        "sent": sent,
        "stdout": stdout,
        "stderr": stderr,
        "output": stdout + stderr,
        "wall_s": time.monotonic() - t0,
        "leftover_pids": left,
    }


def _write_files(w: Path, files: dict[str, Any]) -> None:
    for rel, content in files.items():
        p = w / rel
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            p.write_text(dumps(content))
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


def _digest(p: Path) -> str | None:
    try:
        return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
    except OSError:
        return None


def _message_lines(output: str) -> list[str]:
    """The error message: output without progress lines and MPI launcher noise."""
    keep = []
    for line in output.strip().splitlines():
        s = line.strip()
        if (
            not s
            or re.match(r"^step\s+\d+", s)
            or s.startswith(
                ("===", "BAD TERMINATION", "PID ", "EXIT CODE", "CLEANING UP", "YOUR APPL")
            )
        ):
            continue
        keep.append(line)
    return keep


def _aborted(rc: int, sent: list[str]) -> bool:
    """Exit 134/139, or death by / exit code of a signal we did not send."""
    ours = {int(signal.Signals[s]) for s in sent}
    if rc in (134, 139) and not ({6, 11} & ours):
        return True
    if rc < 0:
        return -rc not in ours
    if rc >= 128:
        return rc - 128 not in ours
    return False


def classify_error(s: Scenario, res: dict[str, Any], extra: str | None) -> tuple[str, str]:
    """Class and note of a scenario that must fail (invalid input, misuse)."""
    out, rc = res["output"], res["rc"]
    if res["hung"]:
        return "hang", f"no exit within {s.timeout:g} s"
    if "Traceback (most recent call last)" in out:
        return "traceback/C abort", _last_line(out)
    if _aborted(rc, res["sent"]):
        return "traceback/C abort", f"exit {rc}"
    if rc == 0:
        return "nonsense accepted", extra or "exit 0"
    if not out.strip():
        return "silent death", f"exit {rc}, no output"
    msg = _message_lines(out)
    # pydantic puts the tag of a tagged union into the path (mesh.box.cells for mesh.cells)
    plain = re.sub(r"\b(mesh)\.(box|file)\.", r"\1.", out)
    plain = re.sub(r"\b(initial)\.(gaussian|uniform)\.", r"\1.", plain)
    named = any(n.lower() in plain.lower() for n in s.names) if s.names else False
    if rc not in (2, 3, 4) and not (
        rc >= 128 and rc - 128 in {int(signal.Signals[x]) for x in res["sent"]}
    ):
        return "vague error", f"exit {rc}: {_first(msg)}"
    if not named:
        return "vague error", f"names none of {list(s.names)}: {_first(msg)}"
    if len(msg) > SCREEN_LINES:
        return "vague error", f"{len(msg)} lines of message"
    if extra:
        return "wrong result", extra
    return "clear error", _first(msg)


def _first(lines: list[str]) -> str:
    return " | ".join(x.strip() for x in lines[:2])[:240]


def _last_line(out: str) -> str:
    lines = [x for x in out.strip().splitlines() if x.strip()]
    return lines[-1][:240] if lines else ""


#: Worst first: the class a fault scenario gets when several things went wrong.
_SEVERITY = (
    "hang",
    "user data destroyed",
    "own output lost",
    "traceback/C abort",
    "wrong result",
    "vague error",
    "handled",
)


def run_fault(s: Scenario, w: Path) -> tuple[dict[str, Any], str, str]:
    """A fault scenario: the faulted launch(es), the state left, then ``--resume`` to the end.

    Every check runs (a wrong exit code does not hide lost data); the worst finding wins.
    """
    t_end, every = _case_times(w / "case.toml")
    notes: list[str] = []
    found: list[str] = []
    res: dict[str, Any] = {}
    for k, fault in enumerate(s.faults or [None]):
        argv = s.argv if k == 0 else run_case(s.resume_ranks or 1, "case.toml", "--resume")
        res = launch(argv, w, s.timeout, fault, s.fsize)
        res["launch"] = k
        notes.append(f"launch {k}: sent {','.join(res['sent']) or 'none'}, exit {res['rc']}")
        if res["hung"]:
            return res, "hang", "; ".join(notes) + f": no exit within {s.timeout:g} s"
        if res["leftover_pids"]:
            found.append("hang")
            notes.append(f"processes {res['leftover_pids']} ran on after the launcher exited")
        if "Traceback (most recent call last)" in res["output"]:
            found.append("traceback/C abort")
            notes.append(_last_line(res["output"]))
        by_us = fault is not None and (fault.target == "rank" or fault.repeat > 1)
        if _aborted(res["rc"], res["sent"]) and not by_us:
            found.append("traceback/C abort")
        man = soak._read_manifest(w / "out")
        notes.append(f"status {man.get('status')}")
        if res["sent"] and res["rc"] == 0 and man.get("status") != "complete":
            found.append("wrong result")
            notes.append("exit 0 although the run did not complete")
        if s.fsize is not None:
            msg = _message_lines(res["output"])
            if res["rc"] != 4 or not any(n in res["output"] for n in s.names):
                found.append("vague error")
            elif len(msg) > SCREEN_LINES:
                found.append("vague error")
                notes.append(f"{len(msg)} lines of output before the message")
            if man.get("status") != "failed":
                found.append("wrong result")
            notes.append(_first(msg[-1:]))
        elif (
            fault is not None
            and res["sent"]
            and res["sent"][0] in ("SIGTERM", "SIGINT")
            and fault.repeat == 1
            and fault.target in ("group", "tree", "rank")
            and fault.rows is not None
        ):  # a graceful stop mid-run: 128 + n and "interrupted"
            want = 128 + int(signal.Signals[res["sent"][0]])
            if res["rc"] != want or man.get("status") != "interrupted":
                found.append("wrong result")
                notes.append(f"expected exit {want} and status interrupted")
        if (w / "out").exists():
            problem = _run_dir_problems(w / "out", complete=False, t_end=t_end, every=every)
            if problem:
                found.append("own output lost")
                notes.append(problem)
    # resume to the end on the other rank count
    had_run = (w / "out" / "manifest.json").is_file()
    final = launch(run_case(s.resume_ranks or 1, "case.toml", "--resume"), w, s.timeout)
    res["resume"] = {k: final[k] for k in ("rc", "hung", "wall_s")}
    res["resume"]["output_head"] = final["output"].strip().splitlines()[:3]
    res["resume"]["output_tail"] = final["output"].strip().splitlines()[-5:]
    if final["hung"]:
        found.append("hang")
        notes.append("--resume hung")
    elif "Traceback (most recent call last)" in final["output"]:
        found.append("traceback/C abort")
        notes.append("--resume: " + _last_line(final["output"]))
    elif final["rc"] != 0:
        found.append("own output lost" if had_run else "wrong result")
        notes.append(
            f"--resume exit {final['rc']}: " + _first(_message_lines(final["output"])[-2:])
        )
    else:
        problem = _run_dir_problems(w / "out", complete=True, t_end=t_end, every=every)
        if problem:
            found.append("own output lost")
            notes.append(f"after --resume: {problem}")
        else:
            notes.append(f"--resume on {s.resume_ranks} rank(s) complete")
    cls = min(found, key=_SEVERITY.index) if found else "handled"
    return res, cls, "; ".join(notes)


def run_scenario(s: Scenario, root: Path) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "name": s.name,
        "category": s.category,
        "expect": s.expect,
        "note": s.note,
    }
    if s.skip:
        rec.update(
            command=None, rc=None, output_head=[], **{"class": "not possible here"}, detail=s.skip
        )
        return rec
    w = root / s.name
    if w.exists():
        shutil.rmtree(w)
    w.mkdir(parents=True)
    _write_files(w, s.files)
    try:
        if s.setup is not None:
            s.setup(w)
    except Exception as exc:
        rec.update(
            command=None,
            rc=None,
            output_head=[],
            **{"class": "not possible here"},
            detail=f"setup failed: {type(exc).__name__}: {exc}",
        )
        return rec
    before = {rel: _digest(w / rel) for rel in s.protect}
    cmd_text = s.argv if isinstance(s.argv, str) else " ".join(s.argv)
    rec["command"] = cmd_text.replace(TUMORPDE, "tumorpde").replace(MPIEXEC, "mpiexec")
    rec["cwd"] = str(w)
    lock_fd = None
    if s.lock is not None:
        lock_fd = os.open(w / s.lock, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        if s.expect == "fault":
            res, cls, detail = run_fault(s, w)
        else:
            mem = 2 << 30 if s.name == "case_dev_zero" else None
            res = launch(s.argv, w, s.timeout, None, s.fsize, mem)
            extra = s.check(w, res) if s.check is not None and not res["hung"] else None
            if s.expect == "either" and res["rc"] != 0:
                cls, detail = classify_error(s, res, None)
            elif s.expect in ("ok", "either"):
                if res["hung"]:
                    cls, detail = "hang", f"no exit within {s.timeout:g} s"
                elif "Traceback (most recent call last)" in res["output"]:
                    cls, detail = "traceback/C abort", _last_line(res["output"])
                elif _aborted(res["rc"], []) and res["rc"] not in s.ok_rcs:
                    cls, detail = "traceback/C abort", f"exit {res['rc']}"
                elif res["rc"] not in s.ok_rcs or extra:
                    cls = "wrong result"
                    detail = extra or f"exit {res['rc']}: " + _first(_message_lines(res["output"]))
                else:
                    cls, detail = "handled", _first(_message_lines(res["output"]))
            else:
                cls, detail = classify_error(s, res, extra)
    finally:
        if lock_fd is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            os.close(lock_fd)
    after = {rel: _digest(w / rel) for rel in s.protect}
    damaged = [rel for rel in s.protect if before[rel] != after[rel]]
    if damaged:
        cls, detail = "user data destroyed", f"changed or removed: {damaged}; {detail}"
    rec.update(
        rc=res["rc"],
        sent=res.get("sent"),
        wall_s=round(res["wall_s"], 2),
        output_head=res["output"].strip().splitlines()[:6],
        output_tail=res["output"].strip().splitlines()[-4:],
        detail=detail,
        **{"class": cls},
    )
    if "resume" in res:
        rec["resume"] = res["resume"]
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "adversarial")
    ap.add_argument("--only", help="run only scenarios whose name contains this")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = ap.parse_args(argv)
    todo = scenarios()
    if args.only:
        todo = [s for s in todo if args.only in s.name]
    if args.list:
        for s in todo:
            print(f"{s.category:22s} {s.name}")
        print(f"{len(todo)} scenarios")
        return 0
    out = args.out.resolve()
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")
    t0 = time.monotonic()
    records = []
    for i, s in enumerate(todo):
        rec = run_scenario(s, work)
        records.append(rec)
        mark = " " if rec["class"] in OK_CLASSES else "!"
        print(
            f"{mark} [{i + 1:3d}/{len(todo)}] {s.category:20s} {s.name:36s} "
            f"{rec['class']:18s} {str(rec.get('detail', ''))[:110]}",
            flush=True,
        )
    counts = {c: sum(1 for r in records if r["class"] == c) for c in CLASSES}
    doc = {
        "scenarios": len(records),
        "counts": counts,
        "wall_s": round(time.monotonic() - t0, 1),
        "records": records,
    }
    (out / "adversarial.json").write_text(json.dumps(doc, indent=2))
    print(f"\n{len(records)} scenarios in {doc['wall_s']:.0f} s")
    for c in CLASSES:
        if counts[c]:
            print(f"  {c:20s} {counts[c]}")
    bad = [r for r in records if r["class"] not in OK_CLASSES]
    if bad:
        print("\nnot clear/handled:")
        for r in bad:
            print(f"  {r['name']} [{r['class']}]: {r['command']}\n      {r.get('detail')}")
    print(f"\nwritten: {out / 'adversarial.json'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
