"""Drug catalog: shipped files, unit conversion on load, error messages, regimens, CLI."""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

import pytest

from tumorpde.cli.drug import register as register_cli
from tumorpde.library.drugs import (
    DATA_DIR,
    MEDIATORS,
    PATHWAYS,
    DrugError,
    Patient,
    Regimen,
    Treatment,
    available_drugs,
    load_drug,
    provenance,
)

ALL = [
    "bevacizumab",
    "cetuximab",
    "crizotinib",
    "denosumab",
    "galunisertib",
    "lapatinib",
    "panitumumab",
    "trastuzumab",
]


def test_catalog_lists_all_shipped_drugs():
    assert available_drugs() == ALL


@pytest.mark.parametrize("name", ALL)
def test_shipped_drug_loads_with_provenance(name: str):
    spec = load_drug(name)
    assert spec.name == name and spec.path == DATA_DIR / f"{name}.toml"
    assert set(spec.targets) <= set(PATHWAYS) | set(MEDIATORS)
    assert spec.regimens and spec.label
    if spec.mechanism == "kinase_inhibitor":
        assert set(spec.potency) == set(spec.targets) and spec.pk.model == "oral_one_compartment"
    else:
        sc = all(r.route == "sc" for r in spec.regimens.values())  # absorbed: one compartment
        assert spec.binding is not None and (sc or spec.pk.model.startswith("two_compartment"))
    rows = provenance(name)
    assert rows and all(r["confidence"] in ("S", "M", "D") and r["source"] for r in rows)
    assert all(
        r["note"] for r in rows if r["confidence"] == "D" and not r["path"].startswith("label")
    )
    # every numeric leaf outside regimens is a provenance table
    raw = tomllib.loads(spec.path.read_text())

    def bare_numbers(node, path=""):
        if isinstance(node, dict):
            if "value" in node and "source" in node:
                return []
            return [p for k, v in node.items() for p in bare_numbers(v, f"{path}.{k}")]
        if isinstance(node, int | float) and not isinstance(node, bool):
            return [path]
        return []

    assert bare_numbers({k: v for k, v in raw.items() if k != "regimens"}) == []


def test_values_are_converted_to_internal_units():
    """mm, h, nM: 1e-7 cm^2/s = 0.036 mm^2/h; 3e-7 cm/s = 0.0108 mm/h; 1e6 1/M/s = 3.6 1/(nM h)."""
    t = load_drug("trastuzumab")
    assert t.diffusivity == pytest.approx(0.036)
    assert t.permeability.tumor == pytest.approx(0.0108)
    assert t.binding.k_on == pytest.approx(3.6)
    assert t.binding.k_off == pytest.approx(0.36)
    assert t.binding.kd_nM == pytest.approx(0.1)
    assert t.pk.clearance == pytest.approx(0.241 / 24)
    assert t.molecular_weight == 148000.0
    c = load_drug("cetuximab")
    assert c.pk.km == pytest.approx(74.0) and c.pk.vmax == pytest.approx(4.38)
    assert c.binding.internalization == pytest.approx(1.8)
    lap = load_drug("lapatinib")
    assert lap.potency["HER2"].ic50 == pytest.approx(50.0)  # cellular, not enzyme (issue 13)
    assert lap.potency["EGFR"].inhibition(50.0) == pytest.approx(0.5)
    assert load_drug("crizotinib").permeability.brain_efflux_ratio == 35.0
    assert load_drug("galunisertib").permeability.brain_efflux_ratio == 1.0  # default


# -------------------------------------------------------------------------- bad files
def _write_variant(tmp_path: Path, edit) -> Path:
    data = tomllib.loads((DATA_DIR / "trastuzumab.toml").read_text())
    edit(data)
    p = tmp_path / "bad_drug.toml"
    p.write_text(_to_toml(data))
    return p


