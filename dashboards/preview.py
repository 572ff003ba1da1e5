"""`boxoffice metabase preview`: each dashboard as a page of its own (REPORTS_DIR/dashboards/<dashboard>.html),
every card evaluated on the warehouse as the role its connection uses, with its filters empty, and drawn as
Metabase would show it: a number (with its change for a trend), a table, or a bar or line chart as inline SVG.
No remote script or font: the page opens where no Metabase runs."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql as pgsql

from dashboards.exposures import slug
from dashboards.spec import GRID_COLUMNS, Card, Dashboard
from dashboards.sql import render

TABLE_ROWS = 25  # rows shown of a table card (Metabase pages them)
CHART_WIDTH, CHART_HEIGHT = 560, 200
COLOURS = ("#509ee3", "#88bf4d", "#a989c5", "#ef8c8c", "#f9d45c", "#98d9d9")


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple]


def evaluate(conn: psycopg.Connection, dashboard: Dashboard, role: str, card: Card) -> Result:
    text, params = render(card.sql, card.variables, dashboard.field_filters(card), {})
    conn.execute(pgsql.SQL("set role {}").format(pgsql.Identifier(role)))
    try:
        cursor = conn.execute(text, params)
        return Result([c.name for c in cursor.description], cursor.fetchall())
    finally:
        conn.execute("reset role")


def number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, Decimal | float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def scalar_html(card: Card, result: Result) -> str:
    if not result.rows:
        return '<p class="empty">No results</p>'
    column = result.columns.index(card.metrics[0]) if card.metrics else 0
    value = result.rows[-1][column]
    change = ""
    if card.display == "smartscalar" and len(result.rows) > 1:
        previous = result.rows[-2][column]
        if previous not in (None, 0) and value is not None:
            pct = (Decimal(value) - Decimal(previous)) / abs(Decimal(previous)) * 100
            change = f'<p class="change">{pct:+.1f}% vs previous: {number(previous)}</p>'
        else:
            change = f'<p class="change">previous: {number(previous)}</p>'
    return f'<p class="number">{number(value)}</p>{change}'


def table_html(result: Result) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in result.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(number(v))}</td>" for v in row) + "</tr>"
        for row in result.rows[:TABLE_ROWS]
    )
    more = f'<p class="more">{len(result.rows):,} rows</p>' if len(result.rows) > TABLE_ROWS else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def series_of(card: Card, result: Result) -> tuple[list, dict[str, list]]:
    """(x values, series name -> values): the metrics, or the second dimension's values as series."""
    x_at = result.columns.index(card.dimensions[0])
    xs = list(dict.fromkeys(row[x_at] for row in result.rows))
    if len(card.dimensions) > 1:
        split_at, value_at = result.columns.index(card.dimensions[1]), result.columns.index(card.metrics[0])
        series: dict[str, dict] = {}
        for row in result.rows:
            series.setdefault(str(row[split_at]), {})[row[x_at]] = row[value_at]
        return xs, {name: [values.get(x) for x in xs] for name, values in series.items()}
    columns = {m: result.columns.index(m) for m in card.metrics}
    by_x = {row[x_at]: row for row in result.rows}
    return xs, {m: [by_x[x][i] for x in xs] for m, i in columns.items()}


