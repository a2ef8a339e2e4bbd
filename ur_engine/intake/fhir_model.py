"""FHIR R4 resources read through the ``fhir.resources`` models, leniently, and the references between them.

A resource the model rejects is not lost: the value it rejects is set aside with a notice (what, where, why) and
the rest is read again. A required element the resource lacks is marked absent the way FHIR itself marks missing
data (the ``data-absent-reason`` extension), with a notice. Only a resource whose shape cannot be read at all
(not an object, an unknown type) is left out, with a notice too.

The models are FHIR R4B (4.3.0): its Encounter, Claim, Coverage, Condition, Observation, Procedure,
MedicationAdministration and ServiceRequest have the same elements as R4 (4.0.1), and ``fhir.resources`` ships
R4B, not R4, on the Python versions we support.
"""

from __future__ import annotations

import copy
import re
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from ur_engine.intake import fhir_codes as codes

DATA_ABSENT = {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}
MAX_REPAIRS = 50  # values set aside in one resource before it counts as unreadable
MISSING = ("missing", "model_field_validation.missing")


@dataclass(eq=False)  # a resource is itself: compared by identity, never element by element
class Read:
    """A resource as the model read it, where it came from, and what was set aside on the way."""

    model: FHIRAbstractModel
    rtype: str
    rid: str | None
    full_url: str | None = None
    notices: list[dict] = field(default_factory=list)
    seq: int = 0  # its place in the source, for stays to come out in source order

    @property
    def label(self) -> str:
        return f"{self.rtype}/{self.rid}" if self.rid else self.rtype

    @property
    def readable(self) -> bool:
        return True  # read already; a Deferred one may not be


class Deferred(Read):
    """A resource whose model is read only when a stay asks for it (``model``, ``readable``).

    A patient's record holds years of visits, and most of its Observations, Conditions and Procedures belong to
    visits that are not hospital stays: reading each through its model cost far more than the rest of the intake,
    for resources that were then left out. The raw resource is kept; what ``read`` sets aside still becomes the
    notices of the stay that uses it.
    """

    def __init__(self, raw: dict, rtype: str, full_url: str | None) -> None:  # the model comes later
        rid = raw.get("id")
        self.raw, self.rtype, self.full_url = raw, rtype, full_url
        self.rid = rid if isinstance(rid, str) and FHIR_ID.fullmatch(rid) else None  # else the model drops it
        self.notices, self.seq = [], 0
        self._read: Read | Unreadable | None = None

    def materialise(self) -> Read | Unreadable | None:
        if self._read is None:
            self._read = read(self.raw, self.full_url or "")
            if isinstance(self._read, Read):
                self.model = self._read.model
                self.rid = self._read.rid or self.rid  # an Encounter known by its urn:uuid keeps that name
            if self._read is not None:
                self.notices = self._read.notices
        return self._read

    @property
    def readable(self) -> bool:
        return isinstance(self.materialise(), Read)

    @property
    def read_yet(self) -> bool:
        return self._read is not None

    def __getattr__(self, name: str):
        # Only an attribute the instance lacks comes here: ``model``, before the resource is read.
        if name == "model" and isinstance(self.materialise(), Read):
            return self.__dict__["model"]
        raise AttributeError(name)


@dataclass(eq=False)
class Unreadable:
    """A resource of a known type that the model cannot read at all: left out, with the notices that say why."""

    rtype: str
    rid: str | None
    notices: list[dict]


def notice(what, where: str, why: str) -> dict:
    """One data notice: the value set aside (as short JSON text), its resource and element, and the reason."""
    if what is not None and not isinstance(what, (str, bool, int, float)):
        try:
            what = orjson.dumps(what, default=str).decode()
        except TypeError:
            what = repr(what)
    if isinstance(what, str) and len(what) > 120:
        what = what[:117] + "..."
    return {"what": what, "where": where[:500], "why": why[:500]}  # the record contract's lengths


def _path(label: str, loc) -> str:
    out = label
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _walk(data, loc) -> tuple[dict[str, Any] | list[Any] | None, str | int | None, int]:
    """(container, key, depth): the deepest element of ``loc`` that exists in ``data``."""
    parent: dict[str, Any] | list[Any] | None = None
    key: str | int | None = None
    depth = 0
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            parent, key, node = node, part, node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parent, key, node = node, part, node[part]
        else:
            break
        depth += 1
    return parent, key, depth


