"""Parameter library: shipped files, unit conversion, merging, and the ``params`` report.

Shipped pathway and organ files validate and carry provenance; values are converted on load and
merge library < organ profile < case; ``tumorpde params`` lists them (no dolfinx, no MPI).
"""

import argparse
import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from helpers import REPO

from tumorpde import library
from tumorpde.cli import params as params_cli
from tumorpde.config import (
    ConfigError,
    config_from_dict,
    mesh_region_names,
    region_keys,
)
from tumorpde.studies.cases import example_box_case
from tumorpde.units import to_internal

PATHWAYS = library.available("pathways")
ORGANS = library.available("organs")
MESHES = REPO / "meshes"


def base_case(**tables):
    """The example box case without its single-pathway shorthand, plus ``tables``."""
    case = example_box_case(10.0, 4)
    del case["ligand"], case["receptor"], case["tumor"]["chemotaxis"]
    case.update(tables)
    return case


def mesh(name):
    return {"kind": "file", "path": str(MESHES / f"{name}.msh")}


def problems(case, **kw):
    with pytest.raises(ConfigError) as info:
        config_from_dict(case, **kw)
    return dict(info.value.problems)


def flatten(table, prefix=""):
    out = {}
    for k, v in table.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and not library.is_quantity_table(v):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def profile_pathways(profile):
    """Pathways an organ profile gives values for (globally or per region)."""
    names = set(profile.get("pathways", {}))
    for table in profile.get("regions", {}).values():
        names |= set(table.get("pathways", {}))
    return sorted(names)


def organ_case(organ):
    profile = library.load("organs", organ)
    case = base_case(organ=organ, mesh=mesh(organ))
    case["pathways"] = {p: {} for p in profile_pathways(profile)}
    for module in ("oxygen", "bone"):
        if module in profile:
            case[module] = {}
    return case, profile


# ------------------------------------------------------------------------- shipped files
def test_library_ships_the_documented_entries():
    assert {"EGFR", "HER2", "MET", "TGFBR", "VEGFR2", "IGF1R"} <= set(PATHWAYS)
    assert {"brain", "liver", "lung", "bone"} <= set(ORGANS)


@pytest.mark.parametrize("pathway", PATHWAYS)
def test_pathway_file_validates(pathway):
    cfg = config_from_dict(base_case(pathways={pathway: {}}))
    pw = cfg.pathways[pathway]
    assert pw.description
    if pathway == "HER2":
        assert pw.ligand is None  # ligand-less: signal input is R/R0
    else:
        assert pw.ligand is not None and pw.receptor.k_on > 0
    if pw.ligand is not None:  # hypoxic secretion needs [oxygen]: never on by default
        assert pw.ligand.hypoxic_secretion == 0.0


def test_all_pathways_together_validate():
    cfg = config_from_dict(base_case(pathways={p: {} for p in PATHWAYS}))
    assert list(cfg.pathways) == PATHWAYS


@pytest.mark.parametrize("organ", ORGANS)
def test_organ_profile_validates_on_its_mesh(organ):
    case, profile = organ_case(organ)
    assert (MESHES / profile["default_mesh"]).is_file()
    cfg = config_from_dict(case)
    mesh_regions = set(mesh_region_names(cfg.mesh))
    # every region of the profile exists in the shipped mesh (a typo would be skipped silently)
    assert set(profile.get("regions", {})) <= mesh_regions
    # ... and every one of its per-region values reached the case (unknown keys are skipped too)
    allowed = region_keys(
        {
            "pathways": {p: library.load("pathways", p) for p in case["pathways"]},
            **{m: {} for m in ("oxygen", "bone") if m in profile},
        }
    )
    for region, table in profile.get("regions", {}).items():
        for key in flatten(table):
            assert key in allowed, f"{organ}: regions.{region}.{key} is not region-addressable"
            assert key in cfg.regions[region]


@pytest.mark.parametrize(
    ("kind", "name"), [("pathways", p) for p in PATHWAYS] + [("organs", o) for o in ORGANS]
)
def test_every_number_has_unit_source_and_confidence(kind, name):
    table = library.load(kind, name)
    assert table["name"] == name and table["description"] and table["references"]
    rows = library.provenance(table)
    assert rows
    for row in rows:
        where = f"{kind}/{name}: {row['parameter']}"
        assert row["unit"], f"{where} has no unit"
        assert row["source"], f"{where} has no source"
        assert row["confidence"] in ("S", "M", "D"), f"{where}: confidence {row['confidence']!r}"
        assert row["note"], f"{where} has no note"
        value = row["value"]
        assert isinstance(value, int | float) and not isinstance(value, bool), where