def _to_toml(data: dict, prefix: str = "") -> str:
    """Minimal TOML writer for the drug-file subset (tables, strings, numbers, lists)."""

    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + "}"
        return repr(v)

    def is_leaf_table(v):
        return isinstance(v, dict) and ("value" in v or not v)

    lines, subtables = [], []
    for k, v in data.items():
        if isinstance(v, dict) and not is_leaf_table(v):
            subtables.append((k, v))
        else:
            lines.append(f"{k} = {val(v)}")
    out = "\n".join(lines) + "\n"
    for k, v in subtables:
        name = f"{prefix}.{k}" if prefix else k
        out += f"\n[{name}]\n" + _to_toml(v, name)
    return out


def test_round_trip_writer_is_valid():
    p = _write_variant(Path(pytest.importorskip("tempfile").mkdtemp()), lambda d: None)
    assert load_drug(p).pk == load_drug("trastuzumab").pk


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda d: d.update(colour="blue"), "colour", "unknown key; allowed keys here: name"),
        (
            lambda d: d["pk"].update(qq=d["pk"]["q"]),
            "pk.qq",
            "allowed keys here: model, clearance, v1, v2, q",
        ),
        (
            lambda d: d["pk"]["clearance"].update(sorce="x"),
            "pk.clearance",
            "unknown key(s) sorce",
        ),
        (lambda d: d["pk"]["clearance"].update(unit=""), "pk.clearance", "missing unit"),
        (lambda d: d["pk"]["v1"].pop("unit"), "pk.v1", "missing unit"),
        (
            lambda d: d["pk"]["clearance"].update(unit="L"),
            "pk.clearance",
            "expected a volume_rate convertible to L/h",
        ),
        (
            lambda d: d["permeability"]["tumor"].update(unit="cm^2/s"),
            "permeability.tumor",
            "velocity",
        ),
        (lambda d: d.update(mechanism="magic"), "mechanism", "'receptor_antibody'"),
        (
            lambda d: d["pk"].update(model="three_compartment"),
            "pk",
            "does not match any of the expected tags",
        ),
        (lambda d: d.pop("molecular_weight"), "molecular_weight", "required field is missing"),
        (
            lambda d: d["binding"]["k_on"].update(confidence="X"),
            "binding.k_on",
            "confidence must be",
        ),
        (lambda d: d["binding"]["k_on"].pop("note"), "binding.k_on", "needs a 'note'"),
        (lambda d: d.update(targets=["HER3"]), "targets.0", "'EGFR'"),
        (lambda d: d.pop("binding"), "binding", "needs a [binding] table"),
        (
            lambda d: d["regimens"]["q3w"].update(
                route="oral", infusion="0 min", loading_infusion="0 min"
            ),
            "regimens.q3w.route",
            "does not fit",
        ),
        (
            lambda d: d["regimens"]["q3w"].update(dose="6 mL"),
            "regimens.q3w.dose",
            "cannot read dose",
        ),
        (lambda d: d["label"].update(q4w={}), "label.q4w", "not a regimen name"),
        (
            lambda d: d["label"]["q3w"]["cmin_ss"].update(unit="h"),
            "label.q3w.cmin_ss",
            "mass_concentration",
        ),
    ],
)
def test_bad_file_errors_name_file_and_field(tmp_path, edit, field, message):
    p = _write_variant(tmp_path, edit)
    with pytest.raises(DrugError) as info:
        load_drug(p)
    err = info.value
    assert err.source == str(p) and str(p) in str(err)
    assert any(loc == field and message in msg for loc, msg in err.problems), err.problems


def test_optional_response_and_user_file(tmp_path):
    """A user file (path) may add the optional occupancy-driven kill table."""

    def add_response(d):
        d["response"] = {
            "kill_max": {"value": 0.2, "unit": "1/day", "source": "user", "confidence": "M"},
            "half_occupancy": {"value": 0.5, "unit": "1", "source": "user", "confidence": "M"},
            "hill": {"value": 2, "unit": "1", "source": "user", "confidence": "M"},
        }

    spec = load_drug(_write_variant(tmp_path, add_response))
    assert spec.response is not None and spec.response.kill_max == pytest.approx(0.2 / 24)
    assert spec.path == tmp_path / "bad_drug.toml"


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(DrugError, match="unknown drug; available: bevacizumab"):
        load_drug("aspirin")
    with pytest.raises(DrugError, match="does not exist"):
        load_drug(tmp_path / "nope.toml")
    bad = tmp_path / "broken.toml"
    bad.write_text("name = \n")
    with pytest.raises(DrugError, match="not valid TOML"):
        load_drug(bad)


