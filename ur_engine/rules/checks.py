"""The checks of a rule library that only find errors: schema errors told as their fix, ids, versions and
``applies`` that no record can meet, record paths in facts.yaml; and one error per place in the end.

``library.load`` calls them; they never build anything the engine uses.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ur_engine import conditions as c
from ur_engine import schemas
from ur_engine.errors import (
    AppliesBoundsError,
    DuplicateCriterionError,
    OverlappingVersionsError,
    RuleError,
    RuleSchemaError,
    UnknownFactError,
    UnknownRecordPathError,
    UnknownValuesetError,
    UnknownWaiverError,
    YamlSyntaxError,
    did_you_mean,
)
from ur_engine.rules import source as yamlsrc
from ur_engine.rules.documents import AppliesDoc, FactsDoc

if TYPE_CHECKING:
    from collections.abc import Collection

    from ur_engine.rules.library import RuleSet

CRITERION_KEYS = ("id", "group", "text", "source", "note", "action")
CONDITION_KEYS = ("any", "all", "not", "fact")


# What to write when a key is missing, by key: the schema only says that it is.
_REQUIRED_HELP = {
    "source": "cite the public document its threshold comes from",
    "text": "say in words what it tests, as a reviewer would read it",
    "group": "name the group its level counts it in (e.g. severity)",
    "id": "give it an upper-case id unique in the library (e.g. SI-PULSE)",
}


def schema_errors(doc: yamlsrc.Document, kind: str, errors: list[RuleError]) -> bool:
    """Add the schema errors of ``doc``, a missing key told with what to write; whether there were any."""
    found = False
    data = doc.data if doc.data is not None else {}
    for path, msg, hint, at_key in schemas.iter_explained(kind, data, every_key=True):
        found = True  # a key said once, where it is misspelt, still leaves the file broken
        if msg.endswith("is required") and path:
            missing = str(path[-1])
            if kind == "ruleset" and len(path) == 3 and path[0] == "criteria" and misspelt(doc, path[:-1], missing):
                continue  # the loader names the misspelt key and suggests this one: say it once, where it is
            msg = f"'{missing}' is missing: add '{missing}:'"
            if missing in _REQUIRED_HELP and kind == "ruleset" and path[:1] == ("criteria",):
                msg += f" to this criterion — {_REQUIRED_HELP[missing]}"
        errors.append(doc.error(path, msg, RuleSchemaError, key=at_key, suggestion=hint))
    return found


def misspelt(doc: yamlsrc.Document, path: yamlsrc.Path, missing: str) -> bool:
    """Whether the mapping at ``path`` has a key that reads as a misspelling of ``missing`` (``sorce``)."""
    node = doc.data
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False
    known = CRITERION_KEYS + CONDITION_KEYS + c.OPERATORS
    return isinstance(node, dict) and any(
        str(k) not in known and did_you_mean(str(k), [missing]) == missing for k in node)


# A section of facts.yaml -> how the facts of its entry NAME are named in rules (prefix, suffix).
_FACT_NAMES = {"observations": ("", "."), "findings": ("finding.", ""), "treatments": ("treatment.", ""),
               "diagnoses": ("dx.", ""), "procedures": ("procedure.", ""), "fields": ("", ""), "sets": ("", "."),
               "intervals": ("", ""), "scores": ("score.", "")}


def whole_entries(spec: object) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """facts.yaml without its entries that break the schema, and the names (or name prefixes) of the facts they
    define: the rule files are then checked against the rest. (None, ()) when nothing whole is left."""
    if not isinstance(spec, dict):
        return None, ()
    kept: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in spec.items()}
    dropped: list[str] = []
    for path, *_ in schemas.iter_explained("facts", spec, every_key=True):
        section = str(path[0]) if path else ""
        if section not in _FACT_NAMES or section not in kept:
            if section in ("windows", "") or section not in kept:
                return None, ()  # the windows every fact reads, or the file itself
            kept.pop(section)
            continue
        if len(path) == 1 or not isinstance(kept[section], dict):
            return None, ()  # a whole section of facts: every rule would name one
        prefix, suffix = _FACT_NAMES[section]
        kept[section].pop(path[1], None)
        dropped.append(f"{prefix}{path[1]}{suffix}")
    if any(True for _ in schemas.iter_explained("facts", kept)):
        return None, ()
    return kept, tuple(dropped)


def without_facts(errors: list[RuleError], dropped: tuple[str, ...]) -> list[RuleError]:
    """The errors but an unknown fact that a broken entry of facts.yaml would have defined."""
    def defined(e: RuleError) -> bool:
        name = e.message.removeprefix("unknown fact '").removesuffix("'")
        return any(name == d or (d.endswith(".") and name.startswith(d)) for d in dropped)
    return [e for e in errors if not (isinstance(e, UnknownFactError) and defined(e))]


def once(errors: list[RuleError]) -> list[RuleError]:
    """One error per place: where the YAML itself was misread (a comma that split a value), the errors that
    follow from it at the same spot (an unknown key) would only repeat it less helpfully."""
    misread = {(e.file, e.line, e.column) for e in errors if isinstance(e, YamlSyntaxError)}
    return [e for e in errors if isinstance(e, YamlSyntaxError) or (e.file, e.line, e.column) not in misread]


def check_unique(rulesets: list[RuleSet], docs: dict[str, yamlsrc.Document], errors: list[RuleError]) -> None:
    """Criterion ids are unique across rule sets; versions of one rule set may not overlap in time."""
    owner: dict[str, str] = {}
    for rs in rulesets:
        doc = docs[rs.file]
        for other in rulesets:
            if other is rs or other.id != rs.id or other.file > rs.file:
                continue
            if other.version == rs.version or overlap(rs, other):
                errors.append(doc.error(("effective",), f"rule set '{rs.id}' {rs.version} overlaps {other.version} "
                                        f"in {other.file}: give versions disjoint effective dates",
                                        OverlappingVersionsError))
        first: dict[str, int] = {}
        for i, cr in enumerate(rs.criteria):
            if cr.id in first:
                errors.append(doc.error(("criteria", i, "id"),
                                        f"criterion id '{cr.id}' is used twice in this rule set (first at line "
                                        f"{first[cr.id]}): give each criterion its own id", DuplicateCriterionError))
            first.setdefault(cr.id, cr.line)
            if owner.get(cr.id, rs.id) != rs.id:
                errors.append(doc.error(("criteria", i, "id"),
                                        f"criterion id '{cr.id}' is also used by rule set {owner[cr.id]}",
                                        DuplicateCriterionError))
            owner.setdefault(cr.id, rs.id)
    for rs in rulesets:
        for i, cid in enumerate(rs.waives):
            if cid not in owner:
                errors.append(docs[rs.file].error(("waives", i), f"waives unknown criterion '{cid}'",
                                                  UnknownWaiverError, suggestion=did_you_mean(cid, owner)))


def overlap(a: RuleSet, b: RuleSet) -> bool:
    lo = max(a.effective_from or date.min, b.effective_from or date.min)
    hi = min(a.effective_to or date.max, b.effective_to or date.max)
    return lo <= hi


def applies_errors(doc: yamlsrc.Document, a: AppliesDoc, valuesets: Collection[str],
                   errors: list[RuleError]) -> None:
    """``applies`` names known code sets, and its bounds leave some patient to judge.

    Also run on a file that breaks its schema: a part of the wrong shape is left to the schema's error.
    """
    names = a.get("diagnoses", ())
    for i, v in enumerate(names if isinstance(names, list) else ()):
        if isinstance(v, str) and v not in valuesets:
            errors.append(doc.error(("applies", "diagnoses", i), f"unknown valueset '{v}'", UnknownValuesetError,
                                    suggestion=did_you_mean(v, valuesets)))
    age: object = a.get("age", {})
    low, high = (_number(age.get("min")), _number(age.get("max"))) if isinstance(age, dict) else (None, None)
    if low is not None and high is not None and low > high:
        # No patient is both: the rule set would silently judge nobody, and its tests fail as "not evaluated".
        errors.append(doc.error(("applies", "age", "max"), f"applies.age has min {low:g} above max {high:g}, so "
                                f"no patient can match and the rule set never applies: swap them, or remove one",
                                AppliesBoundsError))


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def check_diagnosis_findings(doc: yamlsrc.Document, facts: FactsDoc, valuesets: Collection[str],
                             errors: list[RuleError]) -> None:
    """A finding documented by coded diagnoses (``from_diagnoses``) names a valueset that exists."""
    for name, finding in (facts.get("findings") or {}).items():
        ref = finding.get("from_diagnoses")
        if ref is not None and ref not in valuesets:
            errors.append(doc.error(("findings", name, "from_diagnoses"), f"unknown valueset '{ref}'",
                                    UnknownValuesetError, suggestion=did_you_mean(ref, valuesets)))


def check_paths(doc: yamlsrc.Document, facts: FactsDoc, errors: list[RuleError]) -> None:
    """Record paths in facts.yaml must exist: a misspelt path would silently make a fact always unknown."""
    from ur_engine.record import paths

    known = paths()
    times = [p for p, t in known.items() if t in (datetime, date)]
    listed = [("fields", name, f["path"]) for name, f in (facts.get("fields") or {}).items()]
    listed += [("sets", name, s["path"]) for name, s in (facts.get("sets") or {}).items()]
    for section, name, path in listed:
        if path not in known:
            errors.append(doc.error((section, name, "path"), f"the record has no field '{path}'",
                                    UnknownRecordPathError, suggestion=did_you_mean(path, known)))
    for name, interval in (facts.get("intervals") or {}).items():
        ends: list[tuple[yamlsrc.Path, str]] = [(("from",), interval["from"])]
        ends += [(("to", i), p) for i, p in enumerate(interval["to"])]
        for where, path in ends:
            if path not in times:
                errors.append(doc.error(("intervals", name) + where, f"'{path}' is not a date or time of the record",
                                        UnknownRecordPathError, suggestion=did_you_mean(path, times)))


def test_lines(node: object, path: yamlsrc.Path,
               doc: yamlsrc.Document) -> Iterator[tuple[tuple[str, str, object], int]]:
    """((fact, operator, threshold), line) of every test of a condition that loaded."""
    if not isinstance(node, dict):
        return
    for kind in ("any", "all"):
        for i, item in enumerate(node.get(kind) or ()):
            yield from test_lines(item, path + (kind, i), doc)
    if "not" in node:
        yield from test_lines(node["not"], path + ("not",), doc)
    for op in c.OPERATORS:
        if "fact" in node and op in node:
            value = node[op]
            yield (str(node["fact"]), op, tuple(value) if isinstance(value, list) else value), doc.where(path)[0]
