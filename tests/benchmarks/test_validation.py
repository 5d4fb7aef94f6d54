"""Test-sized run of the therapy validation study (benchmarks/validation): the exposure rows."""

import math
import sys

import pytest
from helpers import REPO


@pytest.mark.serial
def test_validation_exposure_rows_quick(comm):
    sys.path.insert(0, str(REPO / "benchmarks" / "validation"))
    import run as validation

    rows, data = validation.exposure_rows(comm, quick=True)
    assert [r["row"].split(" ")[0] for r in rows] == ["trastuzumab", "lapatinib", "lapatinib"]
    for r in rows:
        assert set(r) >= {"published", "source", "model", "band", "pass", "kind"}
        assert math.isfinite(r["model"]) and r["source"]
    # closed form of the ISF row: PS/(PS + Q) with the brain profile's BBB and ISF bulk flow
    from tumorpde.library.drugs import load_drug

    perm = load_drug("trastuzumab").permeability
    ps = perm.brain * 10.0  # 100/cm in 1/mm
    q = validation.SITES["brain"]["interstitial_clearance"]
    q = float(q.split()[0])
    # (the plasma declines over the cycle and the ISF lags it by phi/Q ~ 17 h: ratio ~5 % higher)
    assert data["trastuzumab_isf_plasma"] == pytest.approx(ps / (ps + q), rel=0.08)
    # lapatinib: lesion/normal = r_BBB / r_BTB, lesion/peripheral = 1/r_BTB (flow-limited)
    lap = data["lapatinib_free_nM"]
    lp = load_drug("lapatinib").permeability
    assert lap["lesion"] / lap["normal"] == pytest.approx(
        lp.brain_efflux_ratio / lp.btb_efflux_ratio, rel=0.05
    )
    assert lap["lesion"] / lap["peripheral"] == pytest.approx(1 / lp.btb_efflux_ratio, rel=0.05)
    assert all(r["pass"] for r in rows), rows
