"""Publish the declared dashboards (dashboards/catalog.py) to a Metabase, idempotently: what exists is compared
with what is declared and only what differs is written, in place (same ids, so links and bookmarks survive); a
card no longer declared is archived, never deleted; nothing outside Boxoffice's collections is touched.

Order: the two connections to the warehouse (one per reader role, each showing one schema), their schema sync
when a table a card filters on is not known yet, the groups and the data permissions, the collections, the cards,
the dashboards with their filters wired to each card's template tags."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dashboards import datamodel
from dashboards.client import Metabase, MetabaseError
from dashboards.spec import Card, Connection, Dashboard, stable_id

ROOT_COLLECTION = "Boxoffice"
ALL_USERS = "All Users"  # Metabase's group of everyone: its access is revoked on Boxoffice's connections
REDACTED = "**MetabasePass**"  # what Metabase answers in place of a database password
GRANTED = {"view-data": "unrestricted", "create-queries": "query-builder-and-native", "download": {"schemas": "full"}}
DENIED = {"view-data": "blocked", "create-queries": "no", "download": {"schemas": "none"}}


@dataclass(frozen=True)
class Warehouse:
    """The warehouse as Metabase reaches it, and the reader roles' logins (None: the connection is made without
    a password, for a server that trusts the role)."""

    host: str
    port: int
    dbname: str
    roles: dict[str, str]  # connection role key ("analytics", "support") -> role name
    passwords: dict[str, str | None]


@dataclass
class Summary:
    done: Counter = field(default_factory=Counter)  # ("card", "created") -> n

    def add(self, kind: str, what: str) -> None:
        self.done[(kind, what)] += 1

    def lines(self) -> list[str]:
        kinds = sorted({kind for kind, _ in self.done})
        return [
            f"{kind + 's':12} " + ", ".join(f"{n} {what}" for (k, what), n in sorted(self.done.items()) if k == kind)
            for kind in kinds
        ]


def sync(
    mb: Metabase, warehouse: Warehouse, dashboards: list[Dashboard], manifest: Path, sync_timeout: float = 60
) -> Summary:
    """Everything declared, in place; `manifest`: dbt's, whose docs become Metabase's data model."""
    summary = Summary()
    connections = {d.connection for d in dashboards}
    db_ids = {c.name: _database(mb, c, warehouse, summary) for c in connections}
    fields = {}
    for connection in sorted(connections, key=lambda c: c.name):
        db_id, documented = db_ids[connection.name], datamodel.wanted(manifest, connection.schema)
        needed = _needed_tables(dashboards, connection.name) | {(connection.schema, t) for t in documented}
        metadata = _metadata(mb, db_id, needed, sync_timeout, summary)
        fields[connection.name] = _fields(metadata)
        _data_model(mb, metadata, documented, summary)
    _permissions(mb, connections, db_ids, summary)
    root = _collection(mb, ROOT_COLLECTION, None, summary)
    for dashboard in dashboards:
        collection = _collection(mb, dashboard.collection, root, summary)
        db_id = db_ids[dashboard.connection.name]
        card_ids = _cards(mb, dashboard, collection, db_id, fields[dashboard.connection.name], summary)
        _dashboard(mb, dashboard, collection, card_ids, summary)
    return summary


# -- connections ----------------------------------------------------------------------------------------------


def database_body(connection: Connection, warehouse: Warehouse) -> dict:
    details = {
        "host": warehouse.host,
        "port": warehouse.port,
        "dbname": warehouse.dbname,
        "user": warehouse.roles[connection.role],
        "ssl": False,
        "tunnel-enabled": False,
        "advanced-options": False,
        "schema-filters-type": "inclusion",
        "schema-filters-patterns": connection.schema,
    }
    if warehouse.passwords.get(connection.role):
        details["password"] = warehouse.passwords[connection.role]
    return {
        "engine": "postgres",
        "name": connection.name,
        "details": details,
        "is_full_sync": True,
        "is_on_demand": False,
        "auto_run_queries": True,
        "connection_source": "admin",
    }


def _database(mb: Metabase, connection: Connection, warehouse: Warehouse, summary: Summary) -> int:
    wanted = database_body(connection, warehouse)
    listed = mb.get("/api/database/")
    existing = next((d for d in _data(listed) if d["name"] == connection.name), None)
    if existing is None:
        summary.add("connection", "created")
        return mb.post("/api/database/", wanted)["id"]
    current = mb.get(f"/api/database/{existing['id']}")
    have = {k: v for k, v in (current.get("details") or {}).items() if k != "password"}
    want = {k: v for k, v in wanted["details"].items() if k != "password"}
    if any(have.get(k) != v for k, v in want.items()) or current.get("engine") != "postgres":
        summary.add("connection", "updated")  # the password is sent again with the rest, never the redacted one
        mb.put(f"/api/database/{existing['id']}", wanted)
    else:
        summary.add("connection", "unchanged")
    return existing["id"]


def _needed_tables(dashboards: list[Dashboard], connection: str) -> set[tuple[str, str]]:
    return {
        tuple(column.split(".")[:2])
        for d in dashboards
        if d.connection.name == connection
        for card in d.cards
        for column in card.fields.values()
    }


def _metadata(mb: Metabase, db_id: int, tables: set, timeout: float, summary: Summary) -> dict:
    """The database's tables and fields as Metabase knows them; its schema is synced first when a table a card
    filters on is not known yet (a new mart), and polled until it is."""

    def known(metadata: dict) -> set:
        return {(t["schema"], t["name"]) for t in metadata.get("tables", [])}

    metadata = mb.get(f"/api/database/{db_id}/metadata", include_hidden="true")
    if not tables <= known(metadata):
        summary.add("connection", "synced")
        mb.post(f"/api/database/{db_id}/sync_schema")
        deadline = time.monotonic() + timeout
        while not tables <= known(metadata):
            if time.monotonic() > deadline:
                missing = sorted(".".join(t) for t in tables - known(metadata))
                raise MetabaseError(f"Metabase's sync of database {db_id} shows no {', '.join(missing)} yet")
            time.sleep(1)
            metadata = mb.get(f"/api/database/{db_id}/metadata", include_hidden="true")
    return metadata


def _data_model(mb: Metabase, metadata: dict, tables: dict, summary: Summary) -> None:
    """Descriptions and semantic types from the dbt docs (datamodel.py), where Metabase's differ."""
    for endpoint, body in datamodel.updates(metadata, tables):
        mb.put(endpoint, body)
        summary.add("description", "updated")


