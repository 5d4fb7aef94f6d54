"""``[[boundary]]`` tables: unit conversion on load, time tables, and errors before compute."""

import pytest
from helpers import REPO, box_case

from tumorpde.config import ConfigError, config_from_dict, load_config
from tumorpde.config.boundary import BOX_BOUNDARY_NAMES, TimeValue
from tumorpde.model import build_model
from tumorpde.units import to_internal


def _case(*conditions, **sections):
    return box_case(boundary=list(conditions), **sections)


def _robin(**kw):
    return {"boundary": "xmin", "species": "EGF", "kind": "robin", "permeability": 1.0, **kw}


def problems(case):
    with pytest.raises(ConfigError) as info:
        config_from_dict(case)
    return dict(info.value.problems)


def test_units_are_converted_once_on_load():
    cfg = config_from_dict(
        _case(
            _robin(permeability="1e-5 cm/s", external="2 nM"),
            {"boundary": "xmax", "species": "EGF", "kind": "flux", "flux": "1 nmol/m^2/s"},
            {"boundary": "ymin", "species": "tumor", "kind": "value", "external": "0.5 uM"},
        )
    )
    robin, flux, value = cfg.boundary
    assert robin.permeability == pytest.approx(0.36)  # 1e-5 cm/s = 0.36 mm/h
    assert robin.value == TimeValue(value=2.0)
    # 1 nmol/m^2 = 1 nM mm (nmol/L x mm), per second -> 3600 nM mm/h
    assert flux.value.value == pytest.approx(3600.0)
    assert to_internal("1 nM*mm/h", "surface_flux") == 1.0
    assert value.value.value == pytest.approx(500.0)


def test_robin_external_defaults_to_a_perfect_sink():
    (bc,) = config_from_dict(_case(_robin())).boundary
    assert bc.value.value == 0.0 and bc.value.constant


def test_time_table_is_converted_and_interpolated_linearly():
    table = [["0 h", "0 nM"], ["1 day", "2 nM"], ["2 day", "2 nM"]]
    (bc,) = config_from_dict(_case(_robin(external=table))).boundary
    ext = bc.value
    assert ext.table == ((0.0, 0.0), (24.0, 2.0), (48.0, 2.0))
    assert not ext.constant
    assert ext.at(12.0) == pytest.approx(1.0)
    assert ext.at(-1.0) == 0.0 and ext.at(100.0) == 2.0  # held outside the table
    assert ext.breakpoints() == [0.0, 24.0, 48.0]
    model = build_model(config_from_dict(_case(_robin(external=table), time={"t_end": "2 day"})))
    assert 24.0 in model.breakpoints()  # the stepper hits the kink
    assert model.time_constants()["boundary.0.value"](36.0) == 2.0


def test_plasma_external_names_a_drug_of_the_therapy():
    probs = problems(_case(_robin(external="plasma:trastuzumab")))
    assert "plasma:trastuzumab names no drug" in probs["boundary.0.external"]
    probs = problems(
        _case({"boundary": "xmin", "species": "EGF", "kind": "flux", "flux": "plasma:cetuximab"})
    )
    assert "plasma curve is a concentration" in probs["boundary.0.flux"]


def test_kind_needs_and_forbids_fields():
    probs = problems(_case({"boundary": "xmin", "species": "EGF", "kind": "robin"}))
    assert "kind 'robin' needs permeability" in probs["boundary.0"]
    probs = problems(_case({"boundary": "xmin", "species": "EGF", "kind": "value"}))
    assert "kind 'value' needs external" in probs["boundary.0"]
    probs = problems(_case(_robin(flux=1.0)))
    assert "kind 'robin' takes no flux" in probs["boundary.0"]
    probs = problems(_case(_robin(kind="dirichlet")))
    assert "boundary.0.kind" in probs


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("permeability", "1 mm", "expected a velocity"),
        ("permeability", 0.0, "greater than 0"),
        ("external", "-1 nM", "must be >= 0"),
        ("external", [["0 h", "1 nM"]], "2 to"),
        ("external", [["1 h", "1 nM"], ["1 h", "2 nM"]], "increase strictly"),
        ("external", "plasma:", "needs a drug name"),
    ],
)
def test_bad_values_name_the_field(field, value, message):
    probs = problems(_case(_robin(**{field: value})))
    where = f"boundary.0.{field}"
    assert where in probs, probs
    assert message in probs[where]


def test_unknown_box_face_lists_the_faces():
    probs = problems(_case(_robin(boundary="left")))
    assert "unknown boundary 'left'" in probs["boundary.0.boundary"]
    assert ", ".join(BOX_BOUNDARY_NAMES) in probs["boundary.0.boundary"]


def test_unknown_mesh_boundary_lists_the_mesh_names(tmp_path):
    good = load_config(REPO / "benchmarks" / "cases" / "brain_csf_sink.toml")
    assert [bc.boundary for bc in good.boundary] == ["ventricle_wall", "outer"]
    case = tmp_path / "case.toml"
    base = (REPO / "benchmarks" / "cases" / "brain_mni.toml").as_posix()
    case.write_text(
        f'extends = "{base}"\n[[boundary]]\nboundary = "ventricles"\nspecies = "EGF"\n'
        'kind = "robin"\npermeability = "1 mm/h"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(case)
    msg = dict(info.value.problems)["boundary.0.boundary"]
    assert "unknown boundary 'ventricles'" in msg
    assert "grey_white_interface, outer, ventricle_wall" in msg


def test_duplicate_condition_is_rejected():
    probs = problems(_case(_robin(), _robin(external=1.0)))
    assert "already has a condition (boundary.0)" in probs["boundary.1"]


def test_species_is_checked_against_the_model():
    with pytest.raises(ConfigError) as info:
        build_model(config_from_dict(_case(_robin(species="VEGF"))))
    msg = dict(info.value.problems)["boundary.0.species"]
    assert "unknown species 'VEGF'" in msg and "EGF" in msg
    with pytest.raises(ConfigError) as info:
        build_model(config_from_dict(_case(_robin(species="EGFR_complex"))))
    msg = dict(info.value.problems)["boundary.0.species"]
    assert "pointwise (ODE) species" in msg and "transported species: tumor, EGF" in msg


def test_resolved_tables_round_trip():
    """A run directory's resolved case (model_dump) validates back to the same conditions."""
    table = [["0 h", "0 nM"], ["2 h", "1 nM"]]
    cfg = config_from_dict(
        _case(
            _robin(external=table),
            {"boundary": "xmax", "species": "EGF", "kind": "flux", "flux": "-2 nM*mm/h"},
        )
    )
    again = config_from_dict(cfg.model_dump(mode="json"))
    assert again.boundary == cfg.boundary
    with pytest.raises(ValueError, match="exactly one of value, table and plasma"):
        TimeValue.model_validate({"value": 1.0, "table": [[0.0, 1.0], [1.0, 2.0]]})
