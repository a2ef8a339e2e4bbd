"""FHIR R4 → admission records: one per hospital stay (an inpatient, observation or short-stay Encounter, or a
Da Vinci PAS prior-authorization Claim), built from the resources that point to it.

Pure mapping, no files: ``readers`` feeds every resource of a Bundle or a Bulk Data export to ``Source.add``
and takes the stays from ``Source.records``. Resources are read through the ``fhir.resources`` models
(``fhir_model``); what a model or this mapping sets aside goes into the record's ``data_notices``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from ur_engine import schemas
from ur_engine.errors import RecordError
from ur_engine.intake import fhir_codes as codes
from ur_engine.intake import fhir_post_acute as post_acute
from ur_engine.intake.fhir_model import (
    Deferred,
    Index,
    Read,
    Unreadable,
    cancelled,
    codings,
    day,
    extension,
    notice,
    read,
    when,
)
from ur_engine.intake.fhir_raw import ENCOUNTER_ELEMENT, REQUESTED_LEVEL, item_encounters
from ur_engine.intake.fhir_raw import plain_visit as _plain_visit
from ur_engine.intake.fhir_raw import reference as _reference
from ur_engine.intake.fhir_raw import void as _void
from ur_engine.intake.fhir_sections import Sections, Stay

if TYPE_CHECKING:  # the R4B classes a Read's model is, by its rtype: named for the type checker only
    from fhir.resources.R4B.claim import Claim
    from fhir.resources.R4B.encounter import Encounter
    from fhir.resources.R4B.patient import Patient

# The resource types a record is built from; a section whose type the source lacks is left out (unknown).
TYPES = ("Patient", "Coverage", "Organization", "Encounter", "Claim", "ExplanationOfBenefit", "ServiceRequest",
         "Condition", "Observation", "Procedure", "MedicationAdministration")
SECTIONS = {"Condition": "diagnoses", "Observation": "observations", "Procedure": "procedures",
            "MedicationAdministration": "treatments"}
# What a patient's record holds one or more of for every visit: read only for the visits that are stays.
DEFERRED = {*SECTIONS, "Claim", "ExplanationOfBenefit"}
# What can be let go as it comes once the stays are settled (a Condition may still be named by a stay's diagnosis).
LET_GO = set(SECTIONS) - {"Condition"}
# What may still come once the stays are settled: nothing that makes a stay or joins one to another.
AFTER_SETTLING = {*SECTIONS, "ExplanationOfBenefit", "ServiceRequest"}
EXT = "https://ur-engine.org/fhir/StructureDefinition/"
EXPECTED_MIDNIGHTS = EXT + "expected-midnights"
CONDITION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
LEVELS = schemas.schema("admission")["$defs"]["level"]["enum"]
MAX_NOTICES = 1000


def _age(born: date | None, on: date | None) -> int | None:
    if born is None or on is None:
        return None
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


class Source(Sections):
    """One FHIR source (a Bundle, or a Bulk Data export): ``add`` every resource, then ``records()``.

    Everything is held until ``records()``: memory grows with the source.
    """

    def __init__(self, types: set[str] | None = None):
        self.types = set(types) if types is not None else set()  # resource types present (Bulk: the files)
        self.index = Index()
        self.reads: dict[str, list[tuple[Read, str, int]]] = defaultdict(list)
        self.encounter_ids: dict[str, tuple[str, int]] = {}
        self._encounter_reads: dict[str, Read] = {}
        self.ignored: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.notices: Counter[str] = Counter()
        self.orphans = 0
        self.first: str | None = None  # the type of the first resource (a PAS request Bundle starts with Claim)
        self._settled: tuple[list[Stay], dict[int, Stay]] | None = None  # the stays, and who owns each Encounter

    def add(self, resource: dict, file: str, line: int, full_url: str | None = None) -> RecordError | None:
        """Take one resource; an error when it is an Encounter that cannot be keyed (no id, or a repeated one)."""
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        if self.first is None:
            self.first = rtype
        if rtype not in TYPES:
            self.ignored[f"{rtype}: not used"] += 1
            return None
        if self._settled is not None and rtype not in AFTER_SETTLING:
            raise RuntimeError(f"a {rtype} was added after the stays were settled")  # settle's caller's mistake
        self.types.add(rtype)
        void = _void(resource)
        if void is not None:
            self.ignored[f"{rtype}: {void}"] += 1
            return None
        r: Read | Unreadable | None
        if rtype in DEFERRED or rtype == "Encounter" and _plain_visit(resource) is not None:
            # read through its model only if a stay uses it (fhir_model.Deferred)
            r = Deferred(resource, rtype, full_url)
            if self._settled is not None and rtype == "ExplanationOfBenefit" and self._bill_of_visits(
                    r, self._settled[1]):
                return None
            if self._settled is not None and rtype in LET_GO:
                visit = self.index.resolve_text(_reference(resource, rtype), None, "Encounter", read=False)
                if visit is not None and _owner_of(visit, self._settled[1]) is None:
                    self.ignored[f"{rtype}: its encounter is not a hospital stay"] += 1
                    return None
        else:
            r = read(resource, full_url or "")
            if not isinstance(r, Read):  # None only for a type without a model, and every type in TYPES has one
                self.ignored[f"{rtype}: unreadable"] += 1
                self._count(r.notices if r is not None else [])
                return None
            r.full_url = full_url
        r.seq = self._count_reads()
        if rtype == "Encounter":
            if not r.rid and full_url and full_url.startswith("urn:uuid:"):
                r.rid = full_url.removeprefix("urn:uuid:")
            if (not r.rid or r.rid in self.encounter_ids) and isinstance(r, Deferred) and not r.readable:
                self._left_unreadable(r)  # as if read on arrival: never keyed, so never an error
                return None
            if not r.rid:
                return RecordError("Encounter has no id", code="UR120", path="$.id", file=file, line=line)
            if r.rid in self.encounter_ids:
                before = self._encounter_reads[r.rid]
                if not (isinstance(before, Deferred) and not before.readable):
                    first = self.encounter_ids[r.rid]
                    return RecordError(f"Encounter/{r.rid} appears twice (first at {first[0]}:{first[1]})",
                                       code="UR120", path="$.id", file=file, line=line)
                self.reads["Encounter"] = [x for x in self.reads["Encounter"] if x[0] is not before]
                self.index.discard({id(before)})
                self._left_unreadable(before)
            self.encounter_ids[r.rid] = (file, line)
            self._encounter_reads[r.rid] = r
        self.index.add(r)
        self.reads[rtype].append((r, file, line))
        return None

    def _left_unreadable(self, r: Read) -> None:
        self.ignored[f"{r.rtype}: unreadable"] += 1
        self._count(r.notices)

    def _count_reads(self) -> int:
        return sum(len(v) for v in self.reads.values())

    def _count(self, notices: list[dict]) -> None:
        for n in notices:
            self.notices[n["why"].split(":")[0]] += 1

    # --- which resources make which stay ---------------------------------------------------------------

    def settle(self) -> None:
        """Decide which Encounters and requests make stays, once every Encounter and Claim has been added: from
        then on, an Observation, Procedure or medication of a visit is counted and let go as it comes, never
        held. A Bulk Data export gives its files type by type, Encounters before them; holding every visit's
        Observations until the end made memory grow with the whole export."""
        if self._settled is None:
            self._settled = self._encounter_stays()
            owner = self._settled[1]
            bills = {id(r) for r, _, _ in self.reads["Claim"] if self._bill_of_visits(r, owner)}
            if bills:  # a billing Claim of visits only is never asked for: let go now, not at the end
                self.reads["Claim"] = [x for x in self.reads["Claim"] if id(x[0]) not in bills]
                self.index.discard(bills)

    def _bill_of_visits(self, r: Read, owner: dict[int, Stay]) -> bool:
        """Is ``r`` a bill (a billing Claim, a benefit statement) whose items name no stay's Encounter?"""
        if not isinstance(r, Deferred) or r.read_yet or r.raw.get("use") == "preauthorization":
            return False
        named = item_encounters(r.raw)
        return named is not None and all(
            _owner_of(self.index.resolve_text(text, None, "Encounter", read=False), owner) is None for text in named)

    def _stays(self) -> list[Stay]:
        self.settle()
        assert self._settled is not None
        stays, owner = self._settled
        self._link(stays, owner)
        return sorted(stays, key=lambda s: s.head.seq)

    def _encounter_stays(self) -> tuple[list[Stay], dict[int, Stay]]:
        stays: list[Stay] = []
        owner: dict[int, Stay] = {}  # id(Encounter model) → the stay it belongs to
        visits = []
        for r, file, line in self.reads["Encounter"]:
            if not isinstance(r, Deferred) and _requested(r.model) is not None:
                stay = Stay(r, file, line)
                stays.append(stay)
                owner[id(r.model)] = stay
            else:
                visits.append((r, file, line))
        claims = [(r, f, n) for r, f, n in self.reads["Claim"] if _preauthorization(r)]
        # A PAS Claim update comes with the request it replaces (related.claim): the update is what is asked.
        replaced = {id(prior.model) for r, _, _ in claims for rel in cast("Claim", r.model).related or []
                    if (prior := self.index.resolve(rel.claim, r, "Claim")) is not None and prior is not r}
        for r, _, _ in claims:
            if id(r.model) in replaced:
                self.ignored["Claim: an earlier request its update replaces"] += 1
        claims = [c for c in claims if id(c[0].model) not in replaced]
        for r, file, line in claims:
            stay = Stay(r, file, line)
            enc = self._claim_encounter(r)
            if enc is not None:
                if id(enc.model) in owner:  # the Encounter is a stay of its own: the Claim asks about it
                    stay = owner[id(enc.model)]
                    stay.claim = r
                    continue
                stay.encounters.append(enc)
                owner[id(enc.model)] = stay
            stay.claim = r
            stays.append(stay)
        # An emergency or other visit that is part of a stay (partOf either way, or the same pre-admission
        # identifier) belongs to it: its time counts toward the stay, and its data is the stay's data.
        by_preadmission: dict[tuple[str | None, str], Stay] = {}
        for stay in stays:
            for enc in stay.encounters:
                key = _preadmission(enc.model)
                if key:
                    by_preadmission.setdefault(key, stay)
                parent = self.index.resolve(cast("Encounter", enc.model).partOf, enc, "Encounter")
                if parent is not None and id(parent.model) not in owner:
                    stay.encounters.append(parent)
                    owner[id(parent.model)] = stay
        for r, _, _ in visits:
            plain = _plain_visit(r.raw) if isinstance(r, Deferred) and not r.read_yet else None
            if plain is not None:  # a visit whose raw resource says all that is asked here
                code, part_of, key = plain
                parent = self.index.resolve_text(part_of, r, "Encounter", read=False)
            elif not r.readable or id(r.model) in owner:
                continue
            else:
                parent = self.index.resolve(cast("Encounter", r.model).partOf, r, "Encounter")
                key, code = _preadmission(r.model), _class(r.model)
            home = _owner_of(parent, owner) or (by_preadmission.get(key) if key else None)
            if home is not None and r.readable:
                home.encounters.append(r)
                owner[id(r.model)] = home
                continue
            kind = codes.VISIT_CLASSES.get(code) if code is not None else None
            self.skipped[f"Encounter class {code}: {kind + ' visit' if kind else 'no hospital level'}, not a "
                         "hospital stay"] += 1
        return stays, owner

    def _claim_encounter(self, claim: Read) -> Read | None:
        ref = extension(claim.model, codes.CLAIM_ENCOUNTER)
        found = self.index.resolve(ref, claim, "Encounter") if ref is not None else None
        for item in cast("Claim", claim.model).item or []:
            for ref in item.encounter or []:
                found = found or self.index.resolve(ref, claim, "Encounter")
        return found

    def _link(self, stays: list[Stay], owner: dict[int, Stay]) -> None:
        named: dict[int, Stay] = {}  # Conditions an Encounter.diagnosis or a PAS Claim names, by their Read
        for stay in stays:
            for enc in stay.encounters:
                for d in cast("Encounter", enc.model).diagnosis or []:
                    c = self.index.resolve(d.condition, enc, "Condition")
                    if c is not None:
                        named.setdefault(id(c), stay)
            claim = stay.claim
            if claim is not None:
                for dx in cast("Claim", claim.model).diagnosis or []:
                    c = self.index.resolve(dx.diagnosisReference, claim, "Condition")
                    if c is not None:
                        named.setdefault(id(c), stay)
        # A PAS request Bundle holds one request: its clinical resources linked to no Encounter are the
        # request's supporting data.
        pas = [s for s in stays if s.claim is not None] if self.first == "Claim" else []
        for rtype in SECTIONS:
            element = ENCOUNTER_ELEMENT.get(rtype, "encounter")
            for r, _, _ in self.reads[rtype]:
                if isinstance(r, Deferred):
                    # A PAS request is small, and its resources of no stay are the request's: an unreadable
                    # visit must not claim them (read=True resolves it to nothing, as if never given).
                    visit = self.index.resolve_text(_reference(r.raw, rtype), r, "Encounter", read=bool(pas))
                    if visit is not None and _owner_of(visit, owner) is None and id(r) not in named:
                        # A visit that is not a stay: what belongs to it is left out, unread.
                        self.ignored[f"{rtype}: its encounter is not a hospital stay"] += 1
                        continue
                    if not r.readable:
                        continue  # counted with the others read and found unreadable (records)
                ref = getattr(r.model, element)
                visit = self.index.resolve(ref, r, "Encounter")
                home = owner.get(id(visit.model)) if visit is not None else None
                home = home or named.get(id(r))
                if home is None and visit is None and len(pas) == 1:
                    home = pas[0]
                if home is not None:
                    home.linked[rtype].append(r)
                elif visit is not None:
                    self.ignored[f"{rtype}: its encounter is not a hospital stay"] += 1
                else:
                    self.ignored[f"{rtype}: {'unknown' if ref is not None else 'no'} encounter"] += 1
                    self.orphans += 1

    # --- records ---------------------------------------------------------------------------------------

    def records(self) -> Iterator[tuple[str, int, str | None, dict | None, RecordError | None]]:
        """(file, line, record id, record, error) for each stay, in the order their resources came."""
        for stay in self._stays():
            rid = stay.encounters[0].rid if stay.encounters else stay.head.rid
            record, error = self._record(stay, rid)
            if error is not None:
                error.file, error.line = stay.file, stay.line
            yield stay.file, stay.line, rid, record, error
        for rtype in (*DEFERRED, "Encounter"):  # those a stay asked for and the model could not read: counted
            for r, _, _ in self.reads[rtype]:
                if isinstance(r, Deferred) and r.read_yet and not r.readable:
                    self._left_unreadable(r)

    def _record(self, stay: Stay, rid: str | None) -> tuple[dict | None, RecordError | None]:
        head = stay.encounters[0] if stay.encounters else stay.head
        claim = stay.claim
        label = head.label
        if not rid:
            return None, RecordError(f"{label} has no id", code="UR120", path="$.id")
        patient_ref = (cast("Encounter", head.model).subject if head.rtype == "Encounter"
                       else cast("Claim", head.model).patient)
        patient = self.index.resolve(patient_ref, head, "Patient")
        claimed = cast("Claim", claim.model) if claim is not None else None
        if patient is None and claimed is not None:
            patient = self.index.resolve(claimed.patient, claim, "Patient")
        used = [*stay.encounters, *([claim] if claim else [])]
        encounter, setting = self._encounter(stay, claim)
        rec: dict = {"id": rid, "review_type": "admission", "patient": {}, "coverage": {}, "encounter": encounter}
        if claim is not None:
            if setting is not None:  # a request for care after a hospital stay: a post-acute review of the setting
                rec["review_type"] = "discharge"
                rec["discharge_plan"] = post_acute.discharge_plan(stay, claim, setting)
            function, findings = post_acute.stated(stay, claim)
            if function:
                rec["function"] = function
            if findings:
                rec["findings"] = findings
        arrival = encounter.get("arrival_time")
        if patient is None:
            named = self.index.named(patient_ref)
            stay.note(named, f"{label}.{'subject' if head.rtype == 'Encounter' else 'patient'}",
                      "the patient is not in the source: age and sex are unknown")
        else:
            used.append(patient)
            self._patient(stay, patient, arrival, rec["patient"])
        used += self._coverage(stay, patient, claim, arrival, rec["coverage"])
        asks = {"Condition": bool(claimed and claimed.diagnosis), "Procedure": bool(claimed and claimed.item)}
        for rtype, section in SECTIONS.items():
            if rtype not in self.types and not asks.get(rtype):
                continue
            entries = getattr(self, f"_{section}")(stay, stay.linked.get(rtype, []), claim)
            if entries is not None:
                rec[section] = entries
            used += stay.linked.get(rtype, [])
        if "treatments" in rec:
            # MedicationAdministration shows IV medication only: oxygen, telemetry or ventilation it does not
            # list are unknown, not absent.
            rec["incomplete"] = ["treatments"]
        notices = [n for r in used for n in r.notices] + stay.notices
        if notices:
            seen: set[tuple[Any, str, str]] = set()
            unique = []
            for n in notices:
                k = (n["what"], n["where"], n["why"])
                if k not in seen:
                    seen.add(k)
                    unique.append(n)
            self._count(unique)
            if len(unique) > MAX_NOTICES:  # a stay of thousands of unreadable values still fits the contract
                more = len(unique) - MAX_NOTICES + 1
                unique = [*unique[:MAX_NOTICES - 1],
                          notice(more, label, f"{more} more values set aside; stream.notices counts them all")]
            rec["data_notices"] = unique
        return rec, None

    def _patient(self, stay: Stay, patient: Read, arrival: str | None, out: dict) -> None:
        person = cast("Patient", patient.model)
        born = day(person.birthDate)
        if born is None:
            stay.note(person.birthDate, f"{patient.label}.birthDate",
                      "no full birth date: the age is unknown")
        elif arrival:
            age = _age(born, date.fromisoformat(arrival[:10]))
            if age is None or age < 0:
                stay.note(str(born), f"{patient.label}.birthDate", "after arrival: the age is unknown")
            else:
                out["age"] = age
        if person.gender in ("female", "male", "other", "unknown"):
            out["sex"] = person.gender

    def _encounter(self, stay: Stay, claim: Read | None) -> tuple[dict, str | None]:
        """The record's ``encounter``, and the post-acute setting a PAS request asks for instead of a level."""
        out: dict = {}
        level = self._level(stay, claim)
        setting = post_acute.requested_setting(claim) if claim is not None and not level else None
        if level:
            out["requested_level"] = level
        elif claim is not None and setting is None:
            stay.note(None, f"{claim.label}.item", "no requested level of care: neither the Encounter's class nor the "
                      "items' request type, revenue code, service, category or place of service names one; the "
                      "review pends until it is given")
        starts: list[tuple[datetime, str]] = []
        for enc in stay.encounters:
            period = cast("Encounter", enc.model).period
            begun = period.start if period else None
            start = when(begun)
            if start and begun is not None:  # when() gives text only for a datetime
                starts.append((begun, start))
            elif enc is stay.encounters[0] and claim is None:
                stay.note(str(begun) if begun else None, f"{enc.label}.period.start",
                          "no date and time with a UTC offset: the arrival time is unknown")
        if starts:
            # Time in the emergency department before the inpatient order counts toward the stay (42 CFR 412.3).
            out["arrival_time"] = min(starts, key=lambda s: s[0])[1]
        elif claim is not None:
            found = _requested_start(stay, claim, post_acute=setting is not None)
            if found is not None:
                out["arrival_time"] = found
        if claim is not None and setting is not None and out.get("arrival_time"):
            # A post-acute review is made when the request is, and never before the stay it follows began.
            made = _made(cast("Claim", claim.model).created)
            out["review_time"] = max(made, out["arrival_time"], key=datetime.fromisoformat) if made else \
                out["arrival_time"]
        head = stay.encounters[0] if stay.encounters else None
        if head is not None:
            visit = cast("Encounter", head.model)
            hosp = visit.hospitalization
            source = next((found for c in codings(hosp.admitSource if hosp else None)
                           if (found := codes.admit_source(c.system, c.code)) is not None), None)
            if source is not None:
                out["admit_source"] = source
            elif any(_class(e.model) == "EMER" for e in stay.encounters[1:]):
                out["admit_source"] = "emergency"
            midnights = extension(head.model, EXPECTED_MIDNIGHTS)
            if isinstance(midnights, int) and not isinstance(midnights, bool):
                out["expected_midnights"] = midnights
            end = when(visit.period.end) if visit.period else None
            if end and visit.status != "planned":
                out["discharge_time"] = end
        return out, setting

    def _level(self, stay: Stay, claim: Read | None) -> str | None:
        for enc in stay.encounters[:1]:
            level = _requested(enc.model)
            if level:
                return level
        if claim is None:
            return None
        # PAS: our extension on the Claim, an item or the requested ServiceRequest, then the service codes.
        asked = cast("Claim", claim.model)
        found = extension(asked, REQUESTED_LEVEL)
        for item in asked.item or []:
            found = found or extension(item, REQUESTED_LEVEL)
            service = self.index.resolve(extension(item, codes.REQUESTED_SERVICE), claim, "ServiceRequest")
            if service is not None:
                found = found or extension(service.model, REQUESTED_LEVEL)
        service = self.index.resolve(extension(asked.prescription, codes.REQUESTED_SERVICE)
                                     if asked.prescription else None, claim, "ServiceRequest")
        if service is not None:
            found = found or extension(service.model, REQUESTED_LEVEL)
        if found in LEVELS:
            return found
        for item in asked.item or []:
            if cancelled(item):
                continue  # what a request no longer asks for names no level
            for concept in (extension(item, codes.REQUEST_TYPE), item.revenue, item.productOrService, item.category,
                            item.locationCodeableConcept):  # codes.PAS_LEVEL_ELEMENTS
                for c in codings(concept):
                    level = codes.pas_level(c.system, c.code)
                    if level:
                        return level
        return None

