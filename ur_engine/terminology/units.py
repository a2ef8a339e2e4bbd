"""Units as laboratory and monitoring systems write them, read as UCUM, and converted through UCUM.

Real extracts send ``K/uL`` for ``10*3/uL``, ``mm Hg`` for ``mm[Hg]``, ``bpm`` for ``/min``, ``units`` for pH, or
nothing at all. ``ucum`` turns such a text into the UCUM code it stands for; ``factor`` gives the exact
(scale, offset) between two commensurable UCUM units, worked out by a maintained UCUM implementation (ucumvert,
over pint) once per pair. Conversions that are not dimensional — mg/dL of glucose to mmol/L needs its molar mass —
are not UCUM's to make: the fact dictionary states those.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

# What real systems write → UCUM. Keys are compared after trimming, with runs of spaces squeezed; the table is
# case-sensitive where UCUM is (mg vs Mg), so both spellings seen in extracts are listed.
ALIASES: dict[str, str] = {
    # counts per volume: thousands per microlitre (white cells, platelets)
    "K/uL": "10*3/uL", "k/uL": "10*3/uL", "K/µL": "10*3/uL", "10^3/uL": "10*3/uL", "10E3/uL": "10*3/uL",
    "x10E3/uL": "10*3/uL", "x10^3/uL": "10*3/uL", "10x3/uL": "10*3/uL", "thou/uL": "10*3/uL",
    "THOU/uL": "10*3/uL", "10^3/mm3": "10*3/uL", "K/mm3": "10*3/uL", "10*3/mm3": "10*3/uL",
    "10^9/L": "10*9/L", "x10E9/L": "10*9/L", "x10^9/L": "10*9/L", "G/L": "10*9/L",
    # pressure, rate, temperature
    "mm Hg": "mm[Hg]", "mmHg": "mm[Hg]", "mm hg": "mm[Hg]", "mmhg": "mm[Hg]", "MMHG": "mm[Hg]",
    "bpm": "/min", "BPM": "/min", "beats/min": "/min", "breaths/min": "/min", "/min.": "/min",
    "{beats}/min": "/min", "{breaths}/min": "/min", "beats per minute": "/min", "breaths per minute": "/min",
    "deg F": "[degF]", "degF": "[degF]", "°F": "[degF]", "F": "[degF]", "Deg F": "[degF]",
    "deg C": "Cel", "degC": "Cel", "°C": "Cel", "C": "Cel", "Deg C": "Cel", "cel": "Cel",
    # chemistry
    "mEq/L": "meq/L", "MEQ/L": "meq/L", "mmol/l": "mmol/L", "MMOL/L": "mmol/L", "mg/dl": "mg/dL",
    "MG/DL": "mg/dL", "g/dl": "g/dL", "G/DL": "g/dL", "ng/ml": "ng/mL", "pg/ml": "pg/mL", "ng/l": "ng/L",
    "umol/l": "umol/L", "µmol/L": "umol/L", "IU/L": "[IU]/L", "U/L": "U/L",
    "percent": "%", "pct": "%",
}
# Texts that name no unit, or a unit only a pH can have: read as the fact's own unit when it is one of these.
UNITLESS = {"", "units", "unit", "pH", "[pH]", "NA", "N/A", "none", "{none}", "1"}
_SPACES = re.compile(r"\s+")


def ucum(text: str | None, canonical: str) -> str | None:
    """The UCUM code ``text`` stands for when the fact it measures is in ``canonical``; None when blank.

    A blank unit, or one of the unit-free words systems send (``units`` for a pH), is the fact's own unit only
    when that unit is itself unit-free (``[pH]``); otherwise it stays None and the caller decides.
    """
    if text is None:
        return None
    cleaned = _SPACES.sub(" ", text.strip())
    if cleaned in UNITLESS:
        return canonical if canonical in ("[pH]", "1") and cleaned != "" else None
    return ALIASES.get(cleaned, cleaned)


@cache
def _registry() -> Any:
    # Loading the UCUM grammar and pint's registry takes ~0.5 s: only when a unit needs converting.
    from ucumvert import PintUcumRegistry

    return PintUcumRegistry()


# Unit pairs whose factor is kept: the units come from the input, and a batch of free-text units (a unit with its
# reference range, say) would otherwise keep one entry per distinct text however long it runs.
UNITS_KEPT = 1024


@lru_cache(maxsize=UNITS_KEPT)
def factor(source: str, target: str) -> tuple[float, float] | None:
    """(scale, offset) with ``target = source × scale + offset``, or None when UCUM cannot convert them."""
    if source == target:
        return (1.0, 0.0)
    try:
        reg = _registry()
        a, b = reg.from_ucum(source), reg.from_ucum(target)
        zero = reg.Quantity(0.0, a).to(b).magnitude
        one = reg.Quantity(1.0, a).to(b).magnitude
    except Exception:  # any parse or dimensionality failure: not convertible, which the caller reports
        return None
    # pint works in binary floating point: 1.7999999999999972 is 1.8. Twelve significant digits are exact
    # for every factor UCUM defines between the units of clinical measurement.
    return (float(f"{one - zero:.12g}"), float(f"{zero:.12g}"))
