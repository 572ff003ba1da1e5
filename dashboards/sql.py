"""A native question's SQL as Metabase runs it, for the tests, the preview and the benchmark (Metabase itself is
a JVM server that cannot run here): `[[ ... ]]` clauses kept only when every tag in them has a value; a variable
`{{name}}` bound as a parameter; a field filter `{{name}}` replaced by a predicate on its column, or `1 = 1` when
it has no value (docs: questions/native-editor/sql-parameters)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

TAG = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")
OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)
RELATIVE = re.compile(r"past(\d+)(day|week|month|year)s?")


class FilterValueError(ValueError):
    """A filter's value is not one Metabase would accept for its type."""


@dataclass(frozen=True)
class FieldFilter:
    """A template tag of type `dimension`: a column of the table the card reads, and the widget's type."""

    column: str  # schema.table.column
    widget: str  # date/all-options, id, string/=, number/=


def tags_in(sql: str) -> set[str]:
    return set(TAG.findall(sql))


def render(sql: str, variables: dict[str, str], fields: dict[str, FieldFilter], values: dict) -> tuple[str, dict]:
    """(SQL for psycopg with %(name)s parameters, the parameters). `variables`: tag -> type (text, number, date);
    `values`: tag -> the filter's value (absent or None: no value)."""
    given = {name for name, value in values.items() if value not in (None, "", [])}

    def optional(match: re.Match) -> str:
        return match.group(1) if tags_in(match.group(1)) <= given else ""

    text = OPTIONAL.sub(optional, sql)
    params: dict = {}

    def tag(match: re.Match) -> str:
        name = match.group(1)
        if name in fields:
            return _field_predicate(name, fields[name], values.get(name) if name in given else None, params)
        if name not in variables:
            raise FilterValueError(f"{{{{{name}}}}} is neither a variable nor a field filter of the card")
        if name not in given:
            raise FilterValueError(f"the variable {name} has no value and is not inside [[ ... ]]")
        params[name] = _variable(variables[name], values[name])
        return f"%({name})s"

    return TAG.sub(tag, text.replace("%", "%%")), params


def _variable(kind: str, value):
    if kind == "number":
        return float(value) if "." in str(value) else int(value)
    if kind == "date":
        return date.fromisoformat(str(value))
    return str(value)


def _field_predicate(name: str, field: FieldFilter, value, params: dict) -> str:
    if value is None:
        return "1 = 1"
    column = ".".join(f'"{part}"' for part in field.column.split("."))
    if field.widget.startswith("date/"):
        start, end = date_bounds(str(value))
        parts = []
        if start is not None:
            params[f"{name}__from"] = start
            parts.append(f"{column} >= %({name}__from)s")
        if end is not None:
            params[f"{name}__to"] = end
            parts.append(f"{column} < %({name}__to)s")
        return "(" + " and ".join(parts) + ")" if parts else "1 = 1"
    values = value if isinstance(value, list) else [value]
    if field.widget in ("id", "number/="):
        values = [int(v) for v in values]
    params[name] = [str(v) for v in values] if field.widget.startswith("string") else values
    return f"{column} = any(%({name})s)"


def date_bounds(value: str, today: date | None = None) -> tuple[date | None, date | None]:
    """A date filter's value as [start, end): `2026-03-01~2026-03-31`, `2026-03-01~`, `~2026-03-31`, a day
    `2026-03-01`, a month `2026-03`, or `past30days`, `past4weeks`, `past3months`, `past1years` (whole periods
    before the current one, as Metabase's relative filters)."""
    today = today or date.today()
    try:
        if "~" in value:
            first, last = value.split("~", 1)
            return (
                date.fromisoformat(first) if first else None,
                date.fromisoformat(last) + timedelta(days=1) if last else None,
            )
        if re.fullmatch(r"\d{4}-\d{2}", value):
            start = date.fromisoformat(value + "-01")
            return start, (start + timedelta(days=32)).replace(day=1)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = date.fromisoformat(value)
            return day, day + timedelta(days=1)
    except ValueError:
        raise FilterValueError(f"{value!r} is not a date filter value") from None
    relative = RELATIVE.fullmatch(value)
    if relative is None:
        raise FilterValueError(f"{value!r} is not a date filter value")
    n, unit = int(relative.group(1)), relative.group(2)
    if unit == "day":
        return today - timedelta(days=n), today
    if unit == "week":  # whole weeks before this one (ISO weeks, Monday first)
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(weeks=n), monday
    if unit == "month":  # whole months before this one
        months = today.year * 12 + today.month - 1 - n
        return date(months // 12, months % 12 + 1, 1), today.replace(day=1)
    return date(today.year - n, 1, 1), date(today.year, 1, 1)