def _model_at(cls, loc) -> type[FHIRAbstractModel] | None:
    """The model class of the element at ``loc`` below ``cls`` (list indices skipped)."""
    for part in loc:
        if isinstance(part, int):
            continue
        found = next((f for n, f in cls.model_fields.items() if (f.alias or n) == part or n == part), None)
        if found is None:
            return None
        cls = _element_class(found.annotation)
        if cls is None:
            return None
    return cls


def _element_class(annotation) -> type[FHIRAbstractModel] | None:
    """The FHIR model class inside a field's annotation (``Optional[List[abc.ReferenceType]]`` → Reference)."""
    if isinstance(annotation, type) and issubclass(annotation, FHIRAbstractModel):
        return annotation
    if isinstance(annotation, type) and hasattr(annotation, "get_model_klass"):
        return annotation.get_model_klass()
    for arg in typing.get_args(annotation):
        found = _element_class(arg)
        if found is not None:
            return found
    return None


def _is_list(cls, name: str) -> bool:
    f = next((f for n, f in cls.model_fields.items() if (f.alias or n) == name), None)
    if f is None:
        return False
    def lists(a) -> bool:
        return typing.get_origin(a) in (list, typing.List) or any(lists(x) for x in typing.get_args(a))  # noqa: UP006
    return lists(f.annotation)


def _at(data, loc):
    """The element at exactly ``loc`` in ``data``, or None."""
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node or isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def _mark_absent(cls, data: dict, loc, kind: str) -> bool:
    """Mark the required element at ``loc`` absent (FHIR data-absent-reason); False when it cannot be."""
    holder = _at(data, loc[:-1])
    if not isinstance(holder, dict) or not loc or not isinstance(loc[-1], str):
        return False
    name = loc[-1]
    owner = _model_at(cls, loc[:-1])
    if kind == "model_field_validation.missing":  # a primitive: its extension sibling says why it is missing
        if f"_{name}" in holder or owner is None or f"{name}__ext" not in owner.model_fields:
            return False  # one that cannot have a sibling (Extension.url): its element is set aside instead
        holder[f"_{name}"] = {"extension": [DATA_ABSENT]}
        return True
    if owner is None or name in holder:
        return False
    element = {"extension": [DATA_ABSENT]}
    holder[name] = [element] if _is_list(owner, name) else element
    return True


def read(resource, where: str = "") -> Read | Unreadable | None:
    """The model of one resource dict, read leniently; None when its type has no model (not a resource)."""
    if not isinstance(resource, dict):
        return None
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if not isinstance(rtype, str):
        return None
    try:
        cls = get_fhir_model_class(rtype)
    except ValueError:
        return None
    label = f"{rtype}/{rid}" if isinstance(rid, str) and rid else (where or rtype)
    notices: list[dict] = []
    data = resource
    for _ in range(MAX_REPAIRS):
        try:
            model = cls.model_validate(data)
        except ValidationError as exc:
            if data is resource:
                data = copy.deepcopy(resource)  # the caller's dict stays as it was
            if not _repair(cls, data, exc.errors(), label, notices):
                break
            continue
        except (TypeError, KeyError, AttributeError, ValueError):
            # The model library fails outright on some shapes (a contained resource whose resourceType is not
            # text): find the element that does it and set it aside.
            if data is resource:
                data = copy.deepcopy(resource)
            if not _set_aside_breaking(cls, data, label, notices):
                break
            continue
        mid = getattr(model, "id", None)  # every resource has an id; FHIRAbstractModel does not declare it
        return Read(model, rtype, mid if isinstance(mid, str) else None, notices=notices)
    notices.append(notice(None, label, "the resource cannot be read as FHIR R4 " + rtype))
    return Unreadable(rtype, rid if isinstance(rid, str) else None, notices)


CHOICE = re.compile(r"(but got multiple|Expect any of field value from this list)")
CHOICE_FIELDS = re.compile(r"\[([^\]]*)\]")


def _choice(cls, data: dict, loc, found, label: str, notices: list) -> bool:
    """A choice element ``x[x]`` given several ways (all set aside: which one is right is unknown), or required
    and not given (marked absent on its first complex form)."""
    holder = _at(data, loc)
    fields = CHOICE_FIELDS.search(found.string)
    if not isinstance(holder, dict) or fields is None:
        return False
    names = [n.strip().strip("'\"") for n in fields.group(1).split(",")]
    present = [n for n in names if n in holder]
    if found.group(1) == "but got multiple":
        for name in present:
            notices.append(notice(holder.pop(name), _path(label, (*loc, name)),
                                  f"one of several values given for {_stem(names)}[x]: none is taken"))
        return bool(present)
    owner = _model_at(cls, loc)
    complex_ = [n for n in names if owner is not None and f"{n}__ext" not in owner.model_fields]
    if not complex_ or present:
        return False
    holder[complex_[0]] = {"extension": [DATA_ABSENT]}
    notices.append(notice(None, _path(label, (*loc, f"{_stem(names)}[x]")),
                          "required by FHIR R4 but missing: read as unknown"))
    return True


