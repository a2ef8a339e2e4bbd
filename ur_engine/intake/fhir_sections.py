"""The sections of a FHIR stay's record — coverage, diagnoses, procedures, observations, treatments — each
read from the resources linked to the stay, in any code system; what cannot be read becomes a data notice.

``Sections`` is mixed into ``fhir.Source``, whose ``index`` (references) and ``reads`` (resources by type) it uses.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING, cast

from ur_engine import schemas
from ur_engine.intake import fhir_codes as codes
from ur_engine.intake.fhir_raw import item_encounters
from ur_engine.intake.fhir_model import (
    Deferred,
    Index,
    Read,
    cancelled,
    codings,
    day,
    notice,
    number,
    pick,
    when,
)

if TYPE_CHECKING:  # the R4B classes a Read's model is, by its rtype: named for the type checker only
    from fhir.resources.R4B.claim import Claim
    from fhir.resources.R4B.codeableconcept import CodeableConcept
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.coverage import Coverage
    from fhir.resources.R4B.encounter import Encounter
    from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefit
    from fhir.resources.R4B.medicationadministration import MedicationAdministration
    from fhir.resources.R4B.observation import Observation, ObservationComponent
    from fhir.resources.R4B.organization import Organization
    from fhir.resources.R4B.procedure import Procedure

_OBSERVATION = schemas.schema("admission")["properties"]["observations"]["items"]["properties"]
LOINC_CODE = re.compile(_OBSERVATION["code"]["pattern"])
# The record carries a comparator or a non-LOINC system only once the contract has the field for it; until
# then such an observation is set aside with a notice rather than read as an exact LOINC value.
KEEPS_COMPARATOR, KEEPS_SYSTEM = "comparator" in _OBSERVATION, "system" in _OBSERVATION
SNOMED = "http://snomed.info/sct"
IV_ROUTE = "47625008"  # SNOMED CT: intravenous route


class Stay:
    """A stay being built: the resource it stands on (an Encounter or a PAS Claim) and what belongs to it."""

    def __init__(self, head: Read, file: str, line: int):
        self.head, self.file, self.line = head, file, line
        self.encounters: list[Read] = [head] if head.rtype == "Encounter" else []
        self.linked: dict[str, list[Read]] = defaultdict(list)
        self.notices: list[dict] = []
        self.claim: Read | None = None  # the PAS request, when the stay is asked for by one

    def note(self, what, where: str, why: str) -> None:
        self.notices.append(notice(what, where, why))


class Sections:
    index: Index
    reads: dict[str, list[tuple[Read, str, int]]]

    def _coverage(self, stay: Stay, patient: Read | None, claim: Read | None, arrival: str | None, out: dict) -> list:
        """Fill ``out`` with the line of business; the resources it came from."""
        on = arrival[:10] if arrival else None
        candidates: list[Read] = []
        if claim is not None:  # PAS: the focal insurance of the request
            for ins in sorted(cast("Claim", claim.model).insurance or [], key=lambda i: not i.focal):
                c = self.index.resolve(ins.coverage, claim, "Coverage")
                if c is not None:
                    candidates.append(c)
        if not candidates:
            def current(c: Read) -> bool:
                period = cast("Coverage", c.model).period
                start, end = (day(period.start), day(period.end)) if period else (None, None)
                return on is None or ((start is None or str(start) <= on) and (end is None or on <= str(end)))
            mine = [r for r in self._grouped()[0].get(id(patient.model) if patient else None, []) if current(r)]
            # The primary coverage (lowest Coverage.order) is the payer under review.
            def order(r: Read) -> int:
                found = cast("Coverage", r.model).order
                return found if found is not None else 1 << 30
            candidates = sorted(mine, key=order)
        for c in candidates[:1]:
            lob = self._line_of_business(c)
            if lob:
                out["line_of_business"] = lob
                plan = next((k.value for k in cast("Coverage", c.model).class_fhir or []
                             if any(x.code == "plan" for x in codings(k.type))), None)
                if plan:
                    out["plan"] = plan
                return candidates  # the others' notices too: a value set aside may have changed the choice
            # Unknown, not commercial: a Medicare Advantage plan under a payer's own code would otherwise escape
            # the Medicare rules unseen. The review pends, asking for it.
            stay.note(None, f"{c.label}.type", "no line of business in the Coverage's type, plan or payer: "
                      "the line of business is unknown")
            return candidates
        # Claims and benefit statements of the stay (Synthea writes no Coverage) name the payer.
        billed = self._grouped()[1]
        for rtype in ("ExplanationOfBenefit", "Claim"):
            for r in (r for e in stay.encounters for r in billed.get(id(e), ()) if r.rtype == rtype
                      and r.readable):
                for ins in r.model.insurance or []:
                    c = self.index.resolve(ins.coverage, r, "Coverage")
                    lob = self._line_of_business(c) if c else codes.by_name(getattr(ins.coverage, "display", None))
                    if lob:
                        out["line_of_business"] = lob
                        return [r]
        # No payer named anywhere: the line of business stays unknown and the review pends for it, rather than
        # being judged as commercial (a Medicare stay would then escape the two-midnight rule unseen).
        stay.note(None, (patient or stay.head).label, "no Coverage for the stay: the line of business is unknown")
        return []

    def _grouped(self) -> tuple[dict, dict]:
        """Coverages by their patient, and Claims and ExplanationOfBenefits by the encounters their items name
        (worked out once: a large export has a Claim for every encounter)."""
        if getattr(self, "_groups", None) is None:
            by_patient: dict = defaultdict(list)
            for r, _, _ in self.reads["Coverage"]:
                p = self.index.resolve(cast("Coverage", r.model).beneficiary, r, "Patient")
                if p is not None:
                    by_patient[id(p.model)].append(r)
            by_encounter: dict = defaultdict(list)
            for rtype in ("ExplanationOfBenefit", "Claim"):
                for r, _, _ in self.reads[rtype]:
                    named = item_encounters(r.raw) if isinstance(r, Deferred) else None
                    if named is not None:  # the raw references: a bill is read only if a stay's coverage asks
                        found = [self.index.resolve_text(text, r, "Encounter", read=False) for text in named]
                    elif r.readable:
                        found = [self.index.resolve(ref, r, "Encounter")
                                 for item in cast("Claim | ExplanationOfBenefit", r.model).item or []
                                 for ref in item.encounter or []]
                    else:
                        continue
                    for e in found:  # by the Encounter's Read: a visit's stays unread
                        if e is not None and r not in by_encounter[id(e)]:  # by identity
                            by_encounter[id(e)].append(r)
            self._groups = (by_patient, by_encounter)
        return self._groups

    def _line_of_business(self, c: Read) -> str | None:
        cov = cast("Coverage", c.model)
        for coding in codings(cov.type):
            code = str(coding.code or "")
            if code in codes.LINES_OF_BUSINESS:
                return code
            if coding.system in codes.SOPT and codes.sopt(code):
                return codes.sopt(code)
        names = [cov.type.text if cov.type else None,
                 *(x.display for x in codings(cov.type)),
                 *(k.value for k in cov.class_fhir or []), *(k.name for k in cov.class_fhir or [])]
        for payor in cov.payor or []:
            org = self.index.resolve(payor, c, "Organization")
            names += [payor.display, cast("Organization", org.model).name if org else None]
        return next((lob for lob in map(codes.by_name, names) if lob), None)

    # --- sections ----------------------------------------------------------------------------------------

    def _diagnoses(self, stay: Stay, conditions: list[Read], claim: Read | None) -> list | None:
        rank: dict[int, int] = {}
        for enc in stay.encounters[:1]:
            for d in cast("Encounter", enc.model).diagnosis or []:
                c = self.index.resolve(d.condition, enc, "Condition")
                if c is not None and d.rank is not None:
                    rank[id(c.model)] = d.rank
        concepts: list[tuple[CodeableConcept | None, str, bool]] = []  # (concept, where, principal)
        if claim is not None:
            for dx in cast("Claim", claim.model).diagnosis or []:
                c = self.index.resolve(dx.diagnosisReference, claim, "Condition")
                if c is not None and dx.sequence is not None:
                    rank.setdefault(id(c.model), dx.sequence)
                if dx.diagnosisCodeableConcept is not None:
                    concepts.append((dx.diagnosisCodeableConcept, f"{claim.label}.diagnosis",
                                     dx.sequence == 1))
        concepts = [(cast("Condition", c.model).code, f"{c.label}.code", rank.get(id(c.model)) == 1)
                    for c in conditions] + concepts
        out, lost = [], 0
        for concept, where, principal in concepts:
            entry = self._code(stay, concept, where, codes.DIAGNOSIS_PREFERENCE)
            if entry is None:
                lost += 1
                continue
            entry["principal"] = principal
            out.append(entry)
        out.sort(key=lambda d: not d["principal"])  # the principal diagnosis first, then source order
        return _section(out, lost)

    def _code(self, stay: Stay, concept, where: str, preference) -> dict | None:
        """``{"code", "system", "display"}`` of a concept, in any code system; None (with a notice) when it has
        no usable coding."""
        found = pick(concept, preference)
        if found is None:
            stay.note(getattr(concept, "text", None), where, "no coding with a system and a code")
            return None
        system, code, display = found
        system = codes.hcpcs_level(system, code)
        if system == "icd10cm" and not codes.ICD10CM_CODE.match(code):
            stay.note(code, where, "not an ICD-10-CM code")
            return None
        entry = {"code": code, "system": system}
        if display:
            entry["display"] = display
        return entry

    def _procedures(self, stay: Stay, procedures: list[Read], claim: Read | None) -> list | None:
        out, lost = [], 0
        for p in procedures:
            done = cast("Procedure", p.model)
            entry = self._code(stay, done.code, f"{p.label}.code", codes.PROCEDURE_PREFERENCE)
            if entry is None:
                lost += 1
                continue
            if done.status in codes.PROCEDURE_STATUS:
                entry["status"] = codes.PROCEDURE_STATUS[done.status]
            period = done.performedPeriod
            t = when(done.performedDateTime) or when(period.start if period else None)
            if t:
                entry["time"] = t
            out.append(entry)
        claim_label = claim.label if claim else ""  # the items are the claim's: none without one
        for n, item in enumerate(cast("Claim", claim.model).item or [] if claim else []):
            # PAS: the services the request asks for are planned procedures; one it cancels is not asked for.
            if cancelled(item):
                stay.note(next((c.code for c in codings(item.productOrService)), None),
                          f"{claim_label}.item[{n}]", "cancelled by the request: not a planned procedure")
                continue
            entry = self._code(stay, item.productOrService, f"{claim_label}.item[{n}].productOrService",
                               codes.PROCEDURE_PREFERENCE)
            if entry is None:
                lost += 1
                continue
            entry["status"] = "planned"
            t = when(item.servicedDate) or when(item.servicedPeriod.start if item.servicedPeriod else None)
            if t:
                entry["time"] = t
            out.append(entry)
        return _section(out, lost)

    def _observations(self, stay: Stay, observations: list[Read], claim: Read | None) -> list | None:
        out, lost = [], 0
        for o in observations:
            m = cast("Observation", o.model)
            t = when(m.effectiveDateTime) or when(m.effectiveInstant) or \
                when(m.effectivePeriod.start if m.effectivePeriod else None)
            if t is None and when(m.issued):
                t = when(m.issued)
                stay.note(t, f"{o.label}.issued", "no effective time: the time it was issued is used")
            parts: list[tuple[Observation | ObservationComponent, str]] = [(m, o.label)]
            parts += [(c, f"{o.label}.component[{i}]") for i, c in enumerate(m.component or [])]
            got = 0
            for part, where in parts:
                entry = self._observation(stay, part, where, t, is_panel=part is m and bool(m.component))
                if entry is not None:
                    out.append(entry)
                    got += 1
            lost += not got
        return _section(out, lost)

    def _observation(self, stay: Stay, part: Observation | ObservationComponent, where: str, t: str | None,
                     is_panel: bool) -> dict | None:
        q = part.valueQuantity
        if q is None or number(q.value) is None:
            if not is_panel:
                concept = part.valueCodeableConcept  # the first value[x] looked at, and the only one with codings
                shown = (concept.text or next((c.display or c.code for c in codings(concept)), None)
                         if concept is not None else
                         next((v for v in (part.valueString, part.valueBoolean, part.valueInteger) if v is not None),
                              None))
                stay.note(shown, f"{where}.value[x]", "not a numeric value")
            return None
        found = pick(part.code, ("loinc",))
        if found is None:
            stay.note(None, f"{where}.code", "no coding with a system and a code")
            return None
        system, code, _ = found
        if (system != "loinc" or not LOINC_CODE.match(code)) and (not KEEPS_SYSTEM or system == "loinc"):
            stay.note(f"{system}|{code}", f"{where}.code", "not a LOINC code")
            return None
        if t is None:
            stay.note(None, where, "no effective time with a UTC offset")
            return None
        entry = {"code": code, "value": number(q.value), "time": t}
        unit = q.code or q.unit
        if unit:
            entry["unit"] = unit  # as written: units are converted after intake
        if system != "loinc":
            entry["system"] = system
        if q.comparator:
            if not KEEPS_COMPARATOR:
                stay.note(f"{q.comparator}{number(q.value)}", f"{where}.valueQuantity.comparator",
                          "a value with a comparator is not an exact value")
                return None
            entry["comparator"] = q.comparator
        return entry

    def _treatments(self, stay: Stay, given: list[Read], claim: Read | None) -> list:
        out = []
        for r in given:
            m = cast("MedicationAdministration", r.model)
            route = m.dosage.route if m.dosage else None
            if not any(c.system == SNOMED and c.code == IV_ROUTE for c in codings(route)):
                continue  # given, but not a treatment type the record names
            t = {"type": "iv_medication"}
            start = when(m.effectiveDateTime) or when(m.effectivePeriod.start if m.effectivePeriod else None)
            end = when(m.effectivePeriod.end if m.effectivePeriod else None)
            if start:
                t["start"] = start
            if end:
                t["end"] = end
            out.append(t)
        return out


def _section(entries: list, lost: int) -> list | None:
    """A section emptied because every entry was unreadable is unknown (absent), not empty."""
    return None if lost and not entries else entries
