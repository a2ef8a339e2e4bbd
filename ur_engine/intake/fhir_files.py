"""FHIR inputs of a batch: Bulk Data exports (a directory of NDJSON files, or a manifest) and Bundle files
(``.json``, ``.json.gz``) → items, one per hospital stay, built by ``fhir.Source``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from ur_engine.errors import RecordError
from ur_engine.intake import fhir
from ur_engine.intake.fhir_model import Deferred
from ur_engine.intake.readers import (
    _BROKEN_OFF,
    Item,
    ItemStream,
    _document,
    _fail,
    _name,
    _open,
    _unreadable,
)

EXPORT_FILE = re.compile(r"^([A-Z][A-Za-z]+)(?:[-_.](\d+))?\.(?:ndjson|jsonl)$")


def _export_files(path: str) -> list[tuple[str, str, str]]:
    """(resource type, file, name) for the types a record uses, in a fixed order: type, then file number.

    A file is named from the export: ``fhir/Encounter-1.ndjson`` for a directory ``fhir`` or a manifest in it.
    """
    p = Path(path)
    found = []
    if p.is_dir():
        for child in p.iterdir():
            m = EXPORT_FILE.match(child.name)
            if m and child.is_file():
                found.append((m.group(1), int(m.group(2) or -1), child.name, str(child)))
        home = p.resolve().name
    else:
        for i, out in enumerate(_document(path)["output"]):
            url = str(out.get("url", "")) if isinstance(out, dict) else ""
            if url.startswith(("http://", "https://")):
                raise _fail(path, f"manifest file {url} is remote: download the export and point to it locally")
            url = url.removeprefix("file://")
            target = p.parent / url
            if out.get("type") in fhir.TYPES and not target.is_file():
                raise _fail(path, f"manifest names {url!r}, which is not a file")
            found.append((out.get("type"), i, url, str(target)))
        home = p.resolve().parent.name
    rank = {t: i for i, t in enumerate(fhir.TYPES)}
    found = sorted((f for f in found if f[0] in rank), key=lambda f: (rank[f[0]], f[1], f[2]))
    if not any(t in ("Encounter", "Claim") for t, *_ in found):
        raise _fail(path, "the FHIR export has no Encounter or Claim file")
    return [(t, file, f"{home}/{rel}" if home else rel) for t, _, rel, file in found]


def export_reader(path: str, stream: ItemStream) -> Callable[[], Iterator[Item]]:
    files = _export_files(path)

    def items() -> Iterator[Item]:
        source = fhir.Source({t for t, _, _ in files})
        for rtype, target, file in files:
            if rtype in fhir.AFTER_SETTLING:  # the files come type by type: every Encounter and Claim is in
                source.settle()
            with open(target, "rb") as f:
                for number, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        resource = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        yield Item(f"{file}:{number}", error=RecordError(
                            f"invalid JSON: {exc.msg}", code="UR101", path="$", file=file, line=number))
                        continue
                    found = resource.get("resourceType") if isinstance(resource, dict) else None
                    error: RecordError | None
                    if found != rtype:
                        error = RecordError(f"a {rtype} file holds {found or 'something else'}", code="UR120",
                                            path="$.resourceType", file=file, line=number)
                    else:
                        error = source.add(resource, file, number)
                    if error is not None:
                        rid = resource.get("id") if isinstance(resource, dict) else None
                        yield Item(f"{file}:{number}", error=error, record_id=rid if isinstance(rid, str) else None)
        yield from _stays(source, stream)
    return items


def _stays(source: fhir.Source, stream: ItemStream | None) -> Iterator[Item]:
    for file, number, rid, record, error in source.records():
        yield Item(f"{file}:{number}", record=record, error=error, record_id=rid if error else None)
    if stream is None:
        return
    stream.ignored.update(source.ignored)
    stream.orphans += source.orphans
    stream.skipped.update(source.skipped)
    stream.notices.update(source.notices)


def bundle_reader(path: str, stream: ItemStream) -> Callable[[], Iterator[Item]]:
    """A Bundle of any type (transaction, collection, searchset, batch, a PAS request): one item per stay.

    Positions are ``file:N``, N the entry's place in ``Bundle.entry`` from 1. The entry list is walked here and
    each resource read through its model, so one resource the model rejects does not reject the Bundle.
    """
    def items() -> Iterator[Item]:
        name = _name(path)
        try:
            with _open(path) as f:
                doc = orjson.loads(f.read())
        except _BROKEN_OFF as exc:
            raise _unreadable(path, exc) from None
        except orjson.JSONDecodeError as exc:
            yield Item(f"{name}:{exc.lineno}", error=RecordError(
                f"invalid JSON: {exc.msg}", code="UR101", path="$", file=name, line=exc.lineno))
            return
        yield from bundle_items(doc, name, stream)
    return items


def bundle_items(doc, name: str, stream: ItemStream | None = None) -> Iterator[Item]:
    """The items of one parsed Bundle ``doc`` named ``name``: an error item for each resource that cannot be
    keyed, then one item per stay. ``stream`` (when given) gets the counts of what was left out."""
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        found = doc.get("resourceType") if isinstance(doc, dict) else None
        yield Item(f"{name}:1", error=RecordError(f"not a FHIR Bundle but {found or 'something else'}",
                                                  code="UR120", path="$.resourceType", file=name, line=1))
        return
    source = fhir.Source()
    entry_list = doc.get("entry")
    entries = entry_list if isinstance(entry_list, list) else []
    for number, entry in enumerate(entries, start=1):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue  # a request without a resource (a DELETE in a batch), or a response entry
        url = entry.get("fullUrl")
        error = source.add(resource, name, number, url if isinstance(url, str) else None)
        if error is not None:
            rid = resource.get("id")
            yield Item(f"{name}:{number}", error=error, record_id=rid if isinstance(rid, str) else None)
    kept = [r for rtype in ("Encounter", "Claim") for r, _, _ in source.reads[rtype]]
    # One read already is enough; a visit kept unread is read only when nothing else is there.
    if not any(not isinstance(r, Deferred) for r in kept) and not any(r.readable for r in kept):
        yield Item(f"{name}:1", error=RecordError(
            f"the {doc.get('type') or ''} Bundle holds no Encounter and no prior-authorization Claim: "
            "nothing to review", code="UR120", path="$.entry", file=name, line=1))
    yield from _stays(source, stream)
