"""The pure-UFL rate laws, evaluated pointwise by UFL itself (no mesh, no MPI, no DOLFINx)."""

import basix.ufl
import pytest
import ufl

from tumorpde.model import laws

DOMAIN = ufl.Mesh(basix.ufl.element("Lagrange", "tetrahedron", 1, shape=(3,)))
V = ufl.FunctionSpace(DOMAIN, basix.ufl.element("Lagrange", "tetrahedron", 1))
X0 = (0.0, 0.0, 0.0)


def _vars(n):
    return [ufl.Coefficient(V) for _ in range(n)]


def _at(expr, values):
    return float(expr(X0, values))


@pytest.mark.parametrize("n", [1.0, 2.0, 4.0])
def test_hill_is_half_at_half_max_and_clips_negative_input(n):
    (x,) = _vars(1)
    h = laws.hill(x, 0.3, n)
    assert _at(h, {x: 0.3}) == pytest.approx(0.5)
    assert _at(h, {x: -2.0}) == 0.0
    assert _at(h, {x: 1e6}) == pytest.approx(1.0, abs=1e-5)


def test_trafficking_conserves_receptors_without_synthesis_and_degradation():
    L, R, C, internal, R0 = _vars(5)
    k = {"k_on": 0.4, "k_off": 0.1, "k_t": 0.0, "k_e": 0.2, "k_rec": 0.05, "k_deg": 0.0}
    dR, dC, dI, J = laws.trafficking(L, R, C, internal, R0, k)
    assert dC is not None and dI is not None
    values = {L: 1.3, R: 7.0, C: 2.0, internal: 0.5, R0: 10.0}
    assert _at(dR + dC + dI, values) == pytest.approx(0.0, abs=1e-12)
    assert _at(J, values) == pytest.approx(0.4 * 1.3 * 7.0 - 0.1 * 2.0)


def test_without_ligand_the_receptor_relaxes_to_its_expression():
    R, R0 = _vars(2)
    k = dict.fromkeys(("k_on", "k_off", "k_e", "k_rec", "k_deg"), 0.0) | {"k_t": 0.03}
    dR, dC, dI, _ = laws.trafficking(None, R, None, None, R0, k)
    assert dC is None and dI is None
    assert _at(dR, {R: 4.0, R0: 10.0}) == pytest.approx(0.03 * 6.0)


def test_occupancy_and_logistic_growth():
    R, C, u = _vars(3)
    assert _at(laws.occupancy(R, C), {R: 3.0, C: 1.0}) == pytest.approx(0.25)
    assert _at(laws.logistic_growth(u, 0.2), {u: 0.25}) == pytest.approx(0.2 * 0.25 * 0.75)


def test_oxygen_supply_balances_consumption_at_the_quasi_steady_root():
    oxy, u = _vars(2)
    supply = laws.oxygen_supply(oxy, 40.0, 30.0)
    consumption = laws.oxygen_consumption(u, oxy, 1000.0, 1.0)
    # 30 (40 - O) = 1000 u O / (O + 1) at u = 1: O^2 + (1000/30 + 1 - 40) O - 40 = 0
    b = 1000.0 / 30.0 + 1.0 - 40.0
    root = (-b + (b * b + 160.0) ** 0.5) / 2
    assert _at(supply - consumption, {oxy: root, u: 1.0}) == pytest.approx(0.0, abs=1e-9)
