"""A compact decision line back to the full trail, from the rules that judged it.

``Decision.to_dict(trail="compact")`` keeps each criterion's id under its status and each fact the criteria read
once; the text, group and source of every criterion, and the facts each one reads, are the rule library's. The
engine is deterministic, so the rules of the line's ``rules.digest`` rebuild the trail exactly as
``trail="full"`` would have written it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ur_engine.errors import TrailRulesError
from ur_engine.rules.library import Library


def expand(line: Mapping[str, Any], library: Library) -> dict[str, Any]:
    """The full form of a decision line; a line that is not compact (an error line, a full line) as it is."""
    if "trail" not in line:
        return dict(line)
    rules = line["rules"]
    if rules.get("digest") != library.digest:
        raise TrailRulesError(
            f"record {line.get('record_id')!r} was judged by rules {str(rules.get('digest'))[:12]}…, not by these "
            f"({library.digest[:12]}…): give the rules it was judged by (see rules.digest)", path="$.rules.digest")
    by_key = {rs.key: rs for rs in library.rulesets}
    status = {cid: name for name, ids in line["trail"].items() for cid in ids}
    evidence = line["evidence"]
    unknown = {"value": None}
    criteria = [
        {"id": cr.id, "ruleset": rid, "group": cr.group, "status": status[cr.id], "text": cr.text,
         "source": cr.source, "evidence": [{"fact": f, **evidence.get(f, unknown)} for f in cr.facts]}
        for rid, version in rules["rulesets"].items() for cr in by_key[f"{rid}@{version}"].criteria]
    out: dict[str, Any] = {}
    for k, v in line.items():
        if k == "trail":
            out["criteria"] = criteria
        elif k != "evidence":
            out[k] = v
    return out
