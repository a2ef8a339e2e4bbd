"""What an edit changed in the rule files: a unified diff per criterion, and one per other part that changed.

A replay counts what the edit does to stays; this says what the edit *is*, in the rule author's own lines, so a
reviewer of the report sees the threshold that moved next to the stays it moved. Criteria are matched by id, so
a criterion moved within its file is not an edit; line numbers in the hunks are the files' own.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ur_engine.errors import RuleError
from ur_engine.rules import source as yamlsrc
from ur_engine.rules.library import Source

MAX_LINES = 120  # of one diff: a rewritten valueset of thousands of codes is summed up, not printed


@dataclass(frozen=True)
class Edit:
    """One changed part of the library: a criterion (``what`` is its id) or the rest of a file."""

    file: str
    what: str  # a criterion id, or "other parts" of a rule file, or "file" for facts.yaml and valuesets
    kind: str  # "edited", "added" or "removed"
    diff: str  # unified diff, hunk lines numbered as in the files

    @property
    def title(self) -> str:
        return f"{self.what} ({self.file}, {self.kind})" if self.what != "file" else f"{self.file} ({self.kind})"


def edits(baseline: list[Source], candidate: list[Source]) -> list[Edit]:
    """Every changed criterion of every rule file, then every other changed part, in file order."""
    old = {s.name: s.text for s in baseline}
    new = {s.name: s.text for s in candidate}
    out: list[Edit] = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if a is None or b is None or name == "facts.yaml" or name.startswith("valuesets/"):
            out.append(_whole(name, a, b))
            continue
        out.extend(_rule_file(name, a, b))
    return out


def _whole(name: str, a: str | None, b: str | None) -> Edit:
    kind = "added" if a is None else "removed" if b is None else "edited"
    return Edit(name, "file", kind, _diff(name, (a or "").splitlines(), (b or "").splitlines(), 1, 1))


def _rule_file(name: str, a: str, b: str) -> Iterator[Edit]:
    try:
        blocks_a, blocks_b = _blocks(name, a), _blocks(name, b)
    except RuleError:  # not for a library that loaded; should one not parse, show the whole file
        yield _whole(name, a, b)
        return
    lines_a, lines_b = a.splitlines(), b.splitlines()
    for cid in list(blocks_a) + [c for c in blocks_b if c not in blocks_a]:
        (start_a, end_a), (start_b, end_b) = blocks_a.get(cid, (1, 0)), blocks_b.get(cid, (1, 0))
        part_a, part_b = lines_a[start_a - 1:end_a], lines_b[start_b - 1:end_b]
        if part_a != part_b:
            kind = "added" if cid not in blocks_a else "removed" if cid not in blocks_b else "edited"
            yield Edit(name, cid, kind, _diff(name, part_a, part_b, start_a, start_b))
    rest_a, rest_b = _without(lines_a, blocks_a.values()), _without(lines_b, blocks_b.values())
    if rest_a != rest_b:
        yield Edit(name, "other parts", "edited", _diff(name, rest_a, rest_b, 1, 1, numbered=False))


def _blocks(name: str, text: str) -> dict[str, tuple[int, int]]:
    """Criterion id -> its first and last line (1-based, inclusive; blank and comment lines after it left out)."""
    doc = yamlsrc.parse(name, text)
    data = doc.data if isinstance(doc.data, dict) else {}
    criteria = data.get("criteria")
    if not isinstance(criteria, list):
        return {}
    lines = text.splitlines()
    starts = [doc.where(("criteria", i))[0] for i in range(len(criteria))]
    # The criteria end where the next top-level key starts (or at the end of the file).
    after = [line for key, (line, _) in doc.key_positions.items() if len(key) == 1 and line > starts[-1]]
    ends = [s - 1 for s in starts[1:]] + [min(after, default=len(lines) + 1) - 1]
    out: dict[str, tuple[int, int]] = {}
    for item, start, end in zip(criteria, starts, ends):
        # `- id:` starts the item, but its dash may stand on the line before a key
        while start > 1 and lines[start - 2].strip() == "-":
            start -= 1
        while end > start and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            out[item["id"]] = (start, end)
    return out


def _without(lines: list[str], blocks) -> list[str]:
    inside = {n for start, end in blocks for n in range(start, end + 1)}
    return [line for n, line in enumerate(lines, start=1) if n not in inside]


_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def _diff(name: str, a: list[str], b: list[str], start_a: int, start_b: int, numbered: bool = True) -> str:
    out = []
    for line in difflib.unified_diff(a, b, f"baseline/{name}", f"candidate/{name}", lineterm="", n=2):
        m = _HUNK.match(line)
        if m and numbered:
            # The diff of a block counts from 1: shift its hunks to the block's place in the file.
            line = (f"@@ -{int(m[1]) + start_a - 1}{m[2] or ''} +{int(m[3]) + start_b - 1}{m[4] or ''} @@"
                    + line[m.end():])
        out.append(line)
    if len(out) > MAX_LINES:
        hidden = len(out) - MAX_LINES
        out = out[:MAX_LINES] + [f"… {hidden} more diff lines"]
    return "\n".join(out)
