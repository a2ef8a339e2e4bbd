"""A replay summary as a Markdown or a self-contained HTML report.

Record ids and rule ids come from the input and the rule files: every one is escaped (HTML entities in both
formats, so a Markdown renderer that passes HTML through shows ``<script>`` as text).
"""

from __future__ import annotations

import html
from collections.abc import Set as AbstractSet

from ur_engine.authoring.replay import ReplaySummary

TITLE = "Rule replay: baseline against candidate"


def _rows(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Largest first, then by name: the same summary always gives the same report."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _criterion_rows(s: ReplaySummary) -> list[tuple[str, str, int]]:
    rows = [(cid, key, n) for cid, flips in s.by_criterion.items() for key, n in flips.items()]
    total = {cid: sum(flips.values()) for cid, flips in s.by_criterion.items()}
    return sorted(rows, key=lambda r: (-total[r[0]], r[0], -r[2], r[1]))


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f} %" if total else "–"


def _header(s: ReplaySummary) -> list[tuple[str, str]]:
    valid = s.total - s.invalid
    return [
        ("Baseline", s.baseline_digest),
        ("Candidate", s.candidate_digest),
        ("Records", f"{s.total:,} ({s.invalid:,} invalid)"),
        ("Changed", f"{s.changed:,} ({_pct(s.changed, valid)} of valid records)"),
        ("Time", f"{s.seconds:.1f} s, {s.per_second:,.0f} records/s"),
    ] + ([("First invalid lines", ", ".join(map(str, s.invalid_lines)))] if s.invalid_lines else [])


# Markdown ------------------------------------------------------------------------------------------------

# Enough to keep a cell one cell, with no code span, link, emphasis or raw HTML; '_' stays readable, as GFM
# ignores it inside words.
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*[]|"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;",
                                                                 "\n": " ", "\r": " "})


def _md(text) -> str:
    return str(text).translate(_MD_SPECIAL)


def _md_table(head: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return out + [""]


def to_markdown(s: ReplaySummary) -> str:
    """The summary as GitHub-flavoured Markdown."""
    out = [f"# {TITLE}", ""]
    out += _md_table(["", ""], [[k, v] for k, v in _header(s)])
    if not s.changed:
        out += ["No record changes under the candidate.", ""]
    sample = lambda key: ", ".join(s.samples.get(key, ()))  # noqa: E731
    if s.outcome_flips:
        out += ["## Outcome flips", ""]
        out += _md_table(["Outcome", "Records", "Sample records"],
                         [[k, n, sample(k)] for k, n in _rows(s.outcome_flips)])
    if s.level_flips:
        out += ["## Supported level changes", ""]
        out += _md_table(["Supported level", "Records"], [[k, n] for k, n in _rows(s.level_flips)])
    if s.by_ruleset:
        out += ["## By rule set", ""]
        out += _md_table(["Rule set", "Records with changed criteria"], [[k, n] for k, n in _rows(s.by_ruleset)])
    if s.by_criterion:
        out += ["## By criterion", ""]
        out += _md_table(["Criterion", "Status", "Records", "Sample records"],
                         [[cid, key, n, sample(cid)] for cid, key, n in _criterion_rows(s)])
    return "\n".join(out)


# HTML ----------------------------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1b1f24; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .ids { font-family: ui-monospace, monospace; font-size: 12.5px; }
.none { color: #57606a; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _html_table(head: list[str], rows: list[list], numeric: AbstractSet[int] = frozenset()) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f'<td class="n">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>\n" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead>\n<tbody>\n{body}</tbody></table>\n"


def to_html(s: ReplaySummary) -> str:
    """The summary as one self-contained HTML page (inline CSS, no scripts, nothing fetched)."""
    sample = lambda key: ", ".join(s.samples.get(key, ()))  # noqa: E731
    header = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>\n" for k, v in _header(s))
    parts = [f"<h1>{_e(TITLE)}</h1>\n<table>\n{header}</table>\n"]
    if not s.changed:
        parts.append('<p class="none">No record changes under the candidate.</p>\n')
    if s.outcome_flips:
        parts.append("<h2>Outcome flips</h2>\n" + _html_table(
            ["Outcome", "Records", "Sample records"],
            [[k, f"{n:,}", sample(k)] for k, n in _rows(s.outcome_flips)], {1}))
    if s.level_flips:
        parts.append("<h2>Supported level changes</h2>\n" + _html_table(
            ["Supported level", "Records"], [[k, f"{n:,}"] for k, n in _rows(s.level_flips)], {1}))
    if s.by_ruleset:
        parts.append("<h2>By rule set</h2>\n" + _html_table(
            ["Rule set", "Records with changed criteria"], [[k, f"{n:,}"] for k, n in _rows(s.by_ruleset)], {1}))
    if s.by_criterion:
        parts.append("<h2>By criterion</h2>\n" + _html_table(
            ["Criterion", "Status", "Records", "Sample records"],
            [[cid, key, f"{n:,}", sample(cid)] for cid, key, n in _criterion_rows(s)], {2}))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(TITLE)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "".join(parts) + "</body>\n</html>\n")
