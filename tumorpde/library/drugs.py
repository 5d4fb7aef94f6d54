"""Drug catalog: validated drug data files, dosing regimens and patients.

Each drug ships as a TOML file in ``tumorpde/library/data/drugs/<name>.toml``. Every numeric leaf of
a drug file is a parameter table ``{value, unit, source, confidence, note?}`` (confidence ``S``
checked in the source, ``M`` widely quoted, ``D`` derived, with the derivation in ``note``).
Values are converted once, on load, to tumorpde's internal units (:mod:`tumorpde.units`: mm,
h, nM; plasma pharmacokinetics keeps mg, L and h), so :class:`DrugSpec` holds plain floats.

The PDE layer reads :attr:`DrugSpec.mechanism`, :attr:`DrugSpec.targets`, the transport
parameters and :attr:`DrugSpec.binding` / :attr:`DrugSpec.potency`; :mod:`tumorpde.library.pk` turns
:attr:`DrugSpec.pk` and a :class:`Regimen` into a plasma concentration ``Cpl(t)``.

File layout (the shipped files are worked examples)::

    name = "trastuzumab"
    mechanism = "receptor_antibody"          # | "ligand_trap" | "kinase_inhibitor"
    targets = ["HER2"]                       # pathways: EGFR, HER2, MET, TGFBR, VEGFR2; or
                                             # RANKL (ligand_trap of the bone cycle)
    molecular_weight = {value = 148000, unit = "g/mol", source = "...", confidence = "M"}
    diffusivity, plasma_unbound_fraction, available_volume_fraction, tissue_clearance
    [permeability]  normal, fenestrated, brain, tumor (, brain_efflux_ratio, btb, btb_spread,
                    btb_efflux_ratio, btb_efflux_spread)   # blood-tumor barrier of brain lesions
    [binding]       k_on, k_off (, internalization)      # antibodies and ligand traps
    [potency.HER2]  ic50, hill, imax                     # kinase inhibitors, one per target
    [response]      kill_max, half_occupancy, hill (, signal_block)   # ADCC kill, signal block
    [pk]            model = "two_compartment" | "two_compartment_mm" | "oral_one_compartment"
    [regimens.q3w]  route, dose, loading_dose, interval, infusion, loading_infusion, on, off
    [label.q3w]     cmin_ss, cmax_ss, cavg_ss, cmax_first, auc_tau_ss, accumulation_ratio,
                    half_life, tmax  ({value, unit, source, confidence, note?, population?,
                    range?}; keys are regimen names or "general")

This module imports neither dolfinx nor MPI.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from tumorpde import library
from tumorpde.errors import FieldProblems, validation_problems
from tumorpde.units import INTERNAL_UNITS, split_quantity, to_internal

__all__ = [
    "DATA_DIR",
    "MAX_DOSES",
    "MEDIATORS",
    "PATHWAYS",
    "Binding",
    "DoseAmount",
    "DrugError",
    "DrugSpec",
    "LabelSet",
    "LabelValue",
    "OralOneCompartmentPK",
    "PKModel",
    "Patient",
    "Permeability",
    "Regimen",
    "Response",
    "TargetPotency",
    "Treatment",
    "TwoCompartmentMMPK",
    "TwoCompartmentPK",
    "available_drugs",
    "drug_from_dict",
    "load_drug",
    "provenance",
]

#: Directory of the shipped drug files.
DATA_DIR = library.data_dir("drugs")

#: Pathway names a drug may target (for a ligand trap: the pathway whose ligand it binds).
PATHWAYS = ("EGFR", "HER2", "MET", "TGFBR", "VEGFR2")

Pathway = Literal["EGFR", "HER2", "MET", "TGFBR", "VEGFR2"]

#: Algebraic mediators a ligand trap may neutralize instead of a pathway's ligand: RANKL of the
#: bone vicious cycle (:mod:`tumorpde.model.bone`, needs ``[bone]`` in the case).
MEDIATORS = ("RANKL",)

Target = Literal["EGFR", "HER2", "MET", "TGFBR", "VEGFR2", "RANKL"]
Confidence = Literal["S", "M", "D"]
Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]

#: Most doses one regimen may give over a run (checked from interval, cycles and stop before a
#: schedule is built). A daily drug over 100 years is 36,525 doses; 1e5 leaves room for
#: several doses a day over decades while stopping "interval = 1e-9 h" (3.6e10 dose objects).
MAX_DOSES = 100_000

#: Routes with first-order absorption (the ``oral_one_compartment`` model): oral, and
#: subcutaneous injection (absorption from the injection site through the lymph).
ABSORBED_ROUTES = ("oral", "sc")

_PARAM_REQUIRED = ("value", "unit", "source", "confidence")
_PARAM_KEYS = (*_PARAM_REQUIRED, "note")


class DrugError(FieldProblems):
    """A drug file (or regimen) that cannot be used; ``problems`` lists (field, message) pairs."""

    what = "drug file"


# ------------------------------------------------------------------------- parameter tables
def _parse_param(kind: str, v: Any) -> float:
    """Validate a parameter table ``{value, unit, source, confidence, note?}``; return internal."""
    if not isinstance(v, Mapping):
        raise ValueError(
            "expected a parameter table {value, unit, source, confidence[, note]}, e.g. "
            f'{{value = 1.0, unit = "{INTERNAL_UNITS[kind]}", source = "...", '
            'confidence = "M"}'
        )
    unknown = sorted(set(v) - set(_PARAM_KEYS))
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)} in parameter table; allowed: "
            + ", ".join(_PARAM_KEYS)
        )
    missing = [k for k in _PARAM_REQUIRED if k not in v]
    if missing:
        raise ValueError(f"parameter table is missing {', '.join(missing)}")
    value, unit = v["value"], v["unit"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'value' must be a number (got {value!r})")
    if not isinstance(unit, str):
        raise ValueError(f"'unit' must be a string (got {unit!r})")
    if kind != "dimensionless" and unit.strip() in ("", "1"):
        raise ValueError(
            f"missing unit: a {kind} needs a unit convertible to {INTERNAL_UNITS[kind]}"
        )
    if v["confidence"] not in ("S", "M", "D"):
        raise ValueError(
            f"confidence must be 'S' (checked), 'M' (widely quoted) or 'D' (derived), "
            f"got {v['confidence']!r}"
        )
    if not isinstance(v["source"], str) or not v["source"].strip():
        raise ValueError("'source' must be a non-empty string")
    if "note" in v and not isinstance(v["note"], str):
        raise ValueError("'note' must be a string")
    if v["confidence"] == "D" and not str(v.get("note", "")).strip():
        raise ValueError("a derived value (confidence 'D') needs a 'note' showing the derivation")
    return to_internal({"value": value, "unit": unit}, kind)


def _param(kind: str) -> BeforeValidator:
    return BeforeValidator(partial(_parse_param, kind))


def _quantity(kind: str) -> BeforeValidator:
    """A regimen/patient quantity: a number (internal units), a string with units, or a table."""
    return BeforeValidator(lambda v: to_internal(v, kind))


# Parameter-table types (catalog values: always a table with provenance).
PMolarMass = Annotated[float, _param("molar_mass"), Field(gt=0)]
PDiffusivity = Annotated[float, _param("diffusivity"), Field(ge=0)]
PFraction = Annotated[float, _param("dimensionless"), Field(ge=0, le=1)]
PPositiveFraction = Annotated[float, _param("dimensionless"), Field(gt=0, le=1)]
PRate = Annotated[float, _param("rate"), Field(ge=0)]
PPositiveRate = Annotated[float, _param("rate"), Field(gt=0)]
PVelocity = Annotated[float, _param("velocity"), Field(ge=0)]
PSecondOrder = Annotated[float, _param("second_order_rate"), Field(gt=0)]
PConcentration = Annotated[float, _param("concentration"), Field(gt=0)]
PPositive = Annotated[float, _param("dimensionless"), Field(gt=0)]


def _hill_at_least_one(v: float) -> float:
    if v < 1:
        raise ValueError(
            f"a Hill exponent must be >= 1 (got {v:g}): below 1 the response x^h has an "
            "infinite slope at zero drug or occupancy, where every run starts, and Newton fails"
        )
    return v


PHill = Annotated[float, _param("dimensionless"), AfterValidator(_hill_at_least_one)]
PRatio = Annotated[float, _param("dimensionless"), Field(ge=1)]
PSpread = Annotated[float, _param("dimensionless"), Field(ge=0, le=5)]
PVolume = Annotated[float, _param("volume"), Field(gt=0)]
PVolumeRate = Annotated[float, _param("volume_rate"), Field(gt=0)]
PVolumeRate0 = Annotated[float, _param("volume_rate"), Field(ge=0)]
PMassRate = Annotated[float, _param("mass_rate"), Field(ge=0)]
PMassConcentration = Annotated[float, _param("mass_concentration"), Field(gt=0)]

# Plain quantities (regimens, patients, case files).
Time = Annotated[float, _quantity("time")]
BodyMass = Annotated[float, _quantity("body_mass"), Field(gt=0)]
Area = Annotated[float, _quantity("area"), Field(gt=0)]


class _Strict(BaseModel):
    # allow_inf_nan=False: every float of a drug file or regimen must be finite
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ------------------------------------------------------------------------- catalog sections
class Permeability(_Strict):
    """Vascular permeability (mm/h) by vessel class.

    ``brain`` is the effective influx permeability of an intact blood–brain barrier.
    ``brain_efflux_ratio`` (≥ 1, default 1) is the efflux/influx asymmetry of that barrier for
    transporter substrates: the exchange flux is ``P_brain (f_u Cpl - r A/phi)``, so the
    steady-state unbound brain-to-plasma ratio is ``Kp,uu = 1/r`` in the absence of other sinks.
    ``tumor`` is the permeability of peripheral tumor vessels (no efflux).

    The blood–tumor barrier (vessels of a lesion in brain) is its own class: the median lesion
    has permeability ``btb`` and efflux ratio ``btb_efflux_ratio`` (default 1); lesions differ
    log-normally, lesion ``z`` (a standard-normal draw per lesion) having
    ``btb exp(btb_spread z)`` and ``max(1, btb_efflux_ratio exp(-btb_efflux_spread z))``.
    ``btb`` is optional in a drug file, but a case whose ``vessels.barrier`` is ``brain``
    anywhere rejects a drug without it (a configuration error naming the drug), since no
    default is defensible: brain lesions range from intact-BBB to peripheral permeability
    (Lockman et al. 2010). Every shipped drug gives it.
    """

    normal: PVelocity
    fenestrated: PVelocity
    brain: PVelocity
    tumor: PVelocity
    brain_efflux_ratio: PRatio = 1.0
    btb: PVelocity | None = None
    btb_spread: PSpread = 0.0
    btb_efflux_ratio: PRatio = 1.0
    btb_efflux_spread: PSpread = 0.0

    def lesion_btb(self, z: float) -> tuple[float, float]:
        """Blood–tumor-barrier permeability (mm/h) and efflux ratio of a lesion of z-score z.

        Without ``btb`` (a drug only for cases without brain vessels) the peripheral ``tumor``
        value stands in; it is never used there, and brain cases require ``btb``.
        """
        import math

        p = (self.tumor if self.btb is None else self.btb) * math.exp(self.btb_spread * z)
        r = max(1.0, self.btb_efflux_ratio * math.exp(-self.btb_efflux_spread * z))
        return p, r

    def by_class(self) -> dict[str, float]:
        """The four vessel-class permeabilities (mm/h) as a dictionary."""
        return {
            "normal": self.normal,
            "fenestrated": self.fenestrated,
            "brain": self.brain,
            "tumor": self.tumor,
        }


class Binding(_Strict):
    """Drug–target binding: ``k_on`` (1/(nM h)), ``k_off`` (1/h), complex internalization (1/h).

    For a ligand trap the target is the ligand; ``internalization`` is then usually absent.
    """

    k_on: PSecondOrder
    k_off: PRate
    internalization: PRate | None = None

    @property
    def kd_nM(self) -> float:
        """Equilibrium dissociation constant ``k_off/k_on`` (nM)."""
        return self.k_off / self.k_on


class TargetPotency(_Strict):
    """Signal block on one pathway: ``I = imax A^h / (ic50^h + A^h)``, A = free drug (nM)."""

    ic50: PConcentration
    hill: PHill
    imax: PFraction

    def inhibition(self, free_nM: Any) -> Any:
        """Fractional signal block for a free tissue concentration (nM; scalar or array)."""
        import numpy as np

        a = np.maximum(np.asarray(free_nM, dtype=float), 0.0)
        x = (a / self.ic50) ** self.hill
        out = self.imax * x / (1.0 + x)
        return float(out) if np.ndim(free_nM) == 0 else out


class Response(_Strict):
    """Response to a receptor antibody.

    Occupancy-driven kill (ADCC) ``k = e kill_max occ^h / (half_occupancy^h + occ^h)`` with
    the tissue's effector-cell factor e; and the block of the bound receptors' signal:
    a bound receptor keeps the fraction ``1 - signal_block (1 - bypass)`` of its signal, where
    ``bypass`` is the ligand-driven (HER3/neuregulin) share the antibody does not block.
    ``kill_max = 0`` means no ADCC (the drug then adds no kill term); ``hill`` must be >= 1.
    """

    kill_max: PRate
    half_occupancy: PPositiveFraction
    hill: PHill
    signal_block: PFraction = 1.0


class TwoCompartmentPK(_Strict):
    """Linear two-compartment IV model (CL, V1, V2, Q in L and L/h)."""

    model: Literal["two_compartment"]
    clearance: PVolumeRate
    v1: PVolume
    v2: PVolume
    q: PVolumeRate


class TwoCompartmentMMPK(_Strict):
    """Two-compartment IV model with parallel linear (CL) and Michaelis–Menten elimination."""

    model: Literal["two_compartment_mm"]
    clearance: PVolumeRate0
    v1: PVolume
    v2: PVolume
    q: PVolumeRate
    vmax: PMassRate
    km: PMassConcentration


class OralOneCompartmentPK(_Strict):
    """One-compartment model with first-order absorption (oral or subcutaneous doses).

    ``clearance`` and ``volume`` are the apparent oral values CL/F and V/F, so the plasma
    concentration after a dose D is ``D ka / (V/F (ka - ke)) (e^{-ke t} - e^{-ka t})`` with
    ``ke = (CL/F)/(V/F)``; ``bioavailability`` (absolute F) is informational and only used to
    report the systemic CL and V.
    """

    model: Literal["oral_one_compartment"]
    bioavailability: PPositiveFraction
    ka: PPositiveRate
    clearance: PVolumeRate
    volume: PVolume


PKModel = Annotated[
    TwoCompartmentPK | TwoCompartmentMMPK | OralOneCompartmentPK, Field(discriminator="model")
]


# ---------------------------------------------------------------------------- patient/doses
class Patient(_Strict):
    """Body size used to turn mg/kg and mg/m^2 doses into mg."""

    body_weight: BodyMass = 70.0
    body_surface_area: Area = 1.8


_DOSE_PER = {"kg": "body_mass", "m^2": "area"}


def _parse_dose(v: Any) -> Any:
    """Parse ``"6 mg/kg"``, ``"250 mg/m^2"``, ``"1250 mg"`` (or a table) into amount and basis."""
    if isinstance(v, Mapping) and "amount" in v:
        return v
    if isinstance(v, Mapping):
        if "value" not in v or "unit" not in v:
            raise ValueError("a dose table needs 'value' and 'unit' (e.g. unit = \"mg/kg\")")
        v = f"{v['value']} {v['unit']}"
    if isinstance(v, bool):
        raise ValueError("a dose is a string like '6 mg/kg', '250 mg/m^2' or '1250 mg'")
    if isinstance(v, int | float):
        return {"amount": float(v), "per": "flat"}
    if not isinstance(v, str):
        raise ValueError("a dose is a string like '6 mg/kg', '250 mg/m^2' or '1250 mg'")
    text = re.sub(r"\bm2\b", "m^2", v.strip())
    split_quantity(text)  # a finite number and a plain unit expression, else its own message
    for per, probe in (("flat", None), ("kg", "kg"), ("m^2", "m^2")):
        try:
            return {"amount": to_internal(text, "mass", times=probe), "per": per}
        except ValueError:
            continue
    raise ValueError(
        f"cannot read dose {v!r}: expected a mass (mg), mass per body weight (mg/kg) or "
        "mass per body surface area (mg/m^2)"
    )


#: Largest accepted dose per basis: 100x above the largest label doses in the catalog.
MAX_DOSE = {"flat": 1e5, "kg": 1e3, "m^2": 4e4}


class DoseAmount(_Strict):
    """A dose: ``amount`` mg flat, per kg body weight or per m^2 body surface area."""

    amount: float = Field(gt=0)
    per: Literal["flat", "kg", "m^2"]

    @model_validator(mode="after")
    def _plausible(self) -> DoseAmount:
        cap = MAX_DOSE[self.per]
        if self.amount > cap:
            unit = "mg" if self.per == "flat" else f"mg/{self.per}"
            raise ValueError(
                f"dose {self.amount:g} {unit} is above {cap:g} {unit}, far beyond any clinical "
                "dose (label doses are 1-1500 mg, 2-8 mg/kg, 250-400 mg/m^2): check the unit"
            )
        return self

    def mg(self, patient: Patient | None = None) -> float:
        """The dose in mg for ``patient`` (default: 70 kg, 1.8 m^2)."""
        p = patient or Patient()
        if self.per == "kg":
            return self.amount * p.body_weight
        if self.per == "m^2":
            return self.amount * p.body_surface_area
        return self.amount

    def __str__(self) -> str:
        return f"{self.amount:g} mg" + ("" if self.per == "flat" else f"/{self.per}")


Dose = Annotated[DoseAmount, BeforeValidator(_parse_dose)]


class Regimen(_Strict):
    """A dosing regimen (times in h, doses per :class:`DoseAmount`).

    Doses are given at ``start + k*interval``; the first one is ``loading_dose`` if set.
    With ``on``/``off`` the doses restart every cycle ``on + off`` and are given only while
    ``k*interval < on`` (e.g. 14 days on, 14 days off). ``cycles`` limits the number of
    cycles (a cycle is ``on + off`` when intermittent, else one ``interval``); ``stop`` ends
    dosing (doses at ``t >= stop`` are dropped). ``start`` and ``stop`` are on the same clock.
    """

    route: Literal["iv", "oral", "sc"]
    dose: Dose
    loading_dose: Dose | None = None
    interval: Time = Field(gt=0)
    infusion: Time = Field(default=0.0, ge=0)
    loading_infusion: Time | None = Field(default=None, ge=0)
    on: Time | None = Field(default=None, gt=0)
    off: Time | None = Field(default=None, ge=0)
    start: Time = 0.0
    cycles: int | None = Field(default=None, ge=1)
    stop: Time | None = None
    description: str = ""
    source: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Regimen:
        if self.route != "iv" and (self.infusion or self.loading_infusion):
            raise ValueError(f"an {self.route} regimen has no infusion time")
        for name in ("infusion", "loading_infusion"):
            dur = getattr(self, name)
            if dur is not None and dur >= self.interval:
                raise ValueError(f"'{name}' ({dur:g} h) must be shorter than 'interval'")
        if (self.on is None) != (self.off is None):
            raise ValueError("'on' and 'off' go together (intermittent cycle)")
        if self.stop is not None and self.stop <= self.start:
            raise ValueError("'stop' must be after 'start'")
        return self

    @property
    def intermittent(self) -> bool:
        """True with an on/off cycle."""
        return self.on is not None

    @property
    def cycle_length(self) -> float:
        """One cycle (h): ``on + off`` when intermittent, else ``interval``."""
        if self.on is not None and self.off is not None:
            return self.on + self.off
        return self.interval

    @property
    def doses_per_cycle(self) -> int:
        """Doses per cycle (1 for a continuous regimen)."""
        if self.on is None:
            return 1
        return max(1, math.ceil(self.on / self.interval - 1e-9))

    def dose_count(self, t_end_h: float, start_h: float = 0.0) -> float:
        """How many doses the regimen gives up to ``t_end_h``, by arithmetic (no schedule built).

        An upper bound of ``len(schedule(...))``: the last, partial cycle counts whole (at most
        ``doses_per_cycle`` too many); ``inf`` for an unbounded regimen over an unbounded time.

        Args:
            t_end_h: Last time (h) doses are scheduled for.
            start_h: Offset (h) added to the regimen's own ``start``.
        """
        t0 = start_h + self.start
        end = t_end_h if self.stop is None else min(t_end_h, start_h + self.stop)
        if math.isnan(end) or end < t0:
            return 0.0
        span = end - t0
        cycles = math.floor(span / self.cycle_length) + 1 if math.isfinite(span) else math.inf
        if self.cycles is not None:
            cycles = min(cycles, self.cycles)
        per_cycle = 1.0
        if self.on is not None:
            per_cycle = max(1.0, math.ceil(self.on / self.interval - 1e-9))
            if math.isfinite(span):
                per_cycle = min(per_cycle, math.floor(span / self.interval) + 1.0)
        return float(cycles) * per_cycle

    def describe(self) -> str:
        """One-line human-readable summary."""
        s = f"{self.route} {self.dose} every {_fmt_time(self.interval)}"
        if self.loading_dose is not None:
            s += f", loading {self.loading_dose}"
        if self.infusion:
            s += f", infusion {_fmt_time(self.infusion)}"
        if self.on is not None and self.off is not None:
            s += f", {_fmt_time(self.on)} on / {_fmt_time(self.off)} off"
        if self.start:
            s += f", start {_fmt_time(self.start)}"
        if self.cycles is not None:
            s += f", {self.cycles} cycles"
        if self.stop is not None:
            s += f", stop {_fmt_time(self.stop)}"
        return s


def _fmt_time(h: float) -> str:
    def unit(n: float, name: str) -> str:
        return f"{n:g} {name}" + ("" if n == 1 else "s")

    if h >= 24 * 7 and (h / (24 * 7)).is_integer() and h / 24 not in (14.0, 28.0):
        return unit(h / 168, "week")
    if h >= 24 and (h / 24).is_integer():
        return unit(h / 24, "day")
    if h < 1:
        return f"{h * 60:g} min"
    return f"{h:g} h"


# --------------------------------------------------------------------------------- labels
#: Kind of each label quantity (``auc`` is mass concentration times time).
LABEL_KINDS: dict[str, str] = {
    "cmin_ss": "mass_concentration",
    "cmax_ss": "mass_concentration",
    "cavg_ss": "mass_concentration",
    "cmax_first": "mass_concentration",
    "auc_tau_ss": "auc",
    "accumulation_ratio": "dimensionless",
    "half_life": "time",
    "tmax": "time",
}


def _label_internal(kind: str, value: float, unit: str) -> float:
    if kind == "auc":  # mass concentration x time: divide by one hour, convert to mg/L
        return to_internal(f"{value!r} {unit}", "mass_concentration", times="1/h")
    if kind == "dimensionless" and unit.strip() in ("", "1"):
        return float(value)
    return to_internal({"value": value, "unit": unit}, kind)


class LabelValue(_Strict):
    """A reference value from a label or paper, with provenance (``range`` in the same unit)."""

    value: float
    unit: str
    source: str = Field(min_length=1)
    confidence: Confidence
    note: str = ""
    population: str = ""
    range: tuple[float, float] | None = None


class LabelSet(_Strict):
    """Reference PK values for one regimen (or ``general``), converted on demand.

    Internal units: concentrations mg/L, AUC mg·h/L, times h.
    """

    cmin_ss: LabelValue | None = None
    cmax_ss: LabelValue | None = None
    cavg_ss: LabelValue | None = None
    cmax_first: LabelValue | None = None
    auc_tau_ss: LabelValue | None = None
    accumulation_ratio: LabelValue | None = None
    half_life: LabelValue | None = None
    tmax: LabelValue | None = None

    @model_validator(mode="after")
    def _units(self) -> LabelSet:
        for name, kind in LABEL_KINDS.items():
            lv = getattr(self, name)
            if lv is not None:
                try:
                    _label_internal(kind, lv.value, lv.unit)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        return self

    def internal(self, name: str) -> float:
        """The value of ``name`` in internal units (mg/L, mg·h/L, h or dimensionless)."""
        lv = getattr(self, name)
        if lv is None:
            raise KeyError(name)
        return _label_internal(LABEL_KINDS[name], lv.value, lv.unit)

    def items(self) -> list[tuple[str, LabelValue]]:
        """The values that are set, as (name, value) pairs."""
        return [(n, getattr(self, n)) for n in LABEL_KINDS if getattr(self, n) is not None]


# ----------------------------------------------------------------------------------- drug
class DrugSpec(_Strict):
    """One drug: mechanism, targets, tissue transport, binding/potency, plasma PK, regimens.

    All values are in internal units: diffusivity mm^2/h, permeability mm/h, rates 1/h,
    ``k_on`` 1/(nM h), concentrations nM (potency) and mg/L (PK), volumes L, molar mass g/mol.
    """

    name: Name
    description: str = ""
    mechanism: Literal["receptor_antibody", "ligand_trap", "kinase_inhibitor"]
    targets: list[Target] = Field(min_length=1)
    molecular_weight: PMolarMass
    diffusivity: PDiffusivity
    plasma_unbound_fraction: PPositiveFraction
    available_volume_fraction: PPositiveFraction
    tissue_clearance: PRate
    permeability: Permeability
    binding: Binding | None = None
    potency: dict[Pathway, TargetPotency] = {}
    response: Response | None = None
    pk: PKModel
    regimens: dict[Name, Regimen] = {}
    label: dict[Name, LabelSet] = {}
    references: list[str] = []

    _path: Path | None = PrivateAttr(default=None)

    @field_validator("targets")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("targets must not repeat")
        return v

    @model_validator(mode="after")
    def _mechanism(self) -> DrugSpec:
        if self.mechanism in ("receptor_antibody", "ligand_trap") and self.binding is None:
            raise ValueError(f"binding: a {self.mechanism} needs a [binding] table (k_on, k_off)")
        if self.mechanism == "kinase_inhibitor":
            missing = [t for t in self.targets if t not in self.potency]
            if missing:
                raise ValueError(
                    "potency: a kinase_inhibitor needs [potency.<target>] for every target; "
                    "missing: " + ", ".join(missing)
                )
        mediators = [t for t in self.targets if t in MEDIATORS]
        if mediators and (self.mechanism != "ligand_trap" or len(self.targets) != 1):
            raise ValueError(
                f"targets: {mediators[0]} is neutralized by a ligand_trap with that one target"
            )
        extra = [t for t in self.potency if t not in self.targets]
        if extra:
            raise ValueError(f"potency: given for non-targets: {', '.join(extra)}")
        oral = self.pk.model == "oral_one_compartment"
        for rname, reg in self.regimens.items():
            if (reg.route in ABSORBED_ROUTES) != oral:
                raise ValueError(
                    f"regimens.{rname}.route: '{reg.route}' does not fit the "
                    f"'{self.pk.model}' PK model"
                )
        unknown = [k for k in self.label if k != "general" and k not in self.regimens]
        if unknown:
            raise ValueError(
                f"label.{unknown[0]}: not a regimen name (use one of "
                f"{', '.join([*self.regimens, 'general'])})"
            )
        return self

    @property
    def path(self) -> Path | None:
        """The file this spec was loaded from (None for a dictionary)."""
        return self._path

    @property
    def nM_per_mg_L(self) -> float:
        """Conversion factor from plasma mg/L to nM: ``1e6 / molecular_weight``."""
        return 1e6 / self.molecular_weight

    def regimen(self, name: str) -> Regimen:
        """The named regimen.

        Raises:
            DrugError: If there is no such regimen (the message lists the available ones).
        """
        try:
            return self.regimens[name]
        except KeyError:
            raise DrugError(
                str(self._path or self.name),
                [(f"regimens.{name}", f"no such regimen; available: {', '.join(self.regimens)}")],
            ) from None


# -------------------------------------------------------------------------------- treatment
_REGIMEN_FIELDS = tuple(Regimen.model_fields)


class Treatment(_Strict):
    """A case-file regimen: ``drug`` plus a named ``regimen`` and/or inline regimen fields.

    Example (TOML)::

        [[treatments]]
        drug = "trastuzumab"
        regimen = "q3w"          # a regimen of the drug file; inline keys override it
        start = "7 day"
        cycles = 6

    Without ``regimen`` all required regimen fields (route, dose, interval) must be inline.
    """

    drug: str
    regimen: Regimen
    regimen_name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        d = dict(data)
        if "drug" not in d or not isinstance(d["drug"], str):
            return d  # let field validation report it
        try:
            load_drug(d["drug"])
        except DrugError as exc:
            # an unknown name or a missing/broken drug file: say so, not "regimen fields missing"
            detail = "; ".join(
                msg if field == "(file)" else f"{field}: {msg}" for field, msg in exc.problems
            )
            raise ValueError(f"drug {d['drug']!r}: {detail}") from None
        reg = d.pop("regimen", None)
        inline = {k: d.pop(k) for k in list(d) if k in _REGIMEN_FIELDS}
        if isinstance(reg, Mapping):
            return {**d, "regimen": {**reg, **inline}}
        if reg is None:
            return {**d, "regimen": inline}
        if not isinstance(reg, str):
            raise ValueError("'regimen' is a regimen name or a table")
        spec = load_drug(d["drug"])
        if reg not in spec.regimens:
            raise ValueError(
                f"drug '{spec.name}' has no regimen '{reg}'; available: " + ", ".join(spec.regimens)
            )
        base = spec.regimens[reg].model_dump(exclude_none=True)
        return {**d, "regimen": {**base, **inline}, "regimen_name": reg}

    @property
    def spec(self) -> DrugSpec:
        """The drug (loaded from the catalog or from the path in ``drug``)."""
        return load_drug(self.drug)


# ---------------------------------------------------------------------------------- loading
def drug_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> DrugSpec:
    """Validate a drug given as a dictionary (parsed TOML).

    Args:
        data: The drug tables.
        source: Name used in error messages (the file name).

    Returns:
        The frozen drug specification in internal units.

    Raises:
        DrugError: Listing every problem with its field path.
    """
    try:
        return DrugSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise DrugError(
            source,
            validation_problems(exc, DrugSpec, hide_tags=True, input_types=("literal_error",)),
        ) from None


_CACHE: dict[tuple[str, int], DrugSpec] = {}


def load_drug(name_or_path: str | Path) -> DrugSpec:
    """Load a shipped drug by name (``"trastuzumab"``) or a user drug file by path.

    Args:
        name_or_path: A name of :func:`available_drugs`, or a path to a TOML drug file.

    Returns:
        The validated drug (cached per file and modification time).

    Raises:
        DrugError: If the file is missing, is not TOML, or fails validation; the message names
            the file and each bad field.
    """
    try:
        p = library.locate("drugs", name_or_path)
        key = (str(p.resolve()), p.stat().st_mtime_ns)
        if key in _CACHE:
            return _CACHE[key]
        data = library.read_toml(p)
    except library.LibraryError as exc:
        raise DrugError(exc.source, [("(file)", exc.problem)]) from None
    spec = drug_from_dict(data, source=str(p))
    spec._path = p
    _CACHE[key] = spec
    return spec


def available_drugs() -> list[str]:
    """Names of the shipped drug files, sorted."""
    return library.available("drugs")


def provenance(name_or_path: str | Path) -> list[dict[str, Any]]:
    """Every sourced value of a drug file, for reports.

    Args:
        name_or_path: A shipped drug name or a path.

    Returns:
        One dictionary per parameter or label value: ``path`` (dotted field), ``value`` and
        ``unit`` as written in the file, ``source``, ``confidence`` and ``note``.
    """
    spec = load_drug(name_or_path)
    assert spec.path is not None
    return [
        {
            "path": path,
            "value": v["value"],
            "unit": v.get("unit", ""),
            "source": v["source"],
            "confidence": v.get("confidence", ""),
            "note": v.get("note", ""),
        }
        for path, v in library.leaves(library.read_toml(spec.path))
        if library.is_quantity_table(v) and "source" in v
    ]
