"""The tables the FHIR mapping reads codes through: code systems, encounter classes, PAS service codes, payers.

Each table is data, named once, and documented in docs/inputs.md (FHIR section).
"""

from __future__ import annotations

import re

# Code system URI → the record's short name. A system not listed keeps its URI as its name: never dropped.
SYSTEMS = {
    "http://hl7.org/fhir/sid/icd-10-cm": "icd10cm", "urn:oid:2.16.840.1.113883.6.90": "icd10cm",
    "http://hl7.org/fhir/sid/icd-10": "icd10",  # WHO ICD-10, not the US clinical modification
    "http://hl7.org/fhir/sid/icd-9-cm": "icd9cm", "urn:oid:2.16.840.1.113883.6.103": "icd9cm",
    "http://hl7.org/fhir/sid/icd-9-cm/procedure": "icd9pcs", "urn:oid:2.16.840.1.113883.6.104": "icd9pcs",
    "http://snomed.info/sct": "snomed", "urn:oid:2.16.840.1.113883.6.96": "snomed",
    "http://www.ama-assn.org/go/cpt": "cpt", "urn:oid:2.16.840.1.113883.6.12": "cpt",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs",
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs", "urn:oid:2.16.840.1.113883.6.285": "hcpcs",
    "urn:oid:2.16.840.1.113883.6.14": "hcpcs",
    "http://www.cms.gov/Medicare/Coding/ICD10": "icd10pcs", "http://hl7.org/fhir/sid/icd-10-pcs": "icd10pcs",
    "urn:oid:2.16.840.1.113883.6.4": "icd10pcs",
    "http://loinc.org": "loinc", "urn:oid:2.16.840.1.113883.6.1": "loinc",
}
# Which coding of a concept stands for it when it has several: billing codes first, then clinical ones.
DIAGNOSIS_PREFERENCE = ("icd10cm", "icd9cm", "icd10", "snomed")
PROCEDURE_PREFERENCE = ("cpt", "hcpcs", "icd10pcs", "icd9pcs", "snomed")
ICD10CM_CODE = re.compile(r"^[A-TV-Za-tv-z][0-9][0-9A-Za-z](\.?[0-9A-Za-z]{1,4})?$")

# HCPCS Level I is CPT (five characters, the first a digit: 33510, 0001F, 0042T); Level II is a letter and four
# digits (G0154). Sources file either level under either system URI; the code's form tells which it is.
CPT_FORM = re.compile(r"^[0-9]{4}[0-9A-Z]$")
HCPCS_II_FORM = re.compile(r"^[A-Z][0-9]{4}$")


def hcpcs_level(system: str, code: str) -> str:
    """``cpt`` for a HCPCS Level I code, ``hcpcs`` for a Level II code, whichever of the two systems names it."""
    if system == "hcpcs" and CPT_FORM.match(code):
        return "cpt"
    if system == "cpt" and HCPCS_II_FORM.match(code):
        return "hcpcs"
    return system


# Encounter.class (v3 ActCode) → the level a hospital stay of that class asks for.
STAY_CLASSES = {"IMP": "inpatient", "ACUTE": "inpatient", "NONAC": "inpatient",
                "OBSENC": "observation", "SS": "observation"}
# Visits that are not hospital stays: counted as skipped, never reviewed (unless part of a stay).
VISIT_CLASSES = {"AMB": "ambulatory", "EMER": "emergency", "VR": "virtual", "HH": "home health",
                 "FLD": "field", "PRENC": "pre-admission"}

ADMIT_SOURCES = {"emd": "emergency", "gp": "physician_referral", "mp": "physician_referral",
                 "hosp-trans": "transfer", "nursing": "transfer", "psych": "transfer", "rehab": "transfer",
                 "outp": "clinic", "born": "other", "other": "other"}