# ------------------------------------------------------------------------- unit conversions
@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("1e7 1/M/s", "second_order_rate", 36.0),
        ("1e-3 1/s", "rate", 3.6),
        ("1e-6 cm^2/s", "diffusivity", 0.36),
        ("0.0065 cm^2/day", "diffusivity", 0.65 / 24),
        ("0.012 1/day", "rate", 0.0005),
        ("200 1/cm", "inverse_length", 20.0),
    ],
)
def test_unit_conversion(text, kind, expected):
    assert to_internal(text, kind) == pytest.approx(expected, rel=1e-12)
    value, unit = text.split(" ", 1)
    table = {"value": float(value), "unit": unit, "source": "x", "confidence": "S"}
    assert to_internal(table, kind) == pytest.approx(expected, rel=1e-12)


def test_receptors_per_cell_to_nM():
    case = base_case(
        pathways={"R": {"library": False, "receptor": {"receptors_per_cell": 1e5}}},
    )
    case["tumor"]["carrying_capacity"] = "1e8 cells/mL"
    cfg = config_from_dict(case)
    assert cfg.tumor.carrying_capacity == pytest.approx(1e5)
    assert cfg.receptor_total_nM("R") == pytest.approx(16.6, rel=2e-3)


def test_library_values_are_converted_on_load():
    raw = library.load("pathways", "EGFR")
    cfg = config_from_dict(base_case(pathways={"EGFR": {}}))
    rec = cfg.pathways["EGFR"].receptor
    assert rec.k_on == pytest.approx(to_internal(raw["receptor"]["k_on"], "second_order_rate"))
    assert rec.k_on == pytest.approx(raw["receptor"]["k_on"]["value"] * 3.6e-6)
    assert rec.k_off == pytest.approx(to_internal(raw["receptor"]["k_off"], "rate"))
    lig = cfg.pathways["EGFR"].ligand
    assert lig.diffusivity == pytest.approx(raw["ligand"]["diffusivity"]["value"] * 3.6e5)
    # a case value (plain, in internal units) replaces the library table whole
    cfg = config_from_dict(base_case(pathways={"EGFR": {"receptor": {"k_on": 1.0}}}))
    assert cfg.pathways["EGFR"].receptor.k_on == 1.0
    assert cfg.pathways["EGFR"].receptor.k_off == pytest.approx(rec.k_off)


# ------------------------------------------------------------------------- organ profiles
def test_brain_profile_white_matter_is_five_times_grey():
    cfg = config_from_dict(base_case(organ="brain", mesh=mesh("brain")))
    grey = cfg.region_value("tumor.motility", "grey")
    white = cfg.region_value("tumor.motility", "white")
    assert white == pytest.approx(5 * grey)
    assert grey == pytest.approx(0.13 / 24)  # 0.0013 cm^2/day in mm^2/h
    assert cfg.vessels.barrier == "brain"


def test_brain_profile_lowers_ligand_diffusivity_by_tortuosity():
    cfg = config_from_dict(
        base_case(organ="brain", mesh=mesh("brain"), pathways={"EGFR": {}, "IGF1R": {}})
    )
    free = 1.59e-6 * 3.6e5  # IGF-I in dilute gel (Nauman 2007), mm^2/h
    assert cfg.pathways["IGF1R"].ligand.diffusivity == pytest.approx(free / 1.6**2, rel=0.01)
    lib = config_from_dict(base_case(pathways={"EGFR": {}}))
    assert cfg.pathways["EGFR"].ligand.diffusivity > lib.pathways["EGFR"].ligand.diffusivity


def test_case_region_value_overrides_the_profile():
    case = base_case(organ="brain", mesh=mesh("brain"))
    case["regions"] = {"white": {"tumor": {"motility": "1 mm^2/day"}}}
    cfg = config_from_dict(case)
    assert cfg.region_value("tumor.motility", "white") == pytest.approx(1 / 24)
    assert cfg.region_value("tumor.motility", "grey") == pytest.approx(0.13 / 24)


