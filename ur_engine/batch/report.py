"""A batch summary (``BatchSummary.to_dict()``) as one self-contained HTML page with plots.

The plots are SVG built here rather than by matplotlib: nothing to install (matplotlib and what it pulls in
take ~165 MB and ~0.5 s to import), the same summary always gives the same bytes, and every label is plain
escaped text. Record-derived strings (rule set and criterion ids, pend reasons) are all escaped.
"""

from __future__ import annotations

import html
import re

from ur_engine.vocabulary import ACUTE_LEVELS, POST_ACUTE_SETTINGS

OUTCOME_ORDER = ("approve", "alternative_setting", "pend", "error")
COLOURS = {"approve": "#2e7d32", "alternative_setting": "#1565c0", "pend": "#ef6c00", "error": "#c62828"}
CHANGE_ORDER = ("escalation", "de-escalation")
CHANGE_COLOURS = {"escalation": "#6a1b9a", "de-escalation": "#00838f"}
OTHER = "#757575"
BAR = "#5c6bc0"
LEVEL_ORDER = ACUTE_LEVELS + POST_ACUTE_SETTINGS + ("none",)
TOP_CRITERIA = 15
CHAR = 7.0  # px per character at 12 px: enough to lay labels out without measuring text
MAX_LABEL = 36  # characters; a longer label is cut, its whole text stays in the tooltip
UNKNOWN = "unknown"

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;background:#f5f6f8}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 16px}h2{font-size:17px;margin:0 0 8px}h3{font-size:15px;margin:16px 0 4px}
section{background:#fff;border:1px solid #dde;border-radius:6px;padding:16px;margin:0 0 16px}
.figures{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 16px}
.figure{background:#fff;border:1px solid #dde;border-radius:6px;padding:10px 16px;min-width:130px}
.figure b{display:block;font-size:22px}.figure span{color:#666;font-size:12px}
svg{max-width:100%;height:auto;display:block}
svg text{font:12px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:#222}
svg text.light{fill:#fff}svg text.axis{fill:#666}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555;font-size:13px;margin:8px 0 0}.empty{color:#777}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _num(n) -> str:
    if n is None:
        return "–"
    return f"{n:,}" if isinstance(n, int) else f"{n:,.1f}"


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f} %" if total else "–"


def _cut(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"


def _rows(counts: dict) -> list[tuple[str, int]]:
    """Largest first, then by name: the same summary always gives the same page."""
    return sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    return (f'<svg viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
            f'role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>' + "".join(body) + "</svg>")


def _hbars(rows: list[tuple[str, int]], title: str, total: int, colours: dict | None = None) -> str:
    """Horizontal bars, one per (label, count), labelled with the count and its share of ``total``."""
    label_w = min(MAX_LABEL, max(len(label) for label, _ in rows)) * CHAR + 12
    bar_w, row_h = 420, 24
    top = max(n for _, n in rows) or 1
    body = []
    for i, (label, n) in enumerate(rows):
        y = 4 + i * row_h
        w = max(1.0, bar_w * n / top) if n else 0
        fill = (colours or {}).get(label, OTHER if colours else BAR)
        tip = f"{label}: {_num(n)} ({_pct(n, total)})"
        body.append(f'<text x="{label_w - 8:.0f}" y="{y + 16}" text-anchor="end">{_e(_cut(label))}'
                    f'<title>{_e(label)}</title></text>'
                    f'<rect x="{label_w:.0f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{fill}" '
                    f'rx="2"><title>{_e(tip)}</title></rect>'
                    f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{_num(n)} · {_pct(n, total)}</text>')
    return _svg(label_w + bar_w + 110, 8 + len(rows) * row_h, title, body)


def _legend(keys: list[str], colours: dict = COLOURS) -> str:
    return '<p class="legend">' + "".join(
        f'<span><i style="background:{colours.get(k, OTHER)}"></i>{_e(k)}</span>' for k in keys) + "</p>"


def _order(keys, first=OUTCOME_ORDER) -> list[str]:
    """Known names in their own order, then the others alphabetically."""
    keys = set(keys)
    return [k for k in first if k in keys] + sorted(k for k in keys if k not in first)


def _stacked(by_ruleset: dict, title: str, colours: dict = COLOURS, order: tuple = OUTCOME_ORDER,
             of: str = "the rule set") -> str:
    """One bar per rule set (or other row), split by outcome (or other part); bar length is its total."""
    names = list(by_ruleset)
    outcomes = _order({o for counts in by_ruleset.values() for o in counts}, order)
    label_w = min(MAX_LABEL, max(len(str(n)) for n in names)) * CHAR + 12
    bar_w, row_h = 420, 26
    top = max(sum(c.values()) for c in by_ruleset.values()) or 1
    body = []
    for i, name in enumerate(names):
        counts, y, x = by_ruleset[name], 4 + i * row_h, label_w
        total = sum(counts.values())
        body.append(f'<text x="{label_w - 8:.0f}" y="{y + 17}" text-anchor="end">{_e(_cut(str(name)))}'
                    f'<title>{_e(name)}</title></text>')
        for o in outcomes:
            n = counts.get(o, 0)
            if not n:
                continue
            w = bar_w * n / top
            tip = f"{name}, {o}: {_num(n)} ({_pct(n, total)} of {of})"
            body.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
                        f'fill="{colours.get(o, OTHER)}"><title>{_e(tip)}</title></rect>')
            x += w
        body.append(f'<text x="{x + 6:.1f}" y="{y + 17}">{_num(total)}</text>')
    return _legend(outcomes, colours) + _svg(label_w + bar_w + 70, 8 + len(names) * row_h, title, body)


def _matrix(cells: dict, rows: list[str], cols: list[str], row_name: str, col_name: str, title: str) -> str:
    """A count per (row, column) as a shaded grid; the diagonal (row equals column, known) is outlined."""
    label_w = max(max(len(r) for r in rows), len(row_name) + 2) * CHAR + 16
    cell_w = max(56.0, max(len(c) for c in cols) * CHAR + 12)
    cell_h, head = 28, 44
    top = max(cells.values()) or 1
    body = [f'<text class="axis" x="{label_w:.0f}" y="14">{_e(col_name)} →</text>',
            f'<text class="axis" x="4" y="{head - 8}">{_e(row_name)} ↓</text>']
    for j, c in enumerate(cols):
        body.append(f'<text x="{label_w + j * cell_w + cell_w / 2:.1f}" y="{head - 8}" '
                    f'text-anchor="middle">{_e(c)}</text>')
    for i, r in enumerate(rows):
        y = head + i * cell_h
        body.append(f'<text x="{label_w - 8:.0f}" y="{y + 18}" text-anchor="end">{_e(r)}</text>')
        for j, c in enumerate(cols):
            n = cells.get((r, c), 0)
            x = label_w + j * cell_w
            shade = 0.1 + 0.9 * n / top if n else 0
            fill = f'fill="{BAR}" fill-opacity="{shade:.2f}"' if n else 'fill="#f3f3f5"'
            stroke = ' stroke="#222" stroke-width="1.5"' if r == c != UNKNOWN else ' stroke="#fff"'
            body.append(f'<rect x="{x + 1:.1f}" y="{y + 1}" width="{cell_w - 2:.1f}" height="{cell_h - 2}" '
                        f'{fill}{stroke}><title>{_e(f"{row_name} {r}, {col_name} {c}: {n:,}")}</title></rect>')
            if n:
                cls = ' class="light"' if shade > 0.55 else ""
                body.append(f'<text{cls} x="{x + cell_w / 2:.1f}" y="{y + 18}" '
                            f'text-anchor="middle">{n:,}</text>')
    return _svg(label_w + len(cols) * cell_w + 8, head + len(rows) * cell_h + 4, title, body)


def _level_key(name: str):
    return (LEVEL_ORDER.index(name), "") if name in LEVEL_ORDER else (len(LEVEL_ORDER), name)


def _midnight_key(value: str):
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def _requested_vs_supported(counts: dict) -> str:
    cells: dict = {}
    for key, n in counts.items():
        requested, _, supported = str(key).partition("→")
        cells[(requested, supported or "?")] = cells.get((requested, supported or "?"), 0) + n
    rows = sorted({r for r, _ in cells}, key=_level_key)
    cols = sorted({c for _, c in cells}, key=_level_key)
    return (_matrix(cells, rows, cols, "requested", "supported", "Requested against supported level")
            + '<p class="note">Outlined: the level requested is the level the criteria support. '
              '“none”: no level supported.</p>')


STAY = re.compile(r"expected (\S+), actual (\S+)")


def _length_of_stay(counts: dict) -> str:
    cells: dict = {}
    odd = []
    for key, n in counts.items():
        m = STAY.fullmatch(str(key))
        if not m:  # a summary from another version: show it rather than drop it
            odd.append((str(key), n))
            continue
        exp, act = (UNKNOWN if v == "None" else v for v in m.groups())
        cells[(exp, act)] = cells.get((exp, act), 0) + n
    out = []
    stays = sum(cells.values())
    no_actual = sum(n for (_, a), n in cells.items() if a == UNKNOWN)
    no_expected = sum(n for (e, _), n in cells.items() if e == UNKNOWN)
    notes = []
    if cells and no_actual == stays:  # nothing to compare against: the expected midnights alone, as bars
        expected: dict = {}
        for (e, _), n in cells.items():
            expected[e] = expected.get(e, 0) + n
        rows = [("not given" if e == UNKNOWN else f"{e} midnight{'' if e == '1' else 's'}", expected[e])
                for e in sorted(expected, key=_midnight_key)]
        out.append(_hbars(rows, "Expected midnights", stays))
        notes.append("Actual midnights are unknown for every stay: none has been discharged yet (no "
                     "discharge_time), so the expected midnights are shown alone.")
    elif cells:
        expected_keys = sorted({r for r, _ in cells}, key=_midnight_key)
        actual_keys = sorted({c for _, c in cells}, key=_midnight_key)
        out.append(_matrix(cells, expected_keys, actual_keys, "expected", "actual", "Expected against actual midnights"))
        notes.append("Outlined: the stay lasted the midnights expected.")
        if no_actual:
            notes.append(f"Actual midnights are unknown for {no_actual:,} of {stays:,} stays "
                         f"({_pct(no_actual, stays)}): not yet discharged.")
    if no_expected:
        notes.append(f"{no_expected:,} stays give no expected_midnights.")
    if notes:
        out.append('<p class="note">' + " ".join(_e(n) for n in notes) + "</p>")
    if odd:
        out.append(_table(["stay", "records"], _rows(dict(odd))))
    return "".join(out) or '<p class="empty">No length-of-stay data in this summary.</p>'


def _day_key(day: str):
    return (0, int(day), "") if str(day).isdigit() else (1, 0, str(day))


def _by_day(by_day: dict) -> str:
    """Escalations and de-escalations of a day-by-day run: by day of care, by levels, and the late escalations."""
    stays = by_day.get("stays", 0)
    up, down = by_day.get("escalations") or {}, by_day.get("de_escalations") or {}
    late = by_day.get("late_escalations") or {}
    n_late = late.get("stays", 0)
    figures = [("stays judged day by day", _num(stays)),
               ("late escalations", f"{_num(n_late)} ({_pct(n_late, stays)})"),
               ("escalations", _num(up.get("count", 0))), ("de-escalations", _num(down.get("count", 0)))]
    out = ['<div class="figures">'] + [f'<div class="figure"><b>{_e(v)}</b><span>{_e(k)}</span></div>'
                                       for k, v in figures] + ["</div>"]
    days: dict = {}
    for kind, counts in (("escalation", up.get("days") or {}), ("de-escalation", down.get("days") or {})):
        for day, n in counts.items():
            days.setdefault(str(day), {})[kind] = n
    if not days:
        out.append(_empty("The supported level never changed from one day of care to the next."))
        return "".join(out)
    rows = {f"day {d}": days[d] for d in sorted(days, key=_day_key)}
    out.append("<h3>By day of care</h3>")
    out.append(_stacked(rows, "Escalations and de-escalations by day of care", CHANGE_COLOURS, CHANGE_ORDER,
                        of="the changes that day"))
    moves = [(label.replace("→", " → "), n, kind) for kind, counts in (("escalation", up), ("de-escalation", down))
             for label, n in _rows(counts.get("levels") or {})]
    out.append("<h3>By level, from → to</h3>")
    out.append(_hbars([(label, n) for label, n, _ in moves], "Changes of level, from → to",
                      up.get("count", 0) + down.get("count", 0),
                      {label: CHANGE_COLOURS[kind] for label, _, kind in moves}))
    out.append('<p class="note">A day of care is 24 h from arrival. A day the record gives no data for moves '
               'nothing: changes are read between days that have data. Shares are of all changes; '
               '“none”: no level supported that day.</p>')
    examples = late.get("examples") or []
    if examples:
        body = "".join(f'<tr><td>{_e(x.get("record_id"))}</td><td class="n">{_e(x.get("day"))}</td>'
                       f'<td>{_e(x.get("from") or "none")} → {_e(x.get("to") or "none")}</td></tr>' for x in examples)
        out.append(f'<h3>Late escalations: the supported level rose after day 1</h3>'
                   f'<p class="note">What an admission review, which reads the first 24 h, cannot see. The first '
                   f'{len(examples):,} of {n_late:,} stays, in input order, each at its first rise.</p>'
                   f'<table><thead><tr><th>record</th><th class=n>day</th><th>level</th></tr></thead>'
                   f'<tbody>{body}</tbody></table>')
    return "".join(out)


def _table(head: list[str], rows: list[tuple], total: int | None = None) -> str:
    th = "".join(f'<th{" class=n" if i else ""}>{_e(h)}</th>' for i, h in enumerate(head))
    body = []
    for label, n in rows:
        share = f'<td class="n">{_pct(n, total)}</td>' if total is not None else ""
        body.append(f'<tr><td>{_e(label)}</td><td class="n">{_num(n)}</td>{share}</tr>')
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(title: str, content: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{content}</section>"


def _empty(what: str) -> str:
    return f'<p class="empty">{_e(what)}</p>'


def to_html(summary: dict, title: str = "Batch review") -> str:
    """The summary as one HTML page: inline CSS and SVG, no script, no external file."""
    total, errors = summary.get("total", 0), summary.get("errors", 0)
    outcomes = summary.get("outcomes") or {}
    figures = [("records", _num(total)), ("reviewed", _num(total - errors)),
               ("errors", f"{_num(errors)} ({_pct(errors, total)})"),
               ("seconds", _num(float(summary.get("seconds") or 0))),
               ("records / s", _num(summary.get("per_second")))]
    parts = ['<div class="figures">'] + [f'<div class="figure"><b>{_e(v)}</b><span>{_e(k)}</span></div>'
                                         for k, v in figures] + ["</div>"]
    rows = [(o, outcomes[o]) for o in _order(outcomes)]
    parts.append(_section("Outcomes", _hbars(rows, "Outcomes", total, COLOURS) if rows
                          else _empty("No record in this batch.")))
    rvs = summary.get("requested_vs_supported") or {}
    parts.append(_section("Requested against supported level", _requested_vs_supported(rvs) if rvs
                          else _empty("No decision in this batch.")))
    by_day = summary.get("by_day")
    if by_day:  # a day-by-day run only
        parts.append(_section("Escalations day by day", _by_day(by_day)))
    by_rs = summary.get("by_ruleset") or {}
    parts.append(_section("Outcomes by rule set", _stacked(by_rs, "Outcomes by rule set") if by_rs
                          else _empty("No rule set applied to any record.")))
    not_met = _rows(summary.get("criteria_not_met") or {})[:TOP_CRITERIA]
    valid = total - errors
    parts.append(_section(f"Criteria most often not met (top {TOP_CRITERIA})",
                          _hbars(not_met, "Criteria most often not met", valid)
                          + '<p class="note">Share of the records reviewed without error.</p>' if not_met
                          else _empty("No criterion was found not met.")))
    pends = _rows(summary.get("pend_reasons") or {})
    parts.append(_section("Pend reasons", _table(["reason", "records", "share of pends"], pends,
                                                 outcomes.get("pend", 0)) if pends
                          else _empty("No record was pended.")))
    parts.append(_section("Length of stay", _length_of_stay(summary.get("length_of_stay") or {})))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body><main><h1>{_e(title)}</h1>\n"
            + "\n".join(parts) + "\n</main></body></html>\n")
