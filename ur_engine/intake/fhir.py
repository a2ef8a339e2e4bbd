"""FHIR R4 resources → admission records, one per Encounter, from the resources that point to it.

Pure mapping, no files: ``inputs`` reads a Bulk Data export and feeds each resource to ``Export.add``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date

from ur_engine import schemas
from ur_engine.errors import RecordError, RecordErrors

# The resource types a record is built from; a linked type missing from the export leaves its section out.
TYPES = ("Patient", "Coverage", "Encounter", "Condition", "Observation", "Procedure", "MedicationAdministration")
SECTIONS = {"Condition": "diagnoses", "Observation": "observations", "Procedure": "procedures",
            "MedicationAdministration": "treatments"}

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
IV_ROUTE = "47625008"  # SNOMED CT: intravenous route
PROCEDURE_SYSTEMS = {
    "http://www.ama-assn.org/go/cpt": "cpt", "urn:oid:2.16.840.1.113883.6.12": "cpt",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs",
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs", "urn:oid:2.16.840.1.113883.6.285": "hcpcs",
    "http://www.cms.gov/Medicare/Coding/ICD10": "icd10pcs", "urn:oid:2.16.840.1.113883.6.4": "icd10pcs",
}
# Encounter.class (v3 ActCode) → requested level. An emergency, ambulatory or short-stay encounter under review
# is a request to keep the patient in the hospital, which starts as observation.
CLASS_LEVELS = {"IMP": "inpatient", "ACUTE": "inpatient", "OBSENC": "observation", "EMER": "observation",
                "AMB": "observation", "SS": "observation"}
ADMIT_SOURCES = {"emd": "emergency", "gp": "physician_referral", "mp": "physician_referral",
                 "hosp-trans": "transfer", "nursing": "transfer", "psych": "transfer", "rehab": "transfer",
                 "outp": "clinic", "born": "other", "other": "other"}
PROCEDURE_STATUS = {"preparation": "planned", "in-progress": "planned", "on-hold": "planned",
                    "completed": "completed", "not-done": "cancelled", "stopped": "cancelled"}
LINES_OF_BUSINESS = ("medicare", "medicare_advantage", "medicaid", "commercial")
SOPT = ("https://nahdo.org/sopt", "urn:oid:2.16.840.1.113883.3.221.5")  # Source of Payment Typology
EXT = "https://ur-engine.org/fhir/StructureDefinition/"
EXTENSIONS = {EXT + "requested-level": ("requested_level", "valueCode"),
              EXT + "expected-midnights": ("expected_midnights", "valueInteger")}
VOID = {"entered-in-error", "cancelled"}
CONDITION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
REFUTED = {(CONDITION_STATUS, "entered-in-error"), (CONDITION_STATUS, "refuted")}


def _pattern(*keys) -> re.Pattern:
    node = schemas.schema("admission")
    for key in keys:
        node = node[key]
    return re.compile(node["pattern"])


# Codes and times are checked against the contract's own patterns, so a resource that cannot fit the record is
# left out here, by name, rather than failing the whole stay later at an index the submitter never wrote.
TIME = _pattern("$defs", "time")
ICD = _pattern("properties", "diagnoses", "items", "properties", "code")
LOINC_CODE = _pattern("properties", "observations", "items", "properties", "code")


def _time(value) -> str | None:
    return value if isinstance(value, str) and TIME.match(value) else None


def _ref(value, rtype: str) -> str | None:
    """The id in ``{"reference": "Encounter/42"}`` (relative or absolute URL) when it names ``rtype``."""
    ref = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(ref, str):
        return None
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == rtype else None


def _codings(concept) -> list[dict]:
    if isinstance(concept, list):  # a repeating CodeableConcept (R5 Encounter.class)
        return [c for x in concept for c in _codings(x)]
    if not isinstance(concept, dict):
        return []
    if "coding" in concept:
        return [c for c in concept["coding"] if isinstance(c, dict)]
    return [concept] if "code" in concept else []  # a bare Coding (R4 Encounter.class)


def _code(concept, systems) -> tuple[str, str] | None:
    for c in _codings(concept):
        if c.get("system") in systems and isinstance(c.get("code"), str):
            return c["system"], c["code"]
    return None


def _line_of_business(coverage: dict) -> str | None:
    for c in _codings(coverage.get("type")):
        code = str(c.get("code", ""))
        if code in LINES_OF_BUSINESS:
            return code
        if c.get("system") in SOPT:
            # SOPT: 1 Medicare (11 Medicare managed care = Medicare Advantage; 14 dual-eligible organisations
            # are left to the submitter), 2 Medicaid, 5 private insurance, 6 Blue Cross/Blue Shield.
            if code.startswith("11"):
                return "medicare_advantage"
            if code.startswith("1") and not code.startswith("14"):
                return "medicare"
            if code.startswith("2"):
                return "medicaid"
            if code[:1] in ("5", "6"):
                return "commercial"
    return None


def _age(birth: str, arrival: str) -> int | None:
    try:
        born, on = date.fromisoformat(birth), date.fromisoformat(arrival[:10])
    except (TypeError, ValueError):
        return None
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


class Export:
    """One Bulk Data export: ``add`` every resource, then ``records()`` yields one record per Encounter.

    Everything is held until ``records()``: memory grows with the export (a compact entry per resource).
    """

    def __init__(self, types: set[str]):
        self.sections = [SECTIONS[t] for t in SECTIONS if t in types]
        self.patients: dict[str, dict] = {}
        self.coverages: dict[str | None, list[dict]] = defaultdict(list)
        self.encounters: dict[str, tuple[str, int, dict]] = {}
        # encounter id as referenced → section → [(resource id, entry)]; files may come in any order
        self.linked: dict[str | None, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        self.conditions: dict[str, dict] = {}  # for Encounter.diagnosis references
        self.ignored: Counter[str] = Counter()
        self.orphans = 0

    def add(self, resource: dict, file: str, line: int) -> RecordError | None:
        """Take one resource; an error when it is an Encounter that cannot be keyed (no id, or a repeated one)."""
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if rtype not in TYPES:
            self.ignored[f"{rtype}: not used"] += 1
            return None
        verification = _code(resource.get("verificationStatus"), (CONDITION_STATUS,))
        void = resource.get("status") if resource.get("status") in VOID else (verification or ("", ""))[1]
        if void in VOID or verification in REFUTED:
            self.ignored[f"{rtype}: {void}"] += 1
            return None
        if rtype == "Patient":
            self.patients[rid] = resource
        elif rtype == "Coverage":
            self.coverages[_ref(resource.get("beneficiary"), "Patient")].append(resource)
        elif rtype == "Encounter":
            if not isinstance(rid, str) or not rid:
                return RecordError("Encounter has no id", code="UR120", path="$.id", file=file, line=line)
            if rid in self.encounters:
                first = self.encounters[rid]
                return RecordError(f"Encounter/{rid} appears twice (first at {first[0]}:{first[1]})",
                                   code="UR120", path="$.id", file=file, line=line)
            self.encounters[rid] = (file, line, resource)
        else:
            entries = getattr(self, f"_{rtype.lower()}")(resource)
            if entries:
                if rtype == "Condition" and isinstance(rid, str):
                    self.conditions[rid] = entries[0]
                enc = _ref(resource.get("encounter") or resource.get("context"), "Encounter")
                self.linked[enc][SECTIONS[rtype]].extend((rid, e) for e in entries)
        return None

    def _condition(self, res: dict) -> list | None:
        found = _code(res.get("code"), (ICD10CM,))
        if not found or not ICD.match(found[1]):
            self.ignored["Condition: no ICD-10-CM code"] += 1
            return None
        return [{"code": found[1], "system": "icd10cm"}]

    def _observation(self, res: dict) -> list | None:
        when = _time(res.get("effectiveDateTime") or res.get("effectiveInstant")
                     or (res.get("effectivePeriod") or {}).get("start"))
        out = []
        for part in [res, *(res.get("component") or [])]:  # a panel (blood pressure) holds values in components
            found, q = _code(part.get("code"), (LOINC,)), part.get("valueQuantity") or {}
            value = q.get("value")
            if found and LOINC_CODE.match(found[1]) and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                o = {"code": found[1], "value": value, "time": when}
                if q.get("code") or q.get("unit"):
                    o["unit"] = q.get("code") or q.get("unit")
                out.append(o)
        if not out:
            self.ignored["Observation: no LOINC code with a numeric valueQuantity"] += 1
            return None
        if when is None:
            self.ignored["Observation: no effective time with a UTC offset"] += 1
            return None
        return out

    def _procedure(self, res: dict) -> list | None:
        found = _code(res.get("code"), PROCEDURE_SYSTEMS)
        if not found:
            self.ignored["Procedure: no CPT, HCPCS or ICD-10-PCS code"] += 1
            return None
        p = {"code": found[1], "system": PROCEDURE_SYSTEMS[found[0]]}
        if res.get("status") in PROCEDURE_STATUS:
            p["status"] = PROCEDURE_STATUS[res["status"]]
        when = _time(res.get("performedDateTime") or (res.get("performedPeriod") or {}).get("start"))
        if when:
            p["time"] = when
        return [p]

    def _medicationadministration(self, res: dict) -> list | None:
        if res.get("status") == "not-done":
            self.ignored["MedicationAdministration: not-done"] += 1
            return None
        if _code((res.get("dosage") or {}).get("route"), (SNOMED,)) != (SNOMED, IV_ROUTE):
            return None  # given, but not a treatment type the record names
        t = {"type": "iv_medication"}
        period = res.get("effectivePeriod") or {}
        for key, value in (("start", res.get("effectiveDateTime") or period.get("start")), ("end", period.get("end"))):
            if _time(value):
                t[key] = value
        return [t]

    def records(self) -> Iterator[tuple[str, int, str, dict | None, RecordError | None]]:
        """(file, line, Encounter.id, record, error) for each Encounter, in the order they were added."""
        listed = {cid for _, _, enc in self.encounters.values() for cid in _diagnosis_refs(enc)}
        for enc, sections in self.linked.items():
            if enc in self.encounters:
                continue
            for name, entries in sections.items():
                lost = sum(1 for rid, _ in entries if name != "diagnoses" or rid not in listed)
                if lost:
                    kind = next(t for t, s in SECTIONS.items() if s == name)
                    self.ignored[f"{kind}: {'unknown' if enc else 'no'} encounter"] += lost
                    self.orphans += lost
        for eid, (file, line, enc) in self.encounters.items():
            problems: list[RecordError] = []
            record = self._record(eid, enc, problems)
            for p in problems:
                p.file, p.line = file, line
            if problems:
                yield file, line, eid, None, problems[0] if len(problems) == 1 else RecordErrors(problems)
            else:
                yield file, line, eid, record, None

    def _record(self, eid: str, enc: dict, problems: list) -> dict:
        def bad(path: str, message: str) -> None:
            problems.append(RecordError(f"Encounter/{eid}: {message}", code="UR120", path=path))

        period = enc.get("period") or {}
        start = _time(period.get("start"))
        if start is None:
            bad("$.encounter.arrival_time", f"period.start {period.get('start')!r} is not a date and time with a"
                " UTC offset")
        encounter = {"arrival_time": start}
        cls = next((c.get("code") for c in _codings(enc.get("class"))), None)
        if cls in CLASS_LEVELS:
            encounter["requested_level"] = CLASS_LEVELS[cls]
        for ext in enc.get("extension") or []:
            field, key = EXTENSIONS.get(ext.get("url"), (None, None))
            if field and key in ext:
                encounter[field] = ext[key]
        if "requested_level" not in encounter:
            bad("$.encounter.requested_level", f"class {cls!r} names no level of care (use IMP, ACUTE, OBSENC,"
                f" EMER, AMB or SS, or the extension {EXT}requested-level)")
        source = _codings((enc.get("hospitalization") or {}).get("admitSource"))
        if source and source[0].get("code") in ADMIT_SOURCES:
            encounter["admit_source"] = ADMIT_SOURCES[source[0]["code"]]
        if _time(period.get("end")):
            encounter["discharge_time"] = period["end"]
        rec = {"id": eid, "review_type": "admission", "patient": {}, "coverage": {}, "encounter": encounter}
        pid = _ref(enc.get("subject"), "Patient")
        patient = self.patients.get(pid)
        if patient is None:
            bad("$.patient", f"subject Patient/{pid} is not in the export" if pid else "no subject Patient")
        elif start:
            age = _age(patient.get("birthDate"), start)
            if age is None or age < 0:
                bad("$.patient.age", f"Patient/{pid}.birthDate {patient.get('birthDate')!r} is not a full date"
                    " on or before arrival")
            rec["patient"]["age"] = age
            if patient.get("gender") in ("female", "male", "other", "unknown"):
                rec["patient"]["sex"] = patient["gender"]
            self._coverage(pid, start[:10], rec["coverage"], bad)
        linked = self.linked.get(eid, {})
        for name in self.sections:
            rec[name] = [dict(e) for _, e in linked.get(name, ())]
        if "diagnoses" in rec:
            rec["diagnoses"] = self._diagnoses(enc, linked.get("diagnoses", []))
        if "treatments" in rec:
            # MedicationAdministration shows IV medication only: oxygen, telemetry or ventilation it does not
            # list are unknown, not absent.
            rec["incomplete"] = ["treatments"]
        return rec

    def _coverage(self, pid: str, day: str, out: dict, bad) -> None:
        def current(c: dict) -> bool:
            period = c.get("period") or {}
            return (c.get("status", "active") == "active" and str(period.get("start", ""))[:10] <= day
                    and (not period.get("end") or day <= str(period["end"])[:10]))

        # The primary coverage (lowest Coverage.order) is the payer under review; a secondary never stands in.
        found = sorted((c for c in self.coverages.get(pid, ()) if current(c)), key=lambda c: c.get("order", 1 << 30))
        if not found:
            bad("$.coverage.line_of_business", f"Patient/{pid} has no active Coverage on {day}")
            return
        lob = _line_of_business(found[0])
        if lob is None:
            codes = [c.get("code") for c in _codings(found[0].get("type"))]
            bad("$.coverage.line_of_business", f"Coverage/{found[0].get('id')}.type {codes} gives no line of "
                "business (use medicare, medicare_advantage, medicaid, commercial or a SOPT code)")
            return
        out["line_of_business"] = lob
        plan = next((c.get("value") for c in found[0].get("class") or []
                     if any(x.get("code") == "plan" for x in _codings(c.get("type")))), None)
        if isinstance(plan, str) and plan:
            out["plan"] = plan

    def _diagnoses(self, enc: dict, linked: list) -> list[dict]:
        refs = _diagnosis_refs(enc)
        mine = list(linked)
        # Conditions named by Encounter.diagnosis belong to the stay even without Condition.encounter.
        seen = {rid for rid, _ in mine}
        mine += [(cid, self.conditions[cid]) for cid in refs if cid in self.conditions and cid not in seen]
        out = [{**e, "principal": rid is not None and refs.get(rid) == 1} for rid, e in mine]
        return sorted(out, key=lambda d: not d["principal"])  # the principal diagnosis first, then export order


def _diagnosis_refs(enc: dict) -> dict[str, int | None]:
    """Condition id → rank, from Encounter.diagnosis (rank 1 is the principal diagnosis)."""
    out = {}
    for d in enc.get("diagnosis") or []:
        cid = _ref(d.get("condition"), "Condition")
        if cid:
            out[cid] = d.get("rank")
    return out