def _fields(metadata: dict) -> dict[str, int]:
    return {
        f"{table['schema']}.{table['name']}.{f['name']}": f["id"]
        for table in metadata.get("tables", [])
        for f in table.get("fields", [])
    }


# -- groups and permissions -----------------------------------------------------------------------------------


def _permissions(mb: Metabase, connections: set[Connection], db_ids: dict[str, int], summary: Summary) -> None:
    """Each group sees its own connection only (data and native SQL); All Users sees neither."""
    groups = {g["name"]: g["id"] for g in mb.get("/api/permissions/group")}
    for name in sorted({c.group for c in connections} - set(groups)):
        groups[name] = mb.post("/api/permissions/group", {"name": name})["id"]
        summary.add("group", "created")
    graph = mb.get("/api/permissions/graph")
    wanted: dict[str, dict[str, dict]] = {}
    for group_name in sorted({c.group for c in connections} | {ALL_USERS}):
        for connection in connections:
            access = GRANTED if connection.group == group_name else DENIED
            wanted.setdefault(str(groups[group_name]), {})[str(db_ids[connection.name])] = access
    current = graph.get("groups", {})
    changed = {
        gid: {db: access for db, access in dbs.items() if _access(current, gid, db) != access}
        for gid, dbs in wanted.items()
    }
    changed = {gid: dbs for gid, dbs in changed.items() if dbs}
    if changed:
        mb.put("/api/permissions/graph", {"revision": graph.get("revision", 0), "groups": changed})
        summary.add("permission", "updated")
    else:
        summary.add("permission", "unchanged")


def _access(graph: dict, gid: str, db: str) -> dict:
    have = (graph.get(gid) or graph.get(int(gid)) or {}).get(db) or (graph.get(gid) or {}).get(int(db)) or {}
    return {k: have.get(k) for k in GRANTED}


# -- collections, cards, dashboards ---------------------------------------------------------------------------


