"""Case validation: errors name the field path and the allowed values, before any compute."""

import copy
import subprocess
import sys

import pytest
from helpers import REPO, box_case

from tumorpde.config import (
    DEFAULT_PETSC,
    ConfigError,
    config_from_dict,
    load_config,
    read_msh_physical_names,
)


def problems(case, **kw):
    with pytest.raises(ConfigError) as info:
        config_from_dict(case, **kw)
    return dict(info.value.problems), str(info.value)


def test_valid_case_is_converted_to_internal_units():
    cfg = config_from_dict(box_case())
    assert cfg.tumor.proliferation_rate == pytest.approx(0.5 / 24)
    assert cfg.pathways["EGFR"].ligand.diffusivity == pytest.approx(0.18)
    assert cfg.pathways["EGFR"].receptor.k_on == pytest.approx(3.6)
    assert cfg.pathways["EGFR"].receptor.k_off == pytest.approx(7.2)
    assert cfg.receptor_total_nM("EGFR") == pytest.approx(5e4 * 1e5 * 1e15 / 6.02214076e23)
    assert cfg.solver.options() == DEFAULT_PETSC


def test_unknown_key_lists_allowed_keys():
    case = box_case(tumor={"motilty": 1.0})
    probs, _ = problems(case)
    assert "tumor.motilty" in probs
    assert "allowed keys here: proliferation_rate, motility" in probs["tumor.motilty"]
    probs, _ = problems({**box_case(), "colour": "red"})
    assert "colour" in probs and "allowed keys here: name," in probs["colour"]


def test_unknown_key_in_tagged_union():
    case = box_case(mesh={"kind": "box", "size": [1, 1, 1], "cells": [2, 2, 2], "cels": 3})
    probs, _ = problems(case)
    assert "allowed keys here: kind, size, cells" in probs["mesh.box.cels"]


@pytest.mark.parametrize(
    ("section", "values", "path", "fragment"),
    [
        ("ligand", {"diffusivity": "-1 mm^2/h"}, "ligand.diffusivity", "greater than or equal"),
        ("tumor", {"motility": -0.1}, "tumor.motility", "greater than or equal to 0"),
        ("time", {"dt": 0.0}, "time.dt", "greater than 0"),
        ("time", {"dt": "-1 h"}, "time.dt", "greater than 0"),
        ("time", {"dt": "10 h", "t_end": "5 h"}, "time.dt", "must not exceed t_end"),
        ("receptor", {"k_on": "1e6 1/s"}, "receptor.k_on", "expected a second_order_rate"),
        ("receptor", {"k_on": "fast"}, "receptor.k_on", "cannot parse"),
        ("tumor", {"proliferation_rate": [1]}, "tumor.proliferation_rate", "expected a rate"),
        ("output", {"format": "vtk"}, "output.format", "'xdmf' or 'vtx'"),
        ("receptor", {"initial_occupancy": 1.5}, "receptor.initial_occupancy", "less than or"),
    ],
)
def test_bad_values_name_the_field(section, values, path, fragment):
    case = box_case(**{section: values})
    probs, _ = problems(case)
    assert path in probs, probs
    assert fragment in probs[path]


def test_missing_field():
    case = box_case()
    del case["ligand"]["diffusivity"]
    probs, _ = problems(case)
    assert probs["ligand.diffusivity"] == "required field is missing"


def test_unknown_region_lists_mesh_regions():
    case = box_case(regions={"whitematter": {"tumor_motility": 1.0}})
    probs, _ = problems(case)
    assert probs["regions.whitematter"] == "unknown region; the mesh has: tissue"


def test_unknown_region_in_mesh_file():
    case = box_case(
        mesh={"kind": "file", "path": "meshes/brain_phantom.msh"},
        regions={"liver": {"tumor_motility": 1.0}},
    )
    probs, _ = problems(case, base_dir=REPO)
    assert probs["regions.liver"] == "unknown region; the mesh has: grey, white"


def test_missing_mesh_file(tmp_path):
    case = box_case(mesh={"kind": "file", "path": "nowhere.msh"})
    probs, _ = problems(case, base_dir=tmp_path)
    assert "does not exist" in probs["mesh.file.path"]


