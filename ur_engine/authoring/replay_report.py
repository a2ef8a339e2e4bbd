"""A replay summary as a Markdown or a self-contained HTML report.

Both open with what an analyst asks first: how many stays each outcome gets before and after, the approval rate,
and how many decisions changed as against stays that changed only in the trail; then the flips, the criteria and
the diff of the edited criteria. The outcome totals are drawn as a text bar chart in Markdown (it reads in a
terminal) and as an SVG chart drawn here in the HTML (no script, nothing fetched).

Record ids and rule ids come from the input and the rule files: every one is escaped (HTML entities in both
formats, so a Markdown renderer that passes HTML through shows ``<script>`` as text).
"""

from __future__ import annotations

import html
from collections.abc import Set as AbstractSet

from ur_engine.authoring.replay import LEVEL, TRAIL_ONLY, ReplaySummary

TITLE = "Rule replay: baseline against candidate"
OUTCOMES = ("approve", "alternative_setting", "pend")  # always shown, in this order; "error" when it occurs
BAR = 40  # characters of the longest bar of the text chart


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
        ("Decisions changed", f"{s.decisions_changed:,} (outcome or supported level)"),
        ("Trail only", f"{s.trail_only:,} (criteria changed, outcome and level the same)"),
        ("Approval rate", f"{_rate(s.approval_rate('before'))} → {_rate(s.approval_rate('after'))}"
                          f" ({_points(s)})"),
        ("Time", f"{s.seconds:.1f} s, {s.per_second:,.0f} records/s"),
    ] + ([("First invalid lines", ", ".join(map(str, s.invalid_lines)))] if s.invalid_lines else [])


def _rate(r: float | None) -> str:
    return "–" if r is None else f"{100 * r:.1f} %"


def _points(s: ReplaySummary) -> str:
    a, b = s.approval_rate("before"), s.approval_rate("after")
    return "–" if a is None or b is None else f"{100 * (b - a):+.1f} points"


def _outcomes(s: ReplaySummary) -> list[tuple[str, int, int]]:
    """(outcome, before, after) for each outcome, the usual three first."""
    extra = sorted((s.before.keys() | s.after.keys()) - set(OUTCOMES))
    return [(o, s.before.get(o, 0), s.after.get(o, 0)) for o in (*OUTCOMES, *extra)]


def text_chart(s: ReplaySummary) -> str:
    """The outcome totals before and after as bars of text, for a terminal."""
    rows = _outcomes(s)
    top = max([n for _, a, b in rows for n in (a, b)] + [1])
    width = max(len(o) for o, _, _ in rows)
    out = []
    for outcome, a, b in rows:
        for label, n in (("baseline ", a), ("candidate", b)):
            bar = "█" * round(BAR * n / top) or ("▏" if n else "")
            out.append(f"{outcome if label.startswith('b') else '':<{width}}  {label} {bar + ' ' if bar else ''}{n:,}")
    return "\n".join(out)


def _trail_rows(s: ReplaySummary) -> list[tuple[str, int]]:
    return _rows(s.trail_by_criterion)


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
    out += ["## Outcomes before and after", ""]
    out += _md_table(["Outcome", "Baseline", "Candidate", "Change"],
                     [[o, f"{a:,}", f"{b:,}", f"{b - a:+,}"] for o, a, b in _outcomes(s)]
                     + [["approval rate", _rate(s.approval_rate("before")), _rate(s.approval_rate("after")),
                         _points(s)]])
    out += ["```text", text_chart(s), "```", ""]
    if s.outcome_flips:
        out += ["## Outcome flips", ""]
        out += _md_table(["Outcome", "Records", "Sample records"],
                         [[k, n, sample(k)] for k, n in _rows(s.outcome_flips)])
    if s.level_flips:
        out += ["## Supported level changes", ""]
        out += _md_table(["Supported level", "Records", "Sample records"],
                         [[k, n, sample(LEVEL + k)] for k, n in _rows(s.level_flips)])
    if s.trail_only:
        out += ["## Trail-only changes", "",
                f"{s.trail_only:,} records changed only in their criteria; their outcome and supported level are "
                f"the same. Sample records: {_md(sample(TRAIL_ONLY))}", ""]
        out += _md_table(["Criterion", "Trail-only records"], [[k, n] for k, n in _trail_rows(s)])
    if s.by_ruleset:
        out += ["## By rule set", ""]
        out += _md_table(["Rule set", "Records with changed criteria"], [[k, n] for k, n in _rows(s.by_ruleset)])
    if s.by_criterion:
        out += ["## By criterion", ""]
        out += _md_table(["Criterion", "Status", "Records", "Sample records"],
                         [[cid, key, n, sample(cid)] for cid, key, n in _criterion_rows(s)])
    if s.edits:
        out += ["## What the edit changed", ""]
        for e in s.edits:
            fence = "`" * max(3, _longest_backticks(e.diff) + 1)
            out += [f"### {_md(e.title)}", "", f"{fence}diff", e.diff, fence, ""]
    return "\n".join(out)


def _longest_backticks(text: str) -> int:
    run = best = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        best = max(best, run)
    return best