def _collection(mb: Metabase, name: str, parent: int | None, summary: Summary) -> int:
    for collection in mb.get("/api/collection/"):
        ours = collection.get("name") == name and collection.get("id") != "root" and not collection.get("archived")
        if ours and _parent_of(collection) == parent:
            return collection["id"]
    summary.add("collection", "created")
    return mb.post("/api/collection/", {"name": name, "parent_id": parent})["id"]


def _parent_of(collection: dict) -> int | None:
    location = collection.get("location") or "/"
    parts = [p for p in location.split("/") if p]
    return int(parts[-1]) if parts else None


def card_body(dashboard: Dashboard, card: Card, db_id: int, collection: int, field_ids: dict[str, int]) -> dict:
    filters = {f.slug: f for f in dashboard.filters}
    tags, parameters = {}, []
    for tag in sorted(set(card.fields) | set(card.variables)):
        tag_id = stable_id(dashboard.name, card.name, tag)
        title = filters[tag].name if tag in filters else tag.replace("_", " ").capitalize()
        if tag in card.fields:
            widget = filters[tag].type
            tags[tag] = {
                "id": tag_id,
                "name": tag,
                "display-name": title,
                "type": "dimension",
                "dimension": ["field", field_ids[card.fields[tag]], None],
                "widget-type": widget,
            }
            target = ["dimension", ["template-tag", tag]]
        else:
            widget = "category"
            tags[tag] = {"id": tag_id, "name": tag, "display-name": title, "type": card.variables[tag]}
            target = ["variable", ["template-tag", tag]]
        parameters.append({"id": tag_id, "type": widget, "target": target, "name": title, "slug": tag})
    return {
        "name": card.name,
        "description": card.description,
        "display": card.display,
        "type": "question",
        "collection_id": collection,
        "visualization_settings": card.visualization_settings(),
        "parameters": parameters,
        "dataset_query": {
            "type": "native",
            "database": db_id,
            "native": {"query": card.sql, "template-tags": tags},
        },
    }


def native_query(dataset_query: dict) -> tuple[int | None, str, dict]:
    """(database, SQL, template tags) of a native question in MBQL 4 or MBQL 5 (Metabase 57+ answers in 5)."""
    if "stages" in dataset_query:  # MBQL 5: {"lib/type": "mbql/query", "stages": [{"native": sql, ...}]}
        stage = dataset_query["stages"][0]
        tags = stage.get("template-tags") or {}
        return dataset_query.get("database"), stage.get("native", ""), _tags_as_legacy(tags)
    native = dataset_query.get("native") or {}
    return dataset_query.get("database"), native.get("query", ""), native.get("template-tags") or {}


def _tags_as_legacy(tags: dict) -> dict:
    legacy = {}
    for name, tag in tags.items():
        tag = dict(tag)
        dimension = tag.get("dimension")
        if isinstance(dimension, list) and len(dimension) == 3 and isinstance(dimension[1], dict):
            tag["dimension"] = ["field", dimension[2], None]  # MBQL 5's ["field", {options}, id]
        legacy[name] = tag
    return legacy


def _card_state(card: dict) -> dict:
    db, sql, tags = native_query(card.get("dataset_query") or {})
    keys = ("id", "name", "display-name", "type", "dimension", "widget-type")
    return {
        "name": card.get("name"),
        "description": card.get("description"),
        "display": card.get("display"),
        "collection_id": card.get("collection_id"),
        "visualization_settings": card.get("visualization_settings") or {},
        "archived": bool(card.get("archived")),
        "query": (db, sql, {n: {k: t.get(k) for k in keys if t.get(k) is not None} for n, t in tags.items()}),
    }


def _items(mb: Metabase, collection: int, model: str) -> list[dict]:
    return _data(mb.get(f"/api/collection/{collection}/items", models=model))