def test_case_global_value_overrides_the_profile():
    case = base_case(organ="liver", mesh=mesh("liver"))
    case["tumor"]["proliferation_rate"] = "0.1 1/day"
    assert config_from_dict(case).tumor.proliferation_rate == pytest.approx(0.1 / 24)
    del case["tumor"]["proliferation_rate"], case["tumor"]["motility"]
    cfg = config_from_dict(case)  # the profile supplies both
    assert cfg.tumor.proliferation_rate == pytest.approx(0.0081 / 24)
    assert cfg.tumor.motility == pytest.approx(3e-10 * 3.6e5)


def test_liver_profile_region_values_for_hgf():
    cfg = config_from_dict(base_case(organ="liver", mesh=mesh("liver"), pathways={"MET": {}}))
    liver = cfg.regions["liver"]
    assert liver["pathways.MET.ligand.decay_rate"] == pytest.approx(2.9e-3 * 3600)
    assert (
        liver["pathways.MET.ligand.stromal_secretion"]
        > cfg.pathways["MET"].ligand.stromal_secretion
    )
    assert cfg.vessels.barrier == "fenestrated"


def test_organ_module_tables_apply_only_when_the_case_enables_them():
    case = base_case(organ="lung", mesh=mesh("lung"), pathways={"VEGFR2": {}})
    assert config_from_dict(case).oxygen is None
    case["oxygen"] = {"blood_level": "60 mmHg"}
    ox = config_from_dict(case).oxygen
    assert ox.blood_level == 60.0  # case wins
    assert ox.supply_rate == pytest.approx(90.0)  # from the lung profile


def test_bone_profile_vicious_cycle_per_region():
    cfg = config_from_dict(
        base_case(organ="bone", mesh=mesh("bone"), pathways={"TGFBR": {}}, bone={})
    )
    assert cfg.bone.pathway == "TGFBR"
    marrow, cortical = cfg.regions["marrow"], cfg.regions["cortical"]
    assert marrow["bone.activation"] > 0 and cortical["bone.activation"] == 0
    assert marrow["vessels.barrier"] == "fenestrated"
    assert cortical["tumor.motility"] < 1e-2 * marrow["tumor.motility"]
    assert (
        cortical["pathways.TGFBR.ligand.diffusivity"]
        < 1e-2 * cfg.pathways["TGFBR"].ligand.diffusivity
    )


def test_profile_regions_missing_from_the_mesh_are_skipped():
    cfg = config_from_dict(base_case(organ="brain"))  # box mesh: region "tissue" only
    assert cfg.regions == {}
    assert cfg.tumor.proliferation_rate == pytest.approx(0.05 / 24)  # case value


def test_case_region_missing_from_the_mesh_is_an_error():
    case = base_case(organ="brain", mesh=mesh("brain"))
    case["regions"] = {"cerebellum": {"tumor": {"motility": "0.1 mm^2/day"}}}
    probs = problems(case)
    assert "regions.cerebellum" in probs
    assert "unknown region" in probs["regions.cerebellum"]
    assert "grey, white" in probs["regions.cerebellum"]


def test_unknown_per_region_key_lists_the_allowed_keys():
    case = base_case(organ="brain", mesh=mesh("brain"))
    case["regions"] = {"white": {"tumor": {"speed": 1.0}}}
    probs = problems(case)
    msg = probs["regions.white.tumor.speed"]
    assert "not a per-region parameter" in msg
    assert "tumor.motility" in msg and "vessels.surface_density" in msg


def test_unknown_organ_lists_the_shipped_profiles():
    probs = problems(base_case(organ="kidney"))
    assert "kidney" in probs["organ"]
    for organ in ORGANS:
        assert organ in probs["organ"]


# ------------------------------------------------------------------------- pathway selection
def test_enabled_false_drops_a_library_pathway():
    cfg = config_from_dict(base_case(pathways={"EGFR": {}, "MET": {"enabled": False}}))
    assert list(cfg.pathways) == ["EGFR"]


PDGFR = """
name = "PDGFR"
description = "PDGF-BB / PDGFR-beta (test file)"

[ligand]
name = "PDGFBB"
diffusivity = {value = 5e-7, unit = "cm^2/s", source = "test", confidence = "D"}
decay_rate = {value = 1e-4, unit = "1/s", source = "test", confidence = "D"}

[receptor]
receptors_per_cell = 3e4
k_on = {value = 1e7, unit = "1/M/s", source = "test", confidence = "D"}
k_off = {value = 1e-3, unit = "1/s", source = "test", confidence = "D"}
k_e = {value = 0.1, unit = "1/min", source = "test", confidence = "D"}
"""