# ------------------------------------------------------------------- regimens / treatments
def test_regimen_validation():
    with pytest.raises(ValueError, match="oral regimen has no infusion"):
        Regimen(route="oral", dose="1 mg", interval="1 day", infusion="1 h")
    with pytest.raises(ValueError, match="'on' and 'off' go together"):
        Regimen(route="oral", dose="1 mg", interval="1 day", on="14 day")
    with pytest.raises(ValueError, match="shorter than 'interval'"):
        Regimen(route="iv", dose="1 mg", interval="1 h", infusion="2 h")
    with pytest.raises(ValueError):
        Regimen(route="iv", dose="6 mg/kg", interval="1 week", colour="red")
    r = Regimen(route="iv", dose="6 mg/kg", interval="3 week", infusion="90 min")
    assert r.interval == 504.0 and r.infusion == 1.5 and str(r.dose) == "6 mg/kg"


def test_treatment_from_case_table():
    t = Treatment.model_validate(
        {"drug": "trastuzumab", "regimen": "q3w", "start": "7 day", "cycles": 4}
    )
    assert t.regimen_name == "q3w" and t.regimen.start == 168.0 and t.regimen.cycles == 4
    assert t.regimen.loading_dose is not None and t.regimen.loading_dose.amount == 8.0
    assert t.spec.name == "trastuzumab"
    inline = Treatment.model_validate(
        {"drug": "lapatinib", "route": "oral", "dose": "1000 mg", "interval": "1 day"}
    )
    assert inline.regimen.dose.mg() == 1000.0 and inline.regimen_name is None
    with pytest.raises(ValueError, match="no regimen 'q9w'; available: q3w, qw"):
        Treatment.model_validate({"drug": "trastuzumab", "regimen": "q9w"})
    with pytest.raises(ValueError, match="interval"):
        Treatment.model_validate({"drug": "lapatinib", "route": "oral", "dose": "1 mg"})


def test_patient_defaults_and_overrides():
    assert Patient().body_weight == 70.0 and Patient().body_surface_area == 1.8
    p = Patient(body_weight="154 lb", body_surface_area=2.0)
    assert p.body_weight == pytest.approx(69.85, rel=1e-3)
    with pytest.raises(ValueError):
        Patient(body_weight="70 m^2")


def test_unknown_regimen_error_names_file():
    with pytest.raises(DrugError, match=r"regimens\.q9w: no such regimen; available: q3w, qw"):
        load_drug("trastuzumab").regimen("q9w")


# ------------------------------------------------------------------------------------ CLI
def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="tumorpde")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    rc = args.func(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_drug_subcommand_text(capsys):
    rc, out, _ = _run(["drug", "trastuzumab", "--regimen", "q3w", "--days", "42"], capsys)
    assert rc == 0
    assert "mechanism: receptor_antibody; targets: HER2" in out
    assert "pk.clearance" in out and "[S] Herceptin EU SmPC 5.2" in out
    assert "q3w: steady state Cmin 48.2" in out and "label cmin_ss = 44.2 ug/mL" in out
    assert "first 42 days: 3 doses" in out


def test_drug_subcommand_json_and_listing(capsys):
    rc, out, _ = _run(["drug", "galunisertib", "--json"], capsys)
    data = json.loads(out)
    assert rc == 0 and data["mechanism"] == "kinase_inhibitor" and data["targets"] == ["TGFBR"]
    ss = data["steady_state"]["intermittent_bid"]
    assert ss["cmax_ss"] > ss["cmin_ss"] > 0
    assert any(r["path"] == "pk.clearance" for r in data["parameters"])
    rc, out, _ = _run(["drug"], capsys)
    assert rc == 0 and all(n in out for n in ALL)
    rc, _, err = _run(["drug", "aspirin"], capsys)
    assert rc == 2 and "unknown drug" in err
    rc, _, err = _run(["drug", "trastuzumab", "--regimen", "q9w"], capsys)
    assert rc == 2 and "no such regimen" in err
