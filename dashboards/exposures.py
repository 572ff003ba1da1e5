"""dbt exposures from the dashboard declarations: `dbt docs` shows each dashboard downstream of the marts its cards
read. Written to dbt_project/models/exposures.yml by `boxoffice metabase exposures`; a test keeps the file equal
to what the declarations say."""

from __future__ import annotations

import re

import yaml

from boxoffice.settings import DBT_PROJECT_DIR
from dashboards.spec import Dashboard

EXPOSURES_FILE = DBT_PROJECT_DIR / "models" / "exposures.yml"
RELATION = re.compile(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)", re.IGNORECASE)
HEADER = "# Generated from dashboards/catalog.py by `boxoffice metabase exposures`: edit the declarations, not this.\n"


def relations(dashboard: Dashboard) -> list[tuple[str, str]]:
    """(schema, table) of every relation its cards read."""
    return sorted({match for card in dashboard.cards for match in RELATION.findall(card.sql)})


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def exposures_yaml(dashboards: list[Dashboard]) -> str:
    exposures = [
        {
            "name": f"{slug(d.name)}_dashboard",
            "label": d.name,
            "type": "dashboard",
            "maturity": "medium",
            "description": d.description,
            "owner": {"name": "Boxoffice analytics"},
            "depends_on": [f"ref('{table}')" for _, table in relations(d)],
            "config": {"meta": {"metabase_collection": d.collection, "connection": d.connection.name}},
        }
        for d in dashboards
    ]
    return HEADER + yaml.safe_dump({"version": 2, "exposures": exposures}, sort_keys=False, width=120)
