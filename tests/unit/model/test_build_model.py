"""The model layer without MPI or DOLFINx: species, declarations, modifiers, terms (pure UFL)."""

from __future__ import annotations

import pytest
from helpers import REPO, box_case, model_symbols
from ufl.algorithms.analysis import extract_coefficients

from tumorpde.config import ConfigError, config_from_dict, load_config
from tumorpde.model import Drug, FieldNames, Pathway, Symbols, build_model
from tumorpde.model.pathway import trafficking_steady_state

CASES = REPO / "benchmarks" / "cases"


def _symbols(model, regions=("grey", "white")) -> Symbols:
    """Abstract UFL symbols of ``model`` with the brain regions."""
    return model_symbols(model, regions)


def _depends_on(expr, coefficient) -> bool:
    return coefficient in extract_coefficients(expr)


def test_species_follow_the_case():
    model = build_model(load_config(CASES / "default.toml"))
    assert model.names == ["tumor", "EGF", "EGFR", "EGFR_complex"]
    assert model.derived_names() == ["EGFR_occupancy"]
    lung = build_model(load_config(CASES / "lung_metastasis.toml"))
    roles = {s.name: s.role for s in lung.species}
    assert roles["oxygen"] == "oxygen" and roles["mesenchymal"] == "emt"
    assert [s.kind for s in lung.species if s.name == "oxygen"] == ["algebraic"]
    assert any(s.role == "ecm" for s in lung.species)  # matrix-bound VEGF


def test_therapy_case_compiles_drug_components():
    cfg = load_config(CASES / "her2_brain_therapy.toml")
    model = build_model(cfg)
    kinds = [type(c).__name__ for c in model.components]
    assert kinds == ["Tumor", "Pathway", "Pathway", "Drug", "Drug"]
    assert "trastuzumab_bound" in model.names and "lapatinib" in model.names
    assert model.derived_names()[-4:] == [
        "trastuzumab_occupancy",
        "lapatinib_inhibition",
        "kill_rate",
        "net_growth_rate",
    ]
    assert model.breakpoints()[0] == 0.0 and model.breakpoints() == sorted(model.breakpoints())
    # exchange P S_v: the blood-brain-barrier permeability times each region's vessel density
    trast = next(c for c in model.components if isinstance(c, Drug) and c.name == "trastuzumab")
    ps = next(f for f in trast.cell_fields() if f.key == "trastuzumab.PS")
    p_bbb = trast.spec.permeability.by_class()["brain"]
    assert cfg.vessels.barrier == "brain"
    for region in ("grey", "white"):
        sv = cfg.regions[region]["vessels.surface_density"]
        assert ps.by_region[region] == pytest.approx(p_bbb * sv, rel=1e-14)


def test_modifiers_couple_drugs_to_their_targets():
    cfg = load_config(CASES / "her2_brain_therapy.toml")
    model = build_model(cfg)
    sym = _symbols(model)
    ctx = model.build(sym)
    f = sym.fields
    # lapatinib blocks both EGFR and HER2 signals; trastuzumab removes HER2 only
    assert set(ctx.mod.kinase) == {"EGFR", "HER2"}
    assert _depends_on(ctx.reaction["HER2_signal"], f["lapatinib"])
    assert _depends_on(ctx.reaction["HER2"], f["trastuzumab_bound"])
    assert not _depends_on(ctx.reaction["EGFR"], f["trastuzumab_bound"])
    # ADCC: the tumor dies where trastuzumab binds
    assert _depends_on(ctx.reaction["tumor"], f["trastuzumab_bound"])
    assert set(ctx.flux) == {"tumor", "EGF", "trastuzumab", "lapatinib"}
    qoi_names = [q.name for q in model.qois(ctx)]
    assert "trastuzumab_nM_white" in qoi_names and "mean_kill_rate" in qoi_names
    assert model.exposures(["white"])["lapatinib_white_auc_nMh"] == "lapatinib_nM_white"


def test_ligand_balance_lists_every_sink():
    model = build_model(load_config(CASES / "lung_metastasis.toml"))
    ctx = model.build(_symbols(model, ("right_lung", "left_lung")))
    vegf = next(p for p in model.pathways() if p.name == "VEGFR2").ligand
    assert set(ctx.balance[vegf]) == {"production", "decay", "binding", "matrix"}
    assert ctx.mod.hypoxia is not None


def test_unknown_output_field_is_a_config_error():
    cfg = config_from_dict(box_case(output={"fields": ["tumour"], "picture": False}))
    with pytest.raises(ConfigError, match=r"output.fields.*tumour"):
        build_model(cfg)


def test_trafficking_steady_state_is_a_fixed_point():
    cfg = config_from_dict(box_case())
    p = Pathway(cfg, next(iter(cfg.pathways)))
    rc = p.pw.receptor
    L = 0.7
    R, C, internal = trafficking_steady_state(rc, 10.0, L)
    dR = rc.k_t * 10.0 - rc.k_on * L * R + rc.k_off * C - rc.k_t * R + rc.k_rec * internal
    dC = rc.k_on * L * R - rc.k_off * C - rc.k_e * C
    assert abs(dR) < 1e-9 * rc.k_t * 10.0 and abs(dC) < 1e-9 * rc.k_t * 10.0
    assert R + C < 10.0  # ligand-induced internalization down-regulates the surface pool


def test_field_names_are_the_one_convention():
    assert FieldNames.complex("EGFR") == "EGFR_complex"
    assert FieldNames.drug_effect("lapatinib", "kinase_inhibitor") == "lapatinib_inhibition"
    assert Drug.__name__ == "Drug"


def test_pure_layers_load_without_mpi_or_dolfinx():
    import subprocess
    import sys

    code = (
        "import sys, tumorpde.model, tumorpde.config, tumorpde.library, "
        "tumorpde.simulation.stepper, tumorpde.output.rundir; "
        "print([m for m in ('dolfinx', 'mpi4py', 'petsc4py') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