def _owner_of(encounter: Read | None, owner: dict[int, Stay]) -> Stay | None:
    """The stay an Encounter belongs to; None for a visit left unread (every Encounter of a stay is read)."""
    if encounter is None or isinstance(encounter, Deferred) and not encounter.read_yet or not encounter.readable:
        return None
    return owner.get(id(encounter.model))


def _preauthorization(r: Read) -> bool:
    """Is a Claim a prior-authorization request? A billing Claim says otherwise in its raw ``use``, unread."""
    if isinstance(r, Deferred):
        use = r.raw.get("use")
        if isinstance(use, str) and use != "preauthorization" or not r.readable:
            return False
    return cast("Claim", r.model).use == "preauthorization"


def _class(enc) -> str | None:
    return next((c.code for c in codings(enc.class_fhir)), None)


def _requested(enc) -> str | None:
    """The level an Encounter asks for: our extension, else its class; None for a visit that is not a stay."""
    level = extension(enc, REQUESTED_LEVEL)
    if level in LEVELS:
        return level
    code = _class(enc)
    return codes.STAY_CLASSES.get(code) if code is not None else None


def _made(created) -> str | None:
    """A Claim's ``created`` as a time with an offset; a date alone as 00:00 UTC that day."""
    on = day(created)
    return when(created) or (f"{on}T00:00:00+00:00" if on is not None else None)


