"""Server-rendered SVG charts: a vital sign or lab over the stay against the criterion's threshold.

SVG drawn here and styled by the site's style sheet (classes, no inline style), so it needs no JavaScript and
passes the strict Content-Security-Policy. Values are in the fact's canonical unit, as the criteria read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from .words import OPS, Words, number, when

W, H = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 26, 30


@dataclass
class Point:
    time: datetime
    time_text: str
    value: float


def readings(adm, words: Words, base: str) -> list[Point]:
    """Every reading of observation ``base`` in the record, in the fact's unit, the earliest first."""
    out = []
    for o in adm.observations or ():
        if o.comparator is not None:
            continue  # a bound ("> 15") is not a point on a line
        for ob in words.facts.definitions(o.code):
            if ob.name != base or (ob.where and not all(getattr(o, k) in v for k, v in ob.where.items())):
                continue
            try:
                value = ob.to_unit(o.value, o.unit)
            except KeyError:
                continue
            out.append(Point(o.time, o.time_text, float(value)))
            break
    return sorted(out, key=lambda p: p.time)


def chart(words: Words, base: str, points: list[Point], thresholds: list[tuple[str, float]],
          window: tuple[datetime, datetime] | None = None) -> Markup:
    """One SVG: the readings as a line of points, each threshold as a dashed line, the review window shaded."""
    unit = words.unit(f"{base}.max")
    name = words.obs_text(base)
    values = [p.value for p in points] + [t for _, t in thresholds]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.12 or max(abs(hi) * 0.1, 1)
    lo, hi = lo - pad, hi + pad
    times = [p.time for p in points]
    if window:
        times += [t for t in window if min(p.time for p in points) <= t <= max(p.time for p in points)]
    t0, t1 = min(times), max(times)
    span = (t1 - t0).total_seconds() or 1.0

    def x(t: datetime) -> float:
        if t1 == t0:
            return LEFT + (W - LEFT - RIGHT) / 2
        return round(LEFT + (t - t0).total_seconds() / span * (W - LEFT - RIGHT), 1)

    def y(v: float) -> float:
        return round(TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM), 1)

    def beyond(v: float) -> bool:
        return any({"lt": v < t, "lte": v <= t, "gt": v > t, "gte": v >= t}.get(op, False) for op, t in thresholds)

    described = "; ".join(f"{words.value(base + '.max', p.value)} at {when(p.time_text)}" for p in points)
    limits = ", ".join(f"{OPS[op]} {words.value(base + '.max', t)}" for op, t in thresholds)
    out = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" data-fact="{escape(base)}" '
           f'aria-label="{escape(name)} over the stay; criterion threshold {escape(limits)}">',
           f"<title>{escape(name)}</title><desc>{escape(described)}</desc>"]
    if window:
        a, b = max(window[0], t0), min(window[1], t1)
        if a < b:
            out.append(f'<rect class="window" x="{x(a)}" y="{TOP}" width="{round(x(b) - x(a), 1)}" '
                       f'height="{H - TOP - BOTTOM}"><title>{escape(words.window)}</title></rect>')
    for v in (lo + pad, (lo + hi) / 2, hi - pad):  # three value ticks
        out.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v)}" y2="{y(v)}"/>'
                   f'<text class="tick" x="{LEFT - 6}" y="{y(v) + 4}" text-anchor="end">'
                   f'{escape(number(round(v, 1)))}</text>')
    for op, t in thresholds:
        label = f"{OPS[op]} {words.value(base + '.max', t)}"
        out.append(f'<line class="threshold" data-threshold="{number(t)}" x1="{LEFT}" x2="{W - RIGHT}" '
                   f'y1="{y(t)}" y2="{y(t)}"><title>Criterion threshold: {escape(label)}</title></line>'
                   f'<text class="threshold-label" x="{W - RIGHT - 4}" y="{y(t) - 5}" text-anchor="end">'
                   f'{escape(label)}</text>')
    if len(points) > 1:
        out.append('<polyline class="series" points="' + " ".join(f"{x(p.time)},{y(p.value)}" for p in points)
                   + '"/>')
    for p in points:
        cls = "point beyond" if beyond(p.value) else "point"
        out.append(f'<circle class="{cls}" cx="{x(p.time)}" cy="{y(p.value)}" r="4.5" '
                   f'data-value="{number(p.value)}" data-time="{escape(p.time_text)}"><title>'
                   f'{escape(words.value(base + ".max", p.value))} at {escape(when(p.time_text))}</title></circle>')
    base_y = H - BOTTOM + 16
    out.append(f'<text class="tick" x="{LEFT}" y="{base_y}">{escape(when(points[0].time_text))}</text>')
    if len(points) > 1:
        out.append(f'<text class="tick" x="{W - RIGHT}" y="{base_y}" text-anchor="end">'
                   f'{escape(when(points[-1].time_text))}</text>')
    out.append(f'<text class="tick unit" x="4" y="14">{escape(unit or "value")}</text></svg>')
    return Markup("".join(out))