def _stem(names: list[str]) -> str:
    first = names[0]
    return next((first[:i] for i in range(1, len(first)) if first[i].isupper()), first)


def _set_aside_breaking(cls, data: dict, label: str, notices: list) -> bool:
    """Set aside the first top-level element that the model cannot even check on its own."""
    for key in [k for k in data if k not in ("resourceType", "id")]:
        try:
            cls.model_validate({"resourceType": data["resourceType"], key: data[key]})
        except ValidationError:
            continue  # an ordinary rejection (or only other elements missing): not this one
        except (TypeError, KeyError, AttributeError, ValueError):
            notices.append(notice(data.pop(key), _path(label, (key,)), "the FHIR R4 model cannot read it"))
            return True
    return False


def _repair(cls, data: dict, errors: list, label: str, notices: list) -> bool:
    """Set aside one rejected value (or mark one missing element absent); False when nothing can be done.

    One change per round: removing a list element moves the ones after it, so the errors are asked for again.
    """
    for err in errors:
        loc = tuple(err["loc"])
        choice = CHOICE.search(str(err.get("msg", "")))
        if choice is not None:
            if _choice(cls, data, loc, choice, label, notices):
                return True
            continue
        if err["type"] in MISSING:
            if _mark_absent(cls, data, loc, err["type"]):
                notices.append(notice(None, _path(label, loc), "required by FHIR R4 but missing: read as unknown"))
                return True
            # An element without what it cannot be read without (an extension without its url) is set aside.
            if len(loc) >= 2 and _at(data, loc[:-1]) is not None and \
                    _pop(data, loc[:-1], label, notices, f"its {loc[-1]}, which FHIR R4 requires, is missing"):
                return True
            continue
        if _pop(data, loc, label, notices, _why(err)):
            return True
    return False


def _pop(data: dict, loc, label: str, notices: list, why: str) -> bool:
    """Set aside the deepest element of ``loc`` there is in ``data``, with a notice; False when there is none."""
    parent, key, depth = _walk(data, loc)
    if isinstance(parent, dict) and isinstance(key, str):
        value = parent.pop(key)
    elif isinstance(parent, list) and isinstance(key, int):
        value = parent.pop(key)
    else:
        return False
    if isinstance(parent, list) and not parent and depth >= 2:
        holder = _at(data, loc[:depth - 2])  # an emptied list is no longer valid FHIR: drop it too
        if isinstance(holder, dict):
            holder.pop(loc[depth - 2], None)
    notices.append(notice(value, _path(label, loc[:depth]), why))
    return True