def chart_svg(card: Card, result: Result) -> str:
    if not result.rows:
        return '<p class="empty">No results</p>'
    xs, series = series_of(card, result)
    values = [float(v) for vs in series.values() for v in vs if v is not None]
    top, bottom = max(values + [0.0]), min(values + [0.0])
    span = (top - bottom) or 1.0
    left, base = 60, CHART_HEIGHT - 20

    def y(v) -> float:
        return base - (float(v or 0) - bottom) / span * (base - 10)

    step = (CHART_WIDTH - left) / max(len(xs), 1)
    parts = [
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{CHART_WIDTH}" y2="{y(0):.1f}" stroke="#ccc"/>',
        f'<text x="{left - 4}" y="14" text-anchor="end">{number(Decimal(str(top)))}</text>',
    ]
    for i, vs in enumerate(series.values()):
        colour = COLOURS[i % len(COLOURS)]
        if card.display == "line":
            points = " ".join(f"{left + step * (j + 0.5):.1f},{y(v):.1f}" for j, v in enumerate(vs) if v is not None)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        else:
            width = step / (len(series) + 1)
            for j, v in enumerate(vs):
                if v is not None:
                    x0, y0 = left + step * j + width * (i + 0.5), min(y(v), y(0))
                    parts.append(
                        f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{width:.1f}" '
                        f'height="{abs(y(0) - y(v)):.1f}" fill="{colour}"/>'
                    )
    ends = f"{number(xs[0])} … {number(xs[-1])}" if len(xs) > 1 else number(xs[0])
    parts.append(f'<text x="{left}" y="{CHART_HEIGHT - 4}">{html.escape(ends)}</text>')
    legend = " ".join(
        f'<span style="color:{COLOURS[i % len(COLOURS)]}">■</span> {html.escape(name)}' for i, name in enumerate(series)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" '
        f'width="100%">{"".join(parts)}</svg><p class="legend">{legend}</p>'
    )


def card_html(card: Card, result: Result, col: int) -> str:
    if card.display in ("scalar", "smartscalar"):
        body = scalar_html(card, result)
    elif card.display == "table" or not card.dimensions:
        body = table_html(result)
    else:
        body = chart_svg(card, result)
    span = f"grid-column: {col + 1} / span {card.size[0]}"
    return f'<section class="card {card.display}" style="{span}"><h2>{html.escape(card.name)}</h2>{body}</section>'


STYLE = f"""
@page {{ size: A3 landscape; margin: 10mm; }}
body {{ font: 13px system-ui, sans-serif; margin: 24px; color: #2e353b; }}
.grid {{ display: grid; grid-template-columns: repeat({GRID_COLUMNS}, 1fr); gap: 12px; }}
.card {{ border: 1px solid #e0e4e9; border-radius: 8px; padding: 10px; overflow: hidden; break-inside: avoid; }}
h2 {{ font-size: 13px; margin: 0 0 6px; }} .number {{ font-size: 26px; font-weight: 700; margin: 4px 0; }}
.change, .more, .legend, .empty {{ color: #696e7b; margin: 2px 0; }}
table {{ border-collapse: collapse; font-size: 11px; }} td, th {{ border-bottom: 1px solid #eee; padding: 2px 6px; }}
svg text {{ font-size: 10px; fill: #696e7b; }}
"""


def page(dashboard: Dashboard, results: dict[str, Result], roles: dict[str, str]) -> str:
    cards = "".join(card_html(card, results[card.name], col) for card, _, col in dashboard.layout())
    role = roles[dashboard.connection.role]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(dashboard.name)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(dashboard.name)}</h1>"
        f"<p>{html.escape(dashboard.description)} As the role <b>{html.escape(role)}</b> sees it "
        f"({html.escape(dashboard.connection.name)}), filters empty.</p><div class='grid'>{cards}</div></body></html>"
    )


def write(warehouse_dsn: str, dashboards: list[Dashboard], roles: dict[str, str], folder: Path) -> list[Path]:
    """One page per dashboard, and an index; `roles`: connection role key -> the warehouse's role name."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with psycopg.connect(warehouse_dsn, autocommit=True) as conn:
        for dashboard in dashboards:
            role = roles[dashboard.connection.role]
            results = {card.name: evaluate(conn, dashboard, role, card) for card in dashboard.cards}
            path = folder / f"{slug(dashboard.name)}.html"
            path.write_text(page(dashboard, results, roles))
            written.append(path)
    links = "".join(
        f"<li><a href='{p.name}'>{html.escape(d.name)}</a></li>" for d, p in zip(dashboards, written, strict=True)
    )
    (folder / "index.html").write_text(f"<!doctype html><meta charset='utf-8'><h1>Dashboards</h1><ul>{links}</ul>")
    return written
