"""``tumorpde validate`` and ``schema`` on bad input: every problem named, at once, nothing hangs.

The validate tests run per rank (validate is not collective); the PETSc-option test runs a case
collectively. ``--set`` overrides are fuzzed with hypothesis (serial).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tumorpde.cli import main

BIN = Path(sys.executable).parent

BOX = """
name = "vbox"
[mesh]
kind = "box"
size = ["6 mm", "4 mm", "4 mm"]
cells = [3, 2, 2]
default_region = "grey"
regions = [{ name = "white", min = [3, 0, 0], max = [6, 4, 4] }]
[time]
t_end = "2 day"
dt = "12 h"
[tumor]
proliferation_rate = "0.3 1/day"
motility = "0.13 mm^2/day"
initial = { kind = "gaussian", center = ["3 mm", "2 mm", "2 mm"], radius = "1 mm" }
allow_coarse_seed = true  # 2 mm cells carry a 1 mm seed at 37 % of its peak: a toy mesh
"""


def _write(tmp_path: Path, text: str, name: str = "case.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _validate(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["validate", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_all_problems_at_once(tmp_path, capsys):
    text = BOX.replace('t_end = "2 day"', 't_end = "-2 day"').replace(
        'motility = "0.13 mm^2/day"', 'motility = "0.13 mm^2/day"\nmotilty = 1'
    )
    text += "[regions.whitematter.tumor]\nmotility = 1\n[regions.white.tumor]\nmotility = nan\n"
    rc, _, err = _validate(capsys, _write(tmp_path, text))
    assert rc == 2
    for fragment in (
        "time.t_end: Input should be greater than 0",
        "tumor.motilty: unknown key",
        "regions.whitematter: unknown region; the mesh has: grey, white",
        "regions.white.tumor.motility: nan is not finite",
    ):
        assert fragment in err, err


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ('t_end = "2 day"', "t_end = inf", "time.t_end: inf is not finite"),
        ('t_end = "2 day"', 't_end = "1e400 day"', "time.t_end: cannot parse '1e400 day'"),
        ('"0.3 1/day"', '"nan 1/day"', "tumor.proliferation_rate: cannot parse 'nan 1/day'"),
        ('"0.13 mm^2/day"', '"9**9**9 mm^2/day"', "tumor.motility: cannot parse"),
        ("cells = [3, 2, 2]", "cells = [2000, 2000, 2000]", "above the cap of 5e+07"),
        ('dt = "12 h"', 'dt = "1 s"\ndt_min = "1e-9 h"', "time.dt_min: t_end/dt_min"),
        ('center = ["3 mm"', 'center = ["30 mm"', "tumor.initial.center: [30, 2, 2] mm lies"),
        ("max = [6, 4, 4]", "max = [60, 4, 4]", "is not inside the box"),
        ('size = ["6 mm"', "size = [nan", "mesh.box.size.0: nan is not finite"),
    ],
)
def test_bad_values_are_named(tmp_path, capsys, old, new, fragment):
    assert old in BOX
    rc, out, err = _validate(capsys, _write(tmp_path, BOX.replace(old, new)))
    assert rc == 2 and fragment in err, err
    assert out == ""


def test_dose_count_is_bounded_before_the_schedule(tmp_path, capsys):
    text = BOX.replace("[tumor]", "[pathways.EGFR]\n[tumor]") + (
        '[[therapy.treatments]]\ndrug = "cetuximab"\nregimen = "weekly"\n'
        'interval = "1e-6 h"\ninfusion = 0\nloading_infusion = 0\n'
    )
    rc, _, err = _validate(capsys, _write(tmp_path, text))
    assert rc == 2
    assert "therapy.treatments.0.interval: cetuximab: the regimen gives" in err, err


def test_files_directories_and_extends(tmp_path, capsys):
    rc, _, err = _validate(capsys, tmp_path)
    assert rc == 2 and "is a directory, not a case file" in err
    base = _write(tmp_path, BOX.replace('dt = "12 h"', 'dt = "-12 h"'), "base.toml")
    child = _write(tmp_path, f'extends = "{base.name}"\nname = "child"\n', "child.toml")
    rc, _, err = _validate(capsys, child)
    assert rc == 2 and "time.dt: Input should be greater than 0" in err
    assert f"(set in {base.resolve()})" in err, err
    _write(tmp_path, "name = 'x'\n[time\n", "broken.toml")
    child2 = _write(tmp_path, 'extends = "broken.toml"\n', "child2.toml")
    rc, _, err = _validate(capsys, child2)
    assert rc == 2 and f"(extended by {child2})" in err and "not valid TOML" in err


def test_mesh_file_problems(tmp_path, capsys):
    good = (REPO / "meshes" / "brain_phantom.msh").read_bytes()
    (tmp_path / "trunc.msh").write_bytes(good[: len(good) // 3])
    (tmp_path / "garbage.msh").write_bytes(b"\x00\xff" * 500)
    mesh = '[mesh]\nkind = "file"\npath = "{}"\n'
    tail = BOX[BOX.index("[time]") :]
    for name, fragment in (
        ("trunc.msh", "truncated or corrupt"),
        ("garbage.msh", "no $MeshFormat header"),
        ("missing.msh", "does not exist"),
    ):
        case = _write(tmp_path, 'name = "m"\n' + mesh.format(name) + tail)
        rc, _, err = _validate(capsys, case)
        assert rc == 2 and fragment in err, err
        assert "Traceback" not in err


def test_seed_outside_an_organ_mesh(tmp_path, capsys):
    base = REPO / "benchmarks" / "cases" / "her2_brain_metastasis.toml"
    case = _write(
        tmp_path,
        f'extends = "{base}"\n[tumor]\n'
        'initial = { kind = "gaussian", center = ["500 mm", "0 mm", "0 mm"], radius = "3 mm" }\n',
    )
    rc, _, err = _validate(capsys, case)
    assert rc == 2 and "tumor.initial.center: [500, 0, 0] mm is not inside the mesh" in err, err


def test_json_output_is_only_json(tmp_path, capsys):
    rc, out, _ = _validate(capsys, _write(tmp_path, BOX), "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["valid"] is True and doc["config"]["name"] == "vbox"
    bad = _write(tmp_path, BOX.replace("[3, 2, 2]", "[0, 2, 2]"))
    rc, out, err = _validate(capsys, bad, "--json")
    assert rc == 2 and "mesh.box.cells" in err
    doc = json.loads(out)
    assert doc["valid"] is False and doc["problems"][0]["field"] == "mesh.box.cells"


@pytest.mark.serial
def test_broken_pipe_is_quiet(tmp_path):
    case = _write(tmp_path, BOX)
    cmd = f"'{BIN / 'tumorpde'}' validate '{case}' --json | head -1"
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "{"
    assert out.stderr == "", out.stderr


def test_closed_stdout_is_quiet(tmp_path, monkeypatch):
    class Closed:
        def write(self, _text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["validate", str(_write(tmp_path, BOX))]) == 141


def test_schema_command(tmp_path, capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    t_end = schema["$defs"]["TimeConfig"]["properties"]["t_end"]
    assert t_end["x-unit"] == "h"
    assert {"extends", "mesh", "regions", "ligand"} <= set(schema["properties"])
    out = tmp_path / "case.schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == schema
    assert main(["schema", "-o", str(tmp_path)]) == 2


def test_unknown_petsc_option_is_an_error(shared_tmp, comm, capsys):
    case = shared_tmp / "petsc.toml"
    if comm.rank == 0:
        case.write_text(BOX + '[solver.petsc]\nksp_tpye = "cg"\n[output]\npicture = false\n')
    comm.barrier()
    rc = main(["run", str(case), "-o", str(shared_tmp / "out")])
    assert rc == 2
    if comm.rank == 0:
        assert "PETSc did not use the option(s) ksp_tpye" in capsys.readouterr().err


KEYS = [
    "time.t_end",
    "time.dt",
    "time.dt_min",
    "time.output_every",
    "tumor.motility",
    "tumor.initial.center",
    "tumor.initial.radius",
    "mesh.cells",
    "mesh.size",
    "regions.white.tumor.motility",
    "solver.petsc.ksp_type",
    "time",
    "tumor.initial",
    "nope.deeper.key",
]
VALUES = st.one_of(
    st.sampled_from(
        ["inf", "nan", "-1", "1e400", '"1e400 h"', '"9**9**9 h"', "[1, 2]", "{}", "true", '"x"']
    ),
    st.text(max_size=20),
)


@pytest.mark.serial
@settings(
    max_examples=100,
    deadline=5000,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(key=st.sampled_from(KEYS), value=VALUES)
def test_fuzzed_overrides_fail_cleanly(tmp_path_factory, capsys, key, value):
    d = tmp_path_factory.mktemp("set")
    case = _write(d, BOX)
    rc = main(["validate", str(case), "--set", f"{key}={value}"])
    err = capsys.readouterr().err
    assert rc in (0, 2), err
    if rc == 2:
        assert "Traceback" not in err and "invalid case" in err, err
    assert [p.name for p in d.iterdir()] == ["case.toml"]