# HTML ----------------------------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1b1f24; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .ids { font-family: ui-monospace, monospace; font-size: 12.5px; }
.none { color: #57606a; }
pre.diff { background: #f6f8fa; padding: .6rem; overflow-x: auto; font-size: 12.5px; line-height: 1.35; }
.add { color: #116329; background: #dafbe1; } .del { color: #82071e; background: #ffebe9; }
.hunk { color: #0550ae; }
"""
BASE_COLOUR, CANDIDATE_COLOUR = "#8c959f", "#0969da"


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _html_table(head: list[str], rows: list[list], numeric: AbstractSet[int] = frozenset()) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f'<td class="n">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>\n" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead>\n<tbody>\n{body}</tbody></table>\n"


def svg_chart(s: ReplaySummary) -> str:
    """The outcome totals before and after as grouped horizontal bars, drawn as inline SVG."""
    rows = _outcomes(s)
    top = max([n for _, a, b in rows for n in (a, b)] + [1])
    label_w, bar_w, bar_h, gap = 150, 380, 16, 12
    height = 28 + len(rows) * (2 * bar_h + gap)
    width = label_w + bar_w + 80
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="system-ui, sans-serif" font-size="12">',
           "<title>Records by outcome, baseline against candidate</title>",
           f'<rect x="{label_w}" y="4" width="12" height="12" fill="{BASE_COLOUR}"/>'
           f'<text x="{label_w + 16}" y="14">baseline</text>',
           f'<rect x="{label_w + 90}" y="4" width="12" height="12" fill="{CANDIDATE_COLOUR}"/>'
           f'<text x="{label_w + 106}" y="14">candidate</text>']
    y = 28
    for outcome, a, b in rows:
        out.append(f'<text x="0" y="{y + bar_h + 4}">{_e(outcome)}</text>')
        for n, colour, who in ((a, BASE_COLOUR, "baseline"), (b, CANDIDATE_COLOUR, "candidate")):
            w = round(bar_w * n / top, 1)
            out.append(f'<rect class="bar" x="{label_w}" y="{y}" width="{w}" height="{bar_h - 2}" fill="{colour}">'
                       f"<title>{_e(outcome)}, {who}: {n:,}</title></rect>"
                       f'<text x="{label_w + w + 4}" y="{y + bar_h - 4}">{n:,}</text>')
            y += bar_h
        y += gap
    out.append("</svg>")
    return "\n".join(out)


def _html_diff(diff: str) -> str:
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    lines = []
    for line in diff.splitlines():
        kind = None if line.startswith(("+++", "---")) else kinds.get(line[:1])
        lines.append(f'<span class="{kind}">{_e(line)}</span>' if kind else _e(line))
    return '<pre class="diff">' + "\n".join(lines) + "</pre>\n"


def to_html(s: ReplaySummary) -> str:
    """The summary as one self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched)."""
    sample = lambda key: ", ".join(s.samples.get(key, ()))  # noqa: E731
    header = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>\n" for k, v in _header(s))
    parts = [f"<h1>{_e(TITLE)}</h1>\n<table>\n{header}</table>\n"]
    if not s.changed:
        parts.append('<p class="none">No record changes under the candidate.</p>\n')
    parts.append("<h2>Outcomes before and after</h2>\n" + _html_table(
        ["Outcome", "Baseline", "Candidate", "Change"],
        [[o, f"{a:,}", f"{b:,}", f"{b - a:+,}"] for o, a, b in _outcomes(s)]
        + [["approval rate", _rate(s.approval_rate("before")), _rate(s.approval_rate("after")), _points(s)]],
        {1, 2, 3}) + svg_chart(s) + "\n")
    if s.outcome_flips:
        parts.append("<h2>Outcome flips</h2>\n" + _html_table(
            ["Outcome", "Records", "Sample records"],
            [[k, f"{n:,}", sample(k)] for k, n in _rows(s.outcome_flips)], {1}))
    if s.level_flips:
        parts.append("<h2>Supported level changes</h2>\n" + _html_table(
            ["Supported level", "Records", "Sample records"],
            [[k, f"{n:,}", sample(LEVEL + k)] for k, n in _rows(s.level_flips)], {1}))
    if s.trail_only:
        parts.append(f"<h2>Trail-only changes</h2>\n<p>{s.trail_only:,} records changed only in their criteria; "
                     f"their outcome and supported level are the same. Sample records: "
                     f"{_e(sample(TRAIL_ONLY))}</p>\n"
                     + _html_table(["Criterion", "Trail-only records"],
                                   [[k, f"{n:,}"] for k, n in _trail_rows(s)], {1}))
    if s.by_ruleset:
        parts.append("<h2>By rule set</h2>\n" + _html_table(
            ["Rule set", "Records with changed criteria"], [[k, f"{n:,}"] for k, n in _rows(s.by_ruleset)], {1}))
    if s.by_criterion:
        parts.append("<h2>By criterion</h2>\n" + _html_table(
            ["Criterion", "Status", "Records", "Sample records"],
            [[cid, key, f"{n:,}", sample(cid)] for cid, key, n in _criterion_rows(s)], {2}))
    if s.edits:
        parts.append("<h2>What the edit changed</h2>\n" + "".join(
            f"<h3>{_e(e.title)}</h3>\n{_html_diff(e.diff)}" for e in s.edits))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(TITLE)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "".join(parts) + "</body>\n</html>\n")