def _cards(mb: Metabase, dashboard: Dashboard, collection: int, db_id: int, fields: dict, summary: Summary) -> dict:
    existing = {item["name"]: item["id"] for item in _items(mb, collection, "card")}
    ids = {}
    for card in dashboard.cards:
        body = card_body(dashboard, card, db_id, collection, fields)
        if card.name not in existing:
            ids[card.name] = mb.post("/api/card/", body)["id"]
            summary.add("card", "created")
            continue
        ids[card.name] = existing[card.name]
        current = mb.get(f"/api/card/{existing[card.name]}")
        if _card_state(current) != _card_state({**body, "archived": False}):
            mb.put(f"/api/card/{existing[card.name]}", {**body, "archived": False})
            summary.add("card", "updated")
        else:
            summary.add("card", "unchanged")
    for name, card_id in existing.items():
        if name not in ids:  # no longer declared: archived (Metabase's Trash), never deleted
            mb.put(f"/api/card/{card_id}", {"archived": True})
            summary.add("card", "archived")
    return ids


def dashboard_parameters(dashboard: Dashboard) -> list[dict]:
    parameters = []
    for f in dashboard.filters:
        parameter = {"id": f.id, "name": f.name, "slug": f.slug, "type": f.type, "sectionId": f.section}
        if f.default is not None:
            parameter["default"] = f.default
        parameters.append(parameter)
    return parameters


def dashcards(dashboard: Dashboard, card_ids: dict[str, int], existing: list[dict]) -> list[dict]:
    """The layout; a card already on the dashboard keeps its dashcard id, a new one gets -1, -2, ..."""
    reuse = {d["card_id"]: d["id"] for d in existing if d.get("card_id") is not None}
    result, new = [], 0
    for card, row, col in dashboard.layout():
        card_id = card_ids[card.name]
        if card_id in reuse:
            dashcard_id = reuse.pop(card_id)
        else:
            new -= 1
            dashcard_id = new
        mappings = [
            {
                "parameter_id": f.id,
                "card_id": card_id,
                "target": ["dimension" if f.slug in card.fields else "variable", ["template-tag", f.slug]],
            }
            for f in dashboard.wiring(card)
        ]
        result.append(
            {
                "id": dashcard_id,
                "card_id": card_id,
                "row": row,
                "col": col,
                "size_x": card.size[0],
                "size_y": card.size[1],
                "series": [],
                "visualization_settings": {},
                "parameter_mappings": mappings,
            }
        )
    return result


def _layout_state(dashboard: dict) -> dict:
    cards = sorted(
        (
            d.get("card_id"),
            d.get("row"),
            d.get("col"),
            d.get("size_x"),
            d.get("size_y"),
            sorted((m["parameter_id"], m.get("card_id"), str(m["target"])) for m in d.get("parameter_mappings") or []),
        )
        for d in dashboard.get("dashcards") or []
    )
    keys = ("id", "name", "slug", "type", "sectionId", "default")
    parameters = [{k: p.get(k) for k in keys} for p in dashboard.get("parameters") or []]
    return {
        "name": dashboard.get("name"),
        "description": dashboard.get("description"),
        "collection_id": dashboard.get("collection_id"),
        "archived": bool(dashboard.get("archived")),
        "parameters": parameters,
        "dashcards": cards,
    }


def _dashboard(mb: Metabase, dashboard: Dashboard, collection: int, card_ids: dict, summary: Summary) -> int:
    existing = {item["name"]: item["id"] for item in _items(mb, collection, "dashboard")}
    if dashboard.name in existing:
        dashboard_id = existing[dashboard.name]
        current = mb.get(f"/api/dashboard/{dashboard_id}")
    else:
        body = {"name": dashboard.name, "description": dashboard.description, "collection_id": collection}
        current = mb.post("/api/dashboard/", {**body, "parameters": []})
        dashboard_id = current["id"]
        summary.add("dashboard", "created")
    wanted = {
        "name": dashboard.name,
        "description": dashboard.description,
        "collection_id": collection,
        "archived": False,
        "parameters": dashboard_parameters(dashboard),
        "tabs": [],
        "dashcards": dashcards(dashboard, card_ids, current.get("dashcards") or []),
    }
    if _layout_state(current) != _layout_state(wanted):
        mb.put(f"/api/dashboard/{dashboard_id}", wanted)
        if dashboard.name in existing:
            summary.add("dashboard", "updated")
    elif dashboard.name in existing:
        summary.add("dashboard", "unchanged")
    return dashboard_id


def _data(listed) -> list[dict]:
    """Metabase's lists come bare or in a {"data": [...]} envelope, depending on the endpoint and version."""
    return listed.get("data", []) if isinstance(listed, dict) else list(listed or [])