# NUBC UB-04 form locator 15, Point of Origin for Admission or Visit: the codes a Da Vinci PAS Encounter's
# admitSource is bound to (X12 CL1-02). As listed in the CMS Medicare Claims Processing Manual, Chapter 25, §75.2
# (FL 15): 1 non-health-care facility (home, workplace), 2 clinic or physician's office, 4 transfer from a
# hospital, 5 from a SNF, ICF or assisted living, 6 from another health care facility, 8 court or law
# enforcement, D from a distinct unit of the same hospital, E from an ambulatory surgery center, F from hospice;
# 9 (information not available) names none.
NUBC_POINT_OF_ORIGIN = "https://www.nubc.org/CodeSystem/PointOfOrigin"
NUBC_ADMIT_SOURCES = {"1": "other", "2": "clinic", "4": "transfer", "5": "transfer", "6": "transfer", "8": "other",
                      "D": "transfer", "E": "transfer", "F": "transfer"}


def admit_source(system: str | None, code: str | None) -> str | None:
    """The record's admit source for an Encounter's ``hospitalization.admitSource`` coding: a NUBC point of origin
    by its system, else the FHIR admit-source code."""
    if code is None:
        return None
    if system == NUBC_POINT_OF_ORIGIN:
        return NUBC_ADMIT_SOURCES.get(code)
    return ADMIT_SOURCES.get(code)


PROCEDURE_STATUS = {"preparation": "planned", "in-progress": "planned", "on-hold": "planned",
                    "completed": "completed", "not-done": "cancelled", "stopped": "cancelled"}

# --- Da Vinci PAS: what the Claim asks for ------------------------------------------------------------------
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
CLAIM_ENCOUNTER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Claim.encounter"
REQUESTED_SERVICE = PAS + "extension-requestedService"
SERVICE_DATE = PAS + "extension-serviceItemRequestedServiceDate"
REQUEST_TYPE = PAS + "extension-serviceItemRequestType"
CERTIFICATION_TYPE = PAS + "extension-certificationType"
X12_CERTIFICATION_TYPE = "https://codesystem.x12.org/005010/1322"  # UM02 certification type: 3 Cancel
INFO_CANCELLED = PAS + "modifierextension-infoCancelled"  # PASClaimUpdate: an item no longer asked for
X12_REQUEST_TYPE = "https://codesystem.x12.org/005010/1525"  # UM request category: AR admission review
X12_SERVICE_TYPE = "https://codesystem.x12.org/005010/1365"  # service type code
PLACE_OF_SERVICE = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
NUBC_REVENUE = "https://www.nubc.org/CodeSystem/RevenueCodes"
# (system, code) of a PAS Claim item's codes → the level of care they ask for; the one table of docs/inputs.md
# ("Da Vinci PAS requests"). Systems are the record's short names where SYSTEMS has one (hcpcs), else the URI.
# Codes that name a service but not where it is given (a CPT procedure, a consultation) tell no level.
PAS_LEVELS = {
    (X12_REQUEST_TYPE, "AR"): "inpatient",   # Admission Review
    (X12_SERVICE_TYPE, "48"): "inpatient",   # Hospital - Inpatient
    (X12_SERVICE_TYPE, "50"): "outpatient",  # Hospital - Outpatient
    (PLACE_OF_SERVICE, "21"): "inpatient",   # Inpatient Hospital
    (PLACE_OF_SERVICE, "22"): "outpatient",  # On Campus-Outpatient Hospital
    ("hcpcs", "G0378"): "observation",       # Hospital observation service, per hour
    (NUBC_REVENUE, "0762"): "observation",   # Observation room
    (NUBC_REVENUE, "0206"): "intermediate",  # Intensive care: intermediate ICU
    (NUBC_REVENUE, "0214"): "intermediate",  # Coronary care: intermediate CCU
    **{(NUBC_REVENUE, f"02{n:02d}"): "critical" for n in range(20) if n not in (6, 14)},  # 020x ICU, 021x CCU
    **{(NUBC_REVENUE, f"01{n:02d}"): "inpatient" for n in range(70)},  # 010x-016x room and board
}
# Which of an item's codes are read for the level, most specific first: what is asked for (request type, revenue
# code, service), then its category, then where (place of service: observation is billed as outpatient).
PAS_LEVEL_ELEMENTS = ("extension[requestType]", "revenue", "productOrService", "category", "location[x]")


