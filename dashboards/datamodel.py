"""Metabase's data model from the dbt docs: each table's and column's description, and a semantic type, written
where Metabase's differ.

The dbt docs are read with dbt-metabase's manifest reader (`dbtmetabase.manifest.Manifest`: descriptions, the
`meta: metabase.*` a column may carry, foreign keys from relationships tests). Its `export_models` is not used:
it asks Metabase for a schema sync (a POST) and waits 5 seconds on every call, so a second publish would never
be free of writes; the sync (sync.py) syncs a schema only when a table is missing, and this writes only what
differs. A column whose dbt docs name no semantic type gets one from its name and type (SEMANTIC_TYPES)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dbtmetabase.manifest import Manifest

# (column name pattern, dbt data types or None for any, Metabase semantic type), first match wins
SEMANTIC_TYPES = (
    (re.compile(r"(^|_)email$"), None, "type/Email"),
    (re.compile(r"(_rate|_pct|^repeat_rate_d\d+)$"), None, "type/Percentage"),
    (
        re.compile(r"(amount|gmv|fees?|revenue|costs?|difference|debit|credit|balance|deductions|spent|price)"),
        ("numeric",),
        "type/Currency",
    ),
    (re.compile(r"(^|_)(name|subject)$"), None, "type/Name"),
)


def semantic_type(name: str, data_type: str | None) -> str | None:
    base = (data_type or "").split("(")[0].strip().lower()
    for pattern, types, kind in SEMANTIC_TYPES:
        if pattern.search(name) and (types is None or base in types):
            return kind
    return None


def wanted(manifest_path: Path, schema: str) -> dict[str, dict]:
    """table name -> {"description", "columns": {column: {"description", "semantic_type"}}} for the models in
    the schema, as the dbt docs describe them."""
    types = {
        (node["schema"], node["alias"], column["name"]): column.get("data_type")
        for node in json.loads(Path(manifest_path).read_text())["nodes"].values()
        if node["resource_type"] == "model"
        for column in node.get("columns", {}).values()
    }
    tables = {}
    for model in Manifest(manifest_path).read_models():
        if model.schema.lower() != schema:
            continue
        columns = {
            c.name: {
                "description": c.description or None,
                "semantic_type": c.semantic_type or semantic_type(c.name, types.get((schema, model.alias, c.name))),
            }
            for c in model.columns
        }
        tables[model.alias] = {"description": model.description or None, "columns": columns}
    return tables


def updates(metadata: dict, tables: dict[str, dict]) -> list[tuple[str, dict]]:
    """(endpoint, body) of each table and field whose description or semantic type differs from the dbt docs;
    a semantic type the docs do not imply is left as Metabase has it."""
    result = []
    for table in metadata.get("tables", []):
        want = tables.get(table["name"])
        if want is None:
            continue
        if table.get("description") != want["description"]:
            result.append((f"/api/table/{table['id']}", {"description": want["description"]}))
        for field in table.get("fields", []):
            column = want["columns"].get(field["name"])
            if column is None:
                continue
            body = {}
            if field.get("description") != column["description"]:
                body["description"] = column["description"]
            if column["semantic_type"] and field.get("semantic_type") != column["semantic_type"]:
                body["semantic_type"] = column["semantic_type"]
            if body:
                result.append((f"/api/field/{field['id']}", body))
    return result