def _why(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "not an element of FHIR R4"
    if err["type"] == "json_invalid":  # text where the model wants an element (STU3's plain-code statuses)
        return "rejected by the FHIR R4 model: text where an element (an object) is expected"
    msg = str(err.get("msg", "")).removeprefix("Value error, ").strip()
    return f"rejected by the FHIR R4 model: {msg}" if msg else "rejected by the FHIR R4 model"


# --- references ---------------------------------------------------------------------------------------------

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4's id
TYPED_ID = re.compile(rf"(?:^|/)([A-Z][A-Za-z]+)/({FHIR_ID.pattern})$")


class Index:
    """Resources by every name a reference may use: ``Type/id``, the entry's ``fullUrl`` (``urn:uuid:…`` or
    absolute), and ``#id`` for resources contained in another."""

    def __init__(self) -> None:
        self.names: dict[str, Read] = {}
        # The other resources a name was given to, in source order. The first the model reads is the name's,
        # as when every resource was read on arrival and an unreadable one never named anything.
        self.more: dict[str, list[Read]] = {}

    def add(self, r: Read) -> None:
        names = []
        if r.rid:
            names.append(f"{r.rtype}/{r.rid}")
        if r.full_url:
            names.append(r.full_url)
            m = TYPED_ID.search(r.full_url)
            if m:
                names.append(f"{m.group(1)}/{m.group(2)}")
        for name in names:
            if name not in self.names:
                self.names[name] = r
            elif self.names[name] is not r:
                self.more.setdefault(name, []).append(r)

    def discard(self, gone: set[int]) -> None:
        """Forget the resources whose ``id()`` is in ``gone``."""
        for name, others in list(self.more.items()):
            self.more[name] = [r for r in others if id(r) not in gone]
        for name, r in list(self.names.items()):
            if id(r) in gone:
                rest = self.more.pop(name, [])
                if rest:
                    self.names[name], self.more[name] = rest[0], rest[1:]
                else:
                    del self.names[name]

    def _first(self, name: str, read: bool) -> Read | None:
        found = self.names.get(name)
        rest = self.more.get(name)
        if found is None or not read and not rest:
            return found
        for r in (found, *(rest or ())):
            if not isinstance(r, Deferred) or r.readable:
                return r
        return None

    def resolve(self, ref, within: Read | None = None, rtype: str | None = None) -> Read | None:
        """The resource ``ref`` (a Reference model) points to, of type ``rtype`` when given; None when unknown
        (or when it is a resource its model cannot read)."""
        return self.resolve_text(getattr(ref, "reference", None), within, rtype)

    def resolve_text(self, text, within: Read | None = None, rtype: str | None = None,
                     read: bool = True) -> Read | None:
        """``resolve`` for the text of a reference; ``read=False`` leaves a Deferred resource unread (and so may
        give one its model cannot read)."""
        if not isinstance(text, str) or not text:
            return None
        found = None
        if text.startswith("#"):
            if within is not None:
                for c in getattr(within.model, "contained", None) or []:  # DomainResource.contained
                    if c.id == text[1:]:
                        found = Read(c, c.get_resource_type(), c.id)
                        break
        else:
            text = text.split("/_history/")[0]
            found = self._first(text, read)
            if found is None:
                m = TYPED_ID.search(text)
                if m:
                    found = self._first(f"{m.group(1)}/{m.group(2)}", read)
        if found is not None and rtype is not None and found.rtype != rtype:
            return None
        return found

    def named(self, ref) -> str | None:
        """The ``Type/id`` (or ``urn:uuid:…``) text of a reference, for messages."""
        text = getattr(ref, "reference", None)
        return text if isinstance(text, str) and text else None


# --- elements -----------------------------------------------------------------------------------------------

def codings(concept) -> list:
    """The Codings of a CodeableConcept model (or of a bare Coding, as R4 Encounter.class is)."""
    if concept is None:
        return []
    if isinstance(concept, list):
        return [c for x in concept for c in codings(x)]
    found = getattr(concept, "coding", None)
    if found is not None:
        return list(found)
    return [concept] if getattr(concept, "code", None) else []


def system_name(uri) -> str | None:
    return codes.SYSTEMS.get(uri, uri) if isinstance(uri, str) and uri else None


def pick(concept, preference) -> tuple[str, str, str | None] | None:
    """(system name, code, display) of the coding that stands for ``concept``: the first in ``preference``,
    else the first with a system and a code."""
    found: list[tuple[str, str, str | None]] = []
    for c in codings(concept):
        name = system_name(c.system)
        if c.code and name is not None:  # system_name is None exactly when there is no system
            found.append((name, c.code, c.display))
    for wanted in preference:
        for f in found:
            if f[0] == wanted:
                return f
    return found[0] if found else None


def extension(model, url: str):
    """The value of ``model``'s extension ``url`` (the first one), or None."""
    for ext in getattr(model, "extension", None) or []:
        if ext.url == url:
            for name in ("valueCode", "valueInteger", "valueReference", "valueCodeableConcept", "valuePeriod",
                         "valueDate", "valueDateTime", "valueString"):
                value = getattr(ext, name, None)
                if value is not None:
                    return value
    return None


def cancelled(item) -> bool:
    """A PAS Claim item no longer asked for: a Claim update flags it cancelled (a modifier extension, which
    changes what the item means), or its certification type is Cancel."""
    if any(e.url == codes.INFO_CANCELLED and e.valueBoolean for e in getattr(item, "modifierExtension", None) or []):
        return True
    return any(c.system == codes.X12_CERTIFICATION_TYPE and c.code == "3"
               for c in codings(extension(item, codes.CERTIFICATION_TYPE)))


# --- primitive values as the record wants them --------------------------------------------------------------

def when(value) -> str | None:
    """A date and time with a UTC offset as ISO text; None for a date alone or a time without an offset."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat()
    return None


def day(value) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def number(value):
    """A FHIR decimal as an int when integral, else a float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None
