"""Charts drawn on the server as SVG text: no script, no library, works offline.
Every label is escaped; the numbers are the caller's."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 34
INK, MUTED, LINE = "#1d2433", "#687083", "#dde1e8"


def _svg(body: list[str], width: int, height: int, title: str) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _ticks(top: float) -> list[float]:
    """Round steps from 0 to at least top (a nice scale for the y axis)."""
    top = top or 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000):
        if top / step <= 5:
            break
    else:
        step = 10 ** len(str(int(top // 5)))
    count = int(-(-top // step))
    return [i * step for i in range(count + 1)]


def _axes(ticks, scale, plot_width, fmt) -> list[str]:
    out = []
    for value in ticks:
        y = TOP + scale(value)
        out.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_width}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{LINE}"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{MUTED}">{escape(fmt(value))}</text>'
        )
    return out


def columns(
    points: list[tuple[str, float]],
    title: str,
    fmt=str,
    color="#3a6fd8",
    overlay: list[float] | None = None,
) -> str:
    """A bar per (label, value), labels under a few of them; overlay: a second value
    per bar drawn over it (the failed part of each day's tasks, in red)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    ticks = _ticks(max((v for _, v in points), default=0))
    scale_top = ticks[-1] or 1
    y_of = lambda v: plot_h - plot_h * v / scale_top  # noqa: E731
    body = _axes(ticks, y_of, plot_w, fmt)
    slot = plot_w / max(len(points), 1)
    every = max(1, len(points) // 6)
    for i, (label, value) in enumerate(points):
        x, w = LEFT + i * slot + slot * 0.1, max(slot * 0.8, 1)
        h = plot_h * value / scale_top
        body.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{w:.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>{escape(label)}: '
            f"{escape(fmt(value))}</title></rect>"
        )
        if overlay and overlay[i]:
            oh = plot_h * overlay[i] / scale_top
            body.append(
                f'<rect x="{x:.1f}" y="{TOP + plot_h - oh:.1f}" width="{w:.1f}" '
                f'height="{oh:.1f}" fill="#d64545"><title>{escape(label)}: '
                f"{escape(fmt(overlay[i]))} failed</title></rect>"
            )
        if i % every == 0:
            body.append(
                f'<text x="{x + w / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" font-size="11" '
                f'text-anchor="middle" fill="{MUTED}">{escape(label)}</text>'
            )
    return _svg(body, WIDTH, HEIGHT, title)


def line(points: list[tuple[str, float]], title: str, fmt=str) -> str:
    """A line through (label, value) points, with a dot at each."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    ticks = _ticks(max((v for _, v in points), default=0))
    scale_top = ticks[-1] or 1
    y_of = lambda v: plot_h - plot_h * v / scale_top  # noqa: E731
    body = _axes(ticks, y_of, plot_w, fmt)
    step = plot_w / max(len(points) - 1, 1)
    every = max(1, len(points) // 6)
    xy = [(LEFT + i * step, TOP + y_of(v)) for i, (_, v) in enumerate(points)]
    if len(xy) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        body.append(f'<polyline points="{path}" fill="none" stroke="#d64545" stroke-width="2"/>')
    for i, ((x, y), (label, value)) in enumerate(zip(xy, points)):
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#d64545"><title>'
            f"{escape(label)}: {escape(fmt(value))}</title></circle>"
        )
        if i % every == 0:
            body.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" font-size="11" '
                f'text-anchor="middle" fill="{MUTED}">{escape(label)}</text>'
            )
    return _svg(body, WIDTH, HEIGHT, title)


def bars(rows: list[tuple[str, float]], title: str, fmt=str, color="#3a6fd8") -> str:
    """Horizontal bars, one per (label, value), the label above its bar."""
    row_h, width = 34, WIDTH
    height = TOP + row_h * max(len(rows), 1)
    top = max((v for _, v in rows), default=0) or 1
    body = []
    for i, (label, value) in enumerate(rows):
        y = TOP + i * row_h
        w = (width - 120) * value / top
        shown = label if len(label) <= 80 else label[:79] + "…"
        body.append(
            f'<text x="4" y="{y + 9}" font-size="12" fill="{INK}" '
            f'font-family="monospace">{escape(shown)}</text>'
        )
        body.append(
            f'<rect x="4" y="{y + 13}" width="{max(w, 1):.1f}" height="12" rx="2" '
            f'fill="{color}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
        )
        body.append(
            f'<text x="{w + 10:.1f}" y="{y + 23}" font-size="11" fill="{MUTED}">'
            f"{escape(fmt(value))}</text>"
        )
    return _svg(body, width, height, title)