def _preadmission(enc) -> tuple | None:
    ident = enc.hospitalization.preAdmissionIdentifier if enc.hospitalization else None
    return (ident.system, ident.value) if ident is not None and ident.value else None


def _requested_start(stay: Stay, claim: Read, post_acute: bool = False) -> str | None:
    """The arrival of a stay a PAS request asks about whose Encounter gives no start with a time and offset: the
    Encounter's start date, the request's admission dates, an item's serviced date or period, else the day the
    request was made (a Claim always has one). A request for post-acute care asks for no hospital stay: its
    arrival is the Encounter's start, else when the request was made (the review's time: a later start of care
    would come after it). What stands in for the arrival is said in a notice; a date without a time is read as
    00:00 UTC that day, and the notice says so."""
    asked = cast("Claim", claim.model)
    candidates: list[tuple[object, str, str]] = []
    for enc in stay.encounters:
        period = cast("Encounter", enc.model).period
        candidates.append((period.start if period else None, f"{enc.label}.period.start", "the Encounter's start"))
    for n, info in enumerate([] if post_acute else asked.supportingInfo or []):
        if {c.code for c in codings(info.category)} & {"admissionDates", "patientEvent"}:
            start = info.timingPeriod.start if info.timingPeriod else None
            candidates.append((info.timingDate or start, f"{claim.label}.supportingInfo[{n}].timing[x]",
                               "the requested admission date"))
    for n, item in enumerate([] if post_acute else asked.item or []):
        candidates.append((item.servicedDate, f"{claim.label}.item[{n}].servicedDate", "the requested service date"))
        candidates.append((item.servicedPeriod.start if item.servicedPeriod else None,
                           f"{claim.label}.item[{n}].servicedPeriod.start", "the requested service date"))
    candidates.append((asked.created, f"{claim.label}.created",
                       "when the request was made, as it asks for care after a hospital stay" if post_acute else
                       "the day the request was made: it names no admission or service date"))
    for value, where, what in candidates:
        exact, on = when(value), day(value)
        if exact is None and on is None:
            continue
        why = f"the arrival time is taken from {what}"
        if exact is None:
            why += ", a date without a time of day: read as 00:00 UTC, so the hours after arrival count from then"
        # "mapped": a value read as something else (the arrival), the original shown
        stay.notices.append({**notice(str(value), where, why), "kind": "mapped"})
        return exact or f"{on}T00:00:00+00:00"
    stay.note(None, f"{claim.label}.created", "no date the stay is asked for: the arrival time is unknown")
    return None
