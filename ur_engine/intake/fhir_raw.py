"""What a raw FHIR resource says before any model reads it: enough to leave a visit's resources unread.

Each answer is the one the ``fhir.resources`` model would give for a resource it reads; where the raw JSON has an
element of another shape, the answer is None and the caller reads the resource through its model
(``fhir_model.Deferred``).
"""

from __future__ import annotations

from ur_engine.intake import fhir_codes as codes

REQUESTED_LEVEL = "https://ur-engine.org/fhir/StructureDefinition/requested-level"  # our extension's url
VOID = {"entered-in-error", "cancelled"}
REFUTED = {"entered-in-error", "refuted"}
ENCOUNTER_ELEMENT = {"MedicationAdministration": "context"}  # the others' is "encounter"


def reference(raw: dict, rtype: str) -> str | None:
    """The text of a raw section resource's plain encounter reference; None when it has none or only the model
    can read it (a contained ``#id``, an element of another shape)."""
    return _plain(raw.get(ENCOUNTER_ELEMENT.get(rtype, "encounter")))


def item_encounters(raw: dict) -> list[str] | None:
    """The plain references of a raw Claim's or ExplanationOfBenefit's ``item[].encounter[]``; None when only its
    model can say (an element of another shape)."""
    items = raw.get("item", [])
    if not isinstance(items, list):
        return None
    texts = []
    for item in items:
        refs = item.get("encounter", []) if isinstance(item, dict) else None
        if not isinstance(refs, list):
            return None
        for ref in refs:
            text = _plain(ref)
            if text is None:
                return None
            texts.append(text)
    return texts


def _plain(ref: object) -> str | None:
    """The text of a raw Reference naming a resource by Type/id or URL; None for anything else."""
    text = ref.get("reference") if isinstance(ref, dict) else None
    return text if isinstance(text, str) and text and not text.startswith("#") else None


def plain_visit(raw: dict) -> tuple[str | None, str | None, tuple[str | None, str] | None] | None:
    """(class code, partOf reference, pre-admission identifier) of a raw Encounter that plainly is not a stay —
    no level in our extension, a class that is no stay's — read as its model would read them; None when it may be
    a stay or only the model can tell (an element of another shape)."""
    extensions = raw.get("extension", [])
    if not isinstance(extensions, list) or any(not isinstance(e, dict) or e.get("url") == REQUESTED_LEVEL
                                               for e in extensions):
        return None
    cls = raw.get("class")
    code = cls.get("code") if isinstance(cls, dict) and "coding" not in cls else None
    if not isinstance(code, str) or code in codes.STAY_CLASSES:
        return None
    part_of = raw.get("partOf")
    text = part_of.get("reference") if isinstance(part_of, dict) else None
    if part_of is not None and not (isinstance(text, str) and not text.startswith("#")):
        return None
    hosp = raw.get("hospitalization")
    ident = hosp.get("preAdmissionIdentifier") if isinstance(hosp, dict) else None
    if hosp is not None and not isinstance(hosp, dict) or ident is not None and not isinstance(ident, dict):
        return None
    key = None
    if ident:
        value, system = ident.get("value"), ident.get("system")
        if not isinstance(value, str) or not (system is None or isinstance(system, str)):
            return None
        key = (system, value) if value else None
    return code, text, key


def void(resource: dict) -> str | None:
    """Why a resource records nothing (entered in error, cancelled, refuted, not done), read from its raw status as
    its model would give it; None when it stands."""
    status = resource.get("status") if resource.get("resourceType") != "Condition" else None  # R4 has none
    status = status if isinstance(status, str) else None  # anything else the model sets aside: no status
    if status in VOID:
        return status
    if resource.get("resourceType") == "Condition":
        concept = resource.get("verificationStatus")
        found = concept.get("coding") if isinstance(concept, dict) else None
        for c in found if isinstance(found, list) else []:
            code = c.get("code") if isinstance(c, dict) else None
            if isinstance(code, str) and code in REFUTED:
                return code
    if resource.get("resourceType") == "MedicationAdministration" and status == "not-done":
        return "not-done"
    return None