def test_user_pathway_file(tmp_path):
    (tmp_path / "pdgfr.toml").write_text(PDGFR)
    case = base_case(pathways={"PDGFR": {"file": "pdgfr.toml", "receptor": {"k_off": 0.5}}})
    cfg = config_from_dict(case, base_dir=tmp_path)
    pw = cfg.pathways["PDGFR"]
    assert pw.ligand.name == "PDGFBB"
    assert pw.ligand.diffusivity == pytest.approx(0.18)
    assert pw.receptor.k_on == pytest.approx(36.0)
    assert pw.receptor.k_off == 0.5  # the case table wins over the file
    assert pw.receptor.k_e == pytest.approx(6.0)
    # an absolute path works without base_dir
    case["pathways"]["PDGFR"]["file"] = str(tmp_path / "pdgfr.toml")
    assert config_from_dict(case).pathways["PDGFR"].receptor.k_on == pytest.approx(36.0)


def test_missing_user_pathway_file_is_an_error(tmp_path):
    case = base_case(pathways={"PDGFR": {"file": "nowhere.toml"}})
    probs = problems(case, base_dir=tmp_path)
    assert "does not exist" in probs["pathways.PDGFR.file"]


def test_pathway_not_in_the_library_needs_tables():
    probs = problems(base_case(pathways={"PDGFR": {}}))
    msg = probs["pathways.PDGFR"]
    assert "not in the pathway library" in msg
    assert "EGFR" in msg and "file =" in msg


# ------------------------------------------------------------------------- tumorpde params
def run_params(argv, capsys):
    parser = argparse.ArgumentParser(prog="tumorpde")
    sub = parser.add_subparsers(dest="command", required=True)
    params_cli.register(sub)
    args = parser.parse_args(["params", *argv])
    rc = args.func(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_params_lists_entries(capsys):
    rc, out, _ = run_params(["pathways"], capsys)
    assert rc == 0
    for p in PATHWAYS:
        assert p in out
    rc, out, _ = run_params(["organs", "--json"], capsys)
    entries = json.loads(out)["organs"]
    assert rc == 0 and [e["name"] for e in entries] == ORGANS
    assert all(e["description"] for e in entries)
    rc, out, _ = run_params([], capsys)
    assert rc == 0 and "pathways:" in out and "organs:" in out


def test_params_table_for_one_entry(capsys):
    rc, out, _ = run_params(["pathways", "VEGFR2"], capsys)
    assert rc == 0
    header = next(line for line in out.splitlines() if line.startswith("parameter"))
    assert [c.strip() for c in header.split("|")] == [
        "parameter",
        "value",
        "unit",
        "conf",
        "source",
    ]
    row = next(line for line in out.splitlines() if line.startswith("receptor.k_on "))
    cells = [c.strip() for c in row.split("|")]
    assert cells[1:4] == ["1e+07", "1/M/s", "S"] and "Vempati 2011" in cells[4]
    rc, out, _ = run_params(["organs", "brain", "--notes"], capsys)
    assert rc == 0 and "regions.white.tumor.motility" in out and "note:" in out


def test_params_json_matches_provenance(capsys):
    rc, out, _ = run_params(["pathways", "EGFR", "--json"], capsys)
    report = json.loads(out)
    assert rc == 0 and report["name"] == "EGFR"
    table = library.load("pathways", "EGFR")
    body = {k: v for k, v in table.items() if k not in ("name", "description", "references")}
    assert report["parameters"] == library.provenance(body)
    assert report["references"] == table["references"]


def test_params_user_file_and_errors(capsys, tmp_path):
    path = tmp_path / "pdgfr.toml"
    path.write_text(PDGFR)
    rc, out, _ = run_params(["pathways", str(path)], capsys)
    assert rc == 0 and "receptor.k_on" in out
    assert "(undocumented)" in out  # receptors_per_cell is a bare number in this file
    rc, _, err = run_params(["organs", "kidney"], capsys)
    assert rc == 2 and "kidney" in err and "brain" in err


def test_docs_describe_every_shipped_entry():
    text = Path(REPO / "docs" / "pathways.md").read_text()
    for name in PATHWAYS + ORGANS:
        assert name in text