def pas_level(system: str | None, code: str | None) -> str | None:
    if system is None or code is None:
        return None
    return PAS_LEVELS.get((SYSTEMS.get(system, system), code))


# A PAS request for care after a hospital stay is a post-acute (discharge) review of the setting it asks for.
# Home health is named by the PAS Claim extension for home health care information (X12 278 CR6: "Information
# needed for home health care requests", its date the home health start date) or by an item's X12 service type
# 42 Home Health Care, as the guide's homecare examples (Examples.fsh, X12 005010X217 example 4) send it.
# Left out as not unambiguous: a place of service 12 Home (equipment, supplies and physician visits are given at
# home too), HCPCS G0151-G0162 (home health or hospice), and SNF, IRF or LTCH, for which the guide gives no code:
# CMS place of service 31 (SNF) and 61 (IRF) name where a service is given, a physician's visit as well as a stay.
HOME_HEALTH_INFORMATION = PAS + "extension-homeHealthCareInformation"
PAS_SETTINGS = {(X12_SERVICE_TYPE, "42"): "home_health"}  # Home Health Care
# Which of an item's codes are read for a post-acute setting: what is asked for, then its category.
PAS_SETTING_ELEMENTS = ("productOrService", "category")


def pas_setting(system: str | None, code: str | None) -> str | None:
    if system is None or code is None:
        return None
    return PAS_SETTINGS.get((SYSTEMS.get(system, system), code))


# What a request states of the patient for a post-acute review, where the PAS guide has no element for it: a
# Claim.supportingInfo whose category is one of these codes (the guide's supporting information types are an
# extensible binding). Documented in docs/inputs.md.
REVIEW_INFORMATION = "https://ur-engine.org/fhir/CodeSystem/review-information"
FINDING = "https://ur-engine.org/fhir/CodeSystem/finding"
SKILLED_NEED = "https://ur-engine.org/fhir/CodeSystem/skilled-need"


# --- Coverage → line of business ----------------------------------------------------------------------------
LINES_OF_BUSINESS = ("medicare", "medicare_advantage", "medicaid", "commercial")
SOPT = ("https://nahdo.org/sopt", "urn:oid:2.16.840.1.113883.3.221.5")  # Source of Payment Typology
# Words in a payer's, plan's or coverage type's name, most specific first.
NAMES = (
    (re.compile(r"medicare\s*advantage|medicare\s*part\s*c\b", re.IGNORECASE), "medicare_advantage"),
    (re.compile(r"medicare", re.IGNORECASE), "medicare"),
    (re.compile(r"medicaid|medi-cal", re.IGNORECASE), "medicaid"),
    (re.compile(r"private|commercial|blue\s*cross|blue\s*shield|employer", re.IGNORECASE), "commercial"),
)


def sopt(code: str) -> str | None:
    """SOPT: 1 Medicare (11 Medicare managed care = Medicare Advantage; 14 dual-eligible organisations are left
    to the submitter), 2 Medicaid, 5 private insurance, 6 Blue Cross/Blue Shield."""
    if code.startswith("11"):
        return "medicare_advantage"
    if code.startswith("1") and not code.startswith("14"):
        return "medicare"
    if code.startswith("2"):
        return "medicaid"
    if code[:1] in ("5", "6"):
        return "commercial"
    return None


def by_name(text) -> str | None:
    if not isinstance(text, str):
        return None
    return next((lob for pattern, lob in NAMES if pattern.search(text)), None)
