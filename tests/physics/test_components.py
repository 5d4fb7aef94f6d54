"""User components end to end: the worked example of ``docs/components.md``, executed as written.

The debris module takes the tumor's published death rate; with no proliferation and no
clearance every dead cell becomes debris, so the discrete total ``∫u + ∫D`` is conserved.
"""

from __future__ import annotations

import re

import pytest
from helpers import REPO, example_box_case

from tumorpde.config import config_from_dict
from tumorpde.model import build_model
from tumorpde.simulation import Simulation


def _doc_blocks() -> list[str]:
    text = (REPO / "docs" / "components.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _debris_class() -> type:
    namespace: dict = {}
    exec(_doc_blocks()[0], namespace)
    return namespace["Debris"]


def test_debris_component_conserves_cells_plus_debris(comm):
    Debris = _debris_class()
    case = example_box_case(
        4.0,
        6,
        tumor={"proliferation_rate": 0.0, "death_rate": "0.2 1/day"},
        time={"t_end": "2 day", "dt": "6 h"},
    )
    cfg = config_from_dict(case)
    model = build_model(cfg, extra=[Debris(clearance=0.0)])
    assert model.names[-1] == "debris"
    with Simulation(cfg, comm, model=model) as sim:
        q0 = sim.qoi_values()
        total0 = q0["tumor_burden_mm3"] + q0["debris_mm3"]
        assert q0["debris_mm3"] == 0.0
        for _ in sim.steps():
            q = sim.qoi_values()
            total = q["tumor_burden_mm3"] + q["debris_mm3"]
            assert total == pytest.approx(total0, rel=1e-9)
        assert "min_debris" in sim.qoi_names()
    # about 1 - exp(-0.4) of the cells died in two days, and are debris now
    assert q["debris_mm3"] / total0 == pytest.approx(0.33, abs=0.01)


def test_documented_usage_block_runs(comm, shared_tmp, monkeypatch):
    """The second block of the guide (load, extend, run) works as printed."""
    Debris = _debris_class()
    code = _doc_blocks()[1].replace('"runs/debris"', repr(str(shared_tmp / "debris")))
    case = str(REPO / "benchmarks" / "cases" / "default.toml")
    code = code.replace('"benchmarks/cases/default.toml"', repr(case))
    code = code.replace('"time.t_end": "5 day"', '"time.t_end": "1 day", "output.picture": False')
    namespace = {"Debris": Debris}
    exec(code, namespace)
    result = namespace["result"]
    assert result.final()["debris_mm3"] > 0.0
    assert (shared_tmp / "debris" / "qoi.csv").read_text().splitlines()[0].count("debris") == 2


def test_two_components_cannot_own_one_species():
    Debris = _debris_class()
    cfg = config_from_dict(example_box_case(2.0, 2))
    with pytest.raises(ValueError, match="debris"):
        build_model(cfg, extra=[Debris(0.0), Debris(1.0)])
