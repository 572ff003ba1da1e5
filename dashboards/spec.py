"""Dashboards as data: what a dashboard, its filters and its cards are, and the rules a declaration must keep
before anything is sent to Metabase (every filter wired to a tag the card has, cards on the 24-column grid, the
columns a chart names among those its SQL returns)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from dashboards.sql import FieldFilter, tags_in

GRID_COLUMNS = 24  # Metabase's dashboard grid since 0.47
DISPLAYS = {"scalar", "smartscalar", "line", "bar", "row", "area", "combo", "pie", "table"}
VARIABLE_TYPES = {"text", "number", "date"}
NAMESPACE = uuid.UUID("6f1d2a8e-4c1b-4a53-9a57-0b0c5f3d2e11")  # stable ids: the same declaration, the same ids


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


@dataclass(frozen=True)
class Connection:
    """A Metabase database connection to the warehouse, as one of its reader roles, showing one schema."""

    name: str
    role: str  # "analytics" or "support": the setting naming the role (ANALYTICS_ROLE, SUPPORT_ROLE) decides
    schema: str
    group: str  # the Metabase group that sees it


@dataclass(frozen=True)
class Filter:
    """A dashboard filter: its slug is the template tag each card wires it to."""

    slug: str
    name: str
    type: str  # Metabase parameter type: date/all-options, id, string/=, text (a plain variable)
    default: str | None = None

    @property
    def id(self) -> str:
        return stable_id("filter", self.slug)[:8]

    @property
    def section(self) -> str:
        return {"date": "date", "id": "id", "string": "string"}.get(self.type.split("/")[0], "string")


@dataclass(frozen=True)
class Card:
    """A native question. `fields`: its field filters, tag -> schema.table.column (the table it reads);
    `variables`: its plain variables, tag -> text|number|date. The SQL writes each field filter as a bare
    `{{tag}}` and each variable inside `[[ ... ]]` where it is optional."""

    name: str
    sql: str
    display: str = "table"
    size: tuple[int, int] = (12, 6)
    description: str | None = None
    dimensions: tuple[str, ...] = ()  # the x axis (charts) or the date (smartscalar)
    metrics: tuple[str, ...] = ()  # the values
    fields: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # more visualization_settings

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns its visualization names: the SQL must return them."""
        return self.dimensions + self.metrics

    def visualization_settings(self) -> dict:
        settings = dict(self.settings)
        if self.display in ("line", "bar", "row", "area", "combo"):
            settings |= {"graph.dimensions": list(self.dimensions), "graph.metrics": list(self.metrics)}
        elif self.display == "pie":
            settings |= {"pie.dimension": self.dimensions[0], "pie.metric": self.metrics[0]}
        elif self.display == "scalar" and self.metrics:
            settings |= {"scalar.field": self.metrics[0]}
        return settings


@dataclass(frozen=True)
class Dashboard:
    name: str
    collection: str
    connection: Connection
    description: str
    cards: tuple[Card, ...]
    filters: tuple[Filter, ...] = ()

    def layout(self) -> list[tuple[Card, int, int]]:
        """(card, row, col): left to right, a new row when the grid is full."""
        placed, row, col, height = [], 0, 0, 0
        for card in self.cards:
            width, tall = card.size
            if col + width > GRID_COLUMNS:
                row, col, height = row + height, 0, 0
            placed.append((card, row, col))
            col, height = col + width, max(height, tall)
        return placed

    def field_filters(self, card: Card) -> dict[str, FieldFilter]:
        """The card's field filters, each with its dashboard filter's widget type."""
        types = {f.slug: f.type for f in self.filters}
        return {tag: FieldFilter(column, types[tag]) for tag, column in card.fields.items()}

    def wiring(self, card: Card) -> list[Filter]:
        """The dashboard's filters this card takes (it has a tag of that name)."""
        return [f for f in self.filters if f.slug in card.fields or f.slug in card.variables]


class DeclarationError(ValueError):
    """A dashboard declaration breaks a rule; the message names the dashboard and card."""


def check(dashboards: list[Dashboard]) -> None:
    """Every rule a declaration must keep, or DeclarationError naming what breaks it."""
    names = set()
    for dashboard in dashboards:
        if dashboard.name in names:
            raise DeclarationError(f"two dashboards are named {dashboard.name!r}")
        names.add(dashboard.name)
        cards = [card.name for card in dashboard.cards]
        if len(set(cards)) != len(cards):
            raise DeclarationError(f"{dashboard.name}: two cards share a name")
        slugs = {f.slug for f in dashboard.filters}
        for card in dashboard.cards:
            _check_card(dashboard, card, slugs)


def _check_card(dashboard: Dashboard, card: Card, slugs: set[str]) -> None:
    where = f"{dashboard.name} / {card.name}"
    declared = set(card.fields) | set(card.variables)
    if tags_in(card.sql) != declared:
        raise DeclarationError(f"{where}: the SQL's tags {sorted(tags_in(card.sql))} are not {sorted(declared)}")
    if card.display not in DISPLAYS:
        raise DeclarationError(f"{where}: display {card.display!r} is not one of {sorted(DISPLAYS)}")
    if set(card.variables.values()) - VARIABLE_TYPES:
        raise DeclarationError(f"{where}: a variable's type is not one of {sorted(VARIABLE_TYPES)}")
    if not 1 <= card.size[0] <= GRID_COLUMNS or card.size[1] < 1:
        raise DeclarationError(f"{where}: size {card.size} does not fit the {GRID_COLUMNS}-column grid")
    for tag, column in card.fields.items():
        if tag not in slugs:
            raise DeclarationError(f"{where}: field filter {tag} is no filter of the dashboard")
        if not column.startswith(dashboard.connection.schema + ".") or column.count(".") != 2:
            raise DeclarationError(f"{where}: {column} is not schema.table.column in {dashboard.connection.schema}")
    if card.display in ("line", "bar", "row", "area", "combo", "pie", "smartscalar") and not (
        card.dimensions and card.metrics
    ):
        raise DeclarationError(f"{where}: a {card.display} names its dimensions and metrics")