def test_msh_physical_names_read_without_gmsh():
    names = read_msh_physical_names(REPO / "meshes" / "brain_phantom.msh")
    assert (3, "grey") in names and (3, "white") in names and (2, "outer") in names


def test_overrides_and_petsc_options():
    case = box_case(solver={"petsc": {"ksp_type": "gmres", "pc_type": "ilu"}})
    cfg = config_from_dict(case, overrides={"time.dt": "30 min", "tumor.chemotaxis": 0.0})
    assert cfg.time.dt == 0.5 and cfg.pathways["EGFR"].effects.chemotaxis == 0.0
    assert cfg.solver.options()["ksp_type"] == "gmres"
    assert cfg.solver.options()["snes_type"] == "vinewtonrsls"
    probs, _ = problems(box_case(solver={"petsc": {"-ksp_type": "cg"}}))
    assert "without '-'" in probs["solver.petsc"]


def test_config_is_frozen_and_input_untouched():
    case = box_case()
    before = copy.deepcopy(case)
    cfg = config_from_dict(case, overrides={"time.dt": 2.0})
    assert case == before
    with pytest.raises(Exception):  # noqa: B017  (pydantic frozen-instance error)
        cfg.name = "other"


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="case file does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[mesh\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_default_case_is_valid():
    cfg = load_config(REPO / "benchmarks" / "cases" / "default.toml")
    assert cfg.mesh.kind == "file"
    assert set(cfg.regions) <= {"grey", "white"}


def test_config_module_does_not_import_dolfinx():
    code = "import tumorpde, tumorpde.config, sys; print('dolfinx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_extends_merges_over_a_base_case(tmp_path):
    sub = tmp_path / "cases"
    sub.mkdir()
    base = REPO / "benchmarks" / "cases" / "her2_brain_metastasis.toml"
    (tmp_path / "base.toml").write_text(
        base.read_text().replace("../../meshes", str(REPO / "meshes"))
    )
    (sub / "child.toml").write_text(
        'extends = "../base.toml"\nname = "child"\n[tumor]\nproliferation_rate = "0.1 1/day"\n'
    )
    cfg = load_config(sub / "child.toml")
    assert cfg.name == "child" and cfg.organ == "brain"
    assert cfg.tumor.proliferation_rate == pytest.approx(0.1 / 24)
    assert set(cfg.pathways) == {"HER2", "EGFR"}
    # relative paths of a base file resolve against the base file's folder
    (tmp_path / "base2.toml").write_text(base.read_text().replace("../../meshes", "meshes"))
    (tmp_path / "meshes").symlink_to(REPO / "meshes")
    (sub / "child2.toml").write_text('extends = "../base2.toml"\n')
    assert load_config(sub / "child2.toml").mesh.path == (tmp_path / "meshes/brain.msh").resolve()
    (sub / "loop.toml").write_text('extends = "loop.toml"\n')
    with pytest.raises(ConfigError, match="circular"):
        load_config(sub / "loop.toml")
    (sub / "missing.toml").write_text('extends = "nope.toml"\n')
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(sub / "missing.toml")


def test_every_shipped_case_is_valid():
    for path in sorted((REPO / "benchmarks" / "cases").glob("*.toml")):
        cfg = load_config(path)
        assert cfg.name, path


def test_implausible_box_size_and_dose_and_unknown_drug_name_the_field():
    from helpers import box_case

    case = box_case(mesh={"kind": "box", "size": [1e30, 4.0, 4.0], "cells": [2, 2, 2]})
    with pytest.raises(ConfigError, match=r"mesh.box.size: a box edge of 1e\+30 mm"):
        config_from_dict(case)
    case = box_case()
    case["therapy"] = {"treatments": [{"drug": "snakeoil", "regimen": "q3w"}]}
    with pytest.raises(ConfigError, match=r"therapy.treatments.0: drug 'snakeoil': unknown drug"):
        config_from_dict(case)
    case["therapy"] = {
        "treatments": [{"drug": "trastuzumab", "regimen": "q3w", "dose": "6e6 mg/kg"}]
    }
    with pytest.raises(ConfigError, match="far beyond any clinical dose"):
        config_from_dict(case)
