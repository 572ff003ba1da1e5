"""A fake Metabase for the tests: a real HTTP server on 127.0.0.1 that holds databases (their tables and fields
from the warehouse's own catalogue once synced), collections, cards, dashboards, groups and the permissions
graph in memory, logs every call, and enforces Metabase's contract as its OpenAPI spec and its documented
behaviour have it (shared/reference/metabase: OPENAPI_SUBSET.md, API_NOTES.md), written out here:

- 401 without a valid X-Metabase-Session or X-API-KEY, except on the session, its properties and the setup;
- setup once (the token of /api/session/properties; a second setup is 403);
- required fields and types of each body (POST /api/card/ needs name, dataset_query, display and
  visualization_settings; type is question, metric or model; description non-blank or null; PUT /api/card/:id
  takes an integer collection_id; a dashcard needs id, size_x >= 1, size_y >= 1, row >= 0, col >= 0);
- a dashboard PUT replaces the layout: negative dashcard ids become new ids, dashcards left out are deleted, and
  each parameter mapping must name a parameter of the dashboard and a template tag of the dashcard's card;
- a field filter's dimension must be a field of the card's database;
- database GETs redact the password as **MetabasePass** (and a PUT of that keeps the stored one);
- the permissions graph's revision must be the current one (409 otherwise), and All Users gets every new
  database, as Metabase gives it;
- POST /api/dashboard/:id/cards answers 404 (removed in 0.47; metabase-api's add_card_to_dashboard uses it);
- with mbql5=True, GET /api/card/:id answers MBQL 5 (Metabase 57+) unless ?legacy-mbql=true.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

REDACTED = "**MetabasePass**"
CARD_TYPES = {"question", "metric", "model"}
ROUTES = []


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def route(method: str, pattern: str, public: bool = False):
    def register(fn):
        ROUTES.append((method, re.compile("^" + pattern + "/?$"), public, fn))
        return fn

    return register


def require(body, *keys):
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    missing = [k for k in keys if body.get(k) is None]
    if missing:
        raise HttpError(400, f"{', '.join(missing)}: value must be given")


def non_blank_or_null(body: dict, key: str):
    if key in body and body[key] is not None and (not isinstance(body[key], str) or not body[key].strip()):
        raise HttpError(400, f"{key}: value must be a non-blank string, or null")


class FakeMetabase:
    def __init__(
        self,
        catalogue: dict[str, dict[str, list[str]]],
        admin=("admin@example.com", "S3cure-pass-123"),
        api_key: str | None = None,
        mbql5: bool = False,
        set_up: bool = False,
    ):
        self.catalogue = catalogue  # schema -> table -> columns: what a sync finds in the warehouse
        self.mbql5 = mbql5
        self.setup_token = str(uuid.uuid4())
        self.users = {admin[0]: admin[1]} if set_up else {}
        self.admin = admin
        self.api_keys = {api_key} if api_key else set()
        self.sessions: set[str] = set()
        self.log: list[tuple[str, str, object]] = []
        self.ids = iter(range(1, 1_000_000))
        self.databases, self.tables, self.fields = {}, {}, {}
        self.collections, self.cards, self.dashboards = {}, {}, {}
        self.groups = {1: "All Users", 2: "Administrators"}
        self.graph, self.revision = {"1": {}, "2": {}}, 1
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def writes(self) -> list[tuple[str, str]]:
        """The calls that change something, logging in and the setup aside."""
        return [
            (m, p)
            for m, p, _ in self.log
            if m in ("POST", "PUT", "DELETE") and p.rstrip("/") not in ("/api/session", "/api/setup")
        ]

    def next_id(self) -> int:
        return next(self.ids)

    # -- the HTTP layer ---------------------------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self, method: str):
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                with fake.lock:
                    fake.log.append((method, parsed.path, body))
                    status, answer = fake.dispatch(method, parsed.path, parse_qs(parsed.query), body, self.headers)
                data = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PUT(self):
                self._serve("PUT")

            def do_DELETE(self):
                self._serve("DELETE")

        return Handler

    def dispatch(self, method, path, query, body, headers):
        for verb, pattern, public, fn in ROUTES:
            match = pattern.match(path)
            if verb == method and match:
                if not public and not self._authenticated(headers):
                    return 401, "Unauthenticated"
                try:
                    return 200, fn(self, *match.groups(), query=query, body=body)
                except HttpError as err:
                    return err.status, {"message": str(err)}
        return 404, "API endpoint does not exist."

    def _authenticated(self, headers) -> bool:
        return headers.get("X-Metabase-Session") in self.sessions or headers.get("X-API-KEY") in self.api_keys

    # -- helpers ----------------------------------------------------------------------------------------------

    def get(self, store: dict, key: str, what: str):
        if int(key) not in store:
            raise HttpError(404, f"{what} not found")
        return store[int(key)]

    def tags_of(self, card: dict) -> dict:
        return card["dataset_query"].get("native", {}).get("template-tags") or {}

    def check_card(self, body: dict, creating: bool):
        if creating:
            require(body, "name", "dataset_query", "display", "visualization_settings")
        if "type" in body and body["type"] not in CARD_TYPES:
            raise HttpError(400, f"type: should be either question, metric or model, got {body['type']!r}")
        if "dataset" in body:
            raise HttpError(400, "dataset: replaced by type in 0.49")
        non_blank_or_null(body, "description")
        if not creating and "collection_id" in body and not isinstance(body["collection_id"], (int, type(None))):
            raise HttpError(400, "collection_id: value must be an integer greater than zero")
        query = body.get("dataset_query")
        if query is not None:
            if not isinstance(query, dict):
                raise HttpError(400, "dataset_query: value must be a map")
            database = query.get("database")
            for tag in (query.get("native") or {}).get("template-tags", {}).values():
                if tag.get("type") == "dimension":
                    field = tag.get("dimension") or [None, None]
                    if self.fields.get(field[1], {}).get("db_id") != database:
                        raise HttpError(
                            400, f"template tag {tag.get('name')}: no field {field[1]} in database {database}"
                        )
        for parameter in body.get("parameters") or []:
            if not parameter.get("id") or not parameter.get("type"):
                raise HttpError(400, "parameters: each needs a non-blank id and a type")

    def card_answer(self, card: dict, legacy: bool) -> dict:
        answer = copy.deepcopy(card)
        if self.mbql5 and not legacy:
            query = answer["dataset_query"]
            tags = copy.deepcopy((query.get("native") or {}).get("template-tags") or {})
            for tag in tags.values():
                if tag.get("type") == "dimension":
                    tag["dimension"] = ["field", {"lib/uuid": str(uuid.uuid4())}, tag["dimension"][1]]
            answer["dataset_query"] = {
                "lib/type": "mbql/query",
                "database": query.get("database"),
                "stages": [
                    {"lib/type": "mbql.stage/native", "native": query["native"]["query"], "template-tags": tags}
                ],
            }
        return answer

    def dashboard_answer(self, dashboard: dict) -> dict:
        answer = copy.deepcopy(dashboard)
        for dashcard in answer["dashcards"]:
            if dashcard.get("card_id") is not None:
                dashcard["card"] = self.card_answer(self.cards[dashcard["card_id"]], legacy=False)
        return answer


# -- auth and setup -------------------------------------------------------------------------------------------


@route("GET", "/api/session/properties", public=True)
def session_properties(fake, query, body):
    set_up = bool(fake.users)
    return {
        "setup-token": None if set_up else fake.setup_token,
        "has-user-setup": set_up,
        "version": {"tag": "v0.57.0"},
    }


@route("POST", "/api/setup", public=True)
def setup(fake, query, body):
    if fake.users:
        raise HttpError(
            403, "The /api/setup route can only be used to create the first user, however a user currently exists."
        )
    require(body, "token", "user", "prefs")
    require(body["user"], "email", "password")
    require(body["prefs"], "site_name")
    if body["token"] != fake.setup_token:
        raise HttpError(403, "Token does not match the setup token.")
    fake.users[body["user"]["email"]] = body["user"]["password"]
    session = str(uuid.uuid4())
    fake.sessions.add(session)
    return {"id": session}


@route("POST", "/api/session", public=True)
def login(fake, query, body):
    require(body, "username", "password")
    if fake.users.get(body["username"]) != body["password"]:
        raise HttpError(401, "did not match stored password")
    session = str(uuid.uuid4())
    fake.sessions.add(session)
    return {"id": session}


@route("GET", "/api/user/current")
def current_user(fake, query, body):
    return {"id": 1, "email": next(iter(fake.users), None), "is_superuser": True}


# -- databases ------------------------------------------------------------------------------------------------


def _redacted(database: dict) -> dict:
    answer = copy.deepcopy(database)
    if "password" in answer["details"]:
        answer["details"]["password"] = REDACTED
    return answer


@route("GET", "/api/database")
def databases(fake, query, body):
    listed = [_redacted(d) for d in fake.databases.values()]
    return {"data": listed, "total": len(listed)}


@route("POST", "/api/database")
def create_database(fake, query, body):
    require(body, "engine", "name", "details")
    if not isinstance(body["details"], dict):
        raise HttpError(400, "details: value must be a map")
    db_id = fake.next_id()
    fake.databases[db_id] = {
        "id": db_id,
        "engine": body["engine"],
        "name": body["name"],
        "details": copy.deepcopy(body["details"]),
        "initial_sync_status": "incomplete",
    }
    for group in fake.graph.values():  # Metabase's default: everyone sees a new database
        group[str(db_id)] = {
            "view-data": "unrestricted",
            "create-queries": "query-builder-and-native",
            "download": {"schemas": "full"},
        }
    fake.revision += 1
    return _redacted(fake.databases[db_id])


@route("GET", r"/api/database/(\d+)")
def database(fake, db_id, query, body):
    return _redacted(fake.get(fake.databases, db_id, "database"))


@route("PUT", r"/api/database/(\d+)")
def update_database(fake, db_id, query, body):
    database = fake.get(fake.databases, db_id, "database")
    details = copy.deepcopy(body.get("details") or database["details"])
    if details.get("password") == REDACTED:  # Metabase keeps the stored password
        details["password"] = database["details"].get("password")
    database.update({k: v for k, v in body.items() if k in ("name", "engine")}, details=details)
    return _redacted(database)


@route("POST", r"/api/database/(\d+)/sync_schema")
def sync_schema(fake, db_id, query, body):
    database = fake.get(fake.databases, db_id, "database")
    patterns = database["details"].get("schema-filters-patterns", "")
    schemas = [s.strip() for s in patterns.split(",") if s.strip()]
    for schema in schemas:
        for table, columns in fake.catalogue.get(schema, {}).items():
            key = (database["id"], schema, table)
            if key not in fake.tables:
                table_id = fake.next_id()
                fake.tables[key] = {
                    "id": table_id,
                    "db_id": database["id"],
                    "schema": schema,
                    "name": table,
                    "display_name": table,
                    "fields": [],
                }
            known = {f["name"] for f in fake.tables[key]["fields"]}
            for column in columns:
                if column not in known:
                    field = {
                        "id": fake.next_id(),
                        "name": column,
                        "table_id": fake.tables[key]["id"],
                        "db_id": database["id"],
                        "base_type": "type/*",
                        "semantic_type": None,
                        "description": None,
                    }
                    fake.fields[field["id"]] = field
                    fake.tables[key]["fields"].append(field)
    database["initial_sync_status"] = "complete"
    return {"status": "ok"}


@route("GET", r"/api/database/(\d+)/metadata")
def metadata(fake, db_id, query, body):
    database = _redacted(fake.get(fake.databases, db_id, "database"))
    tables = [copy.deepcopy(t) for (d, _, _), t in fake.tables.items() if d == database["id"]]
    return {**database, "tables": tables}


@route("PUT", r"/api/table/(\d+)")
def update_table(fake, table_id, query, body):
    table = next((t for t in fake.tables.values() if t["id"] == int(table_id)), None)
    if table is None:
        raise HttpError(404, "table not found")
    non_blank_or_null(body, "description")
    table.update({k: v for k, v in body.items() if k in ("description", "display_name", "visibility_type")})
    return {k: v for k, v in table.items() if k != "fields"}


@route("PUT", r"/api/field/(\d+)")
def update_field(fake, field_id, query, body):
    field = fake.get(fake.fields, field_id, "field")
    non_blank_or_null(body, "description")
    kind = body.get("semantic_type")
    if kind is not None and not (isinstance(kind, str) and kind.startswith("type/")):
        raise HttpError(400, f"semantic_type: {kind!r} is not a Metabase type")
    field.update({k: v for k, v in body.items() if k in ("description", "semantic_type", "display_name")})
    return copy.deepcopy(field)


# -- groups and permissions -----------------------------------------------------------------------------------


@route("GET", "/api/permissions/group")
def groups(fake, query, body):
    return [{"id": gid, "name": name, "member_count": 0} for gid, name in fake.groups.items()]


@route("POST", "/api/permissions/group")
def create_group(fake, query, body):
    require(body, "name")
    if body["name"] in fake.groups.values():
        raise HttpError(400, "A group with that name already exists.")
    gid = fake.next_id()
    fake.groups[gid] = body["name"]
    fake.graph[str(gid)] = {}
    fake.revision += 1
    return {"id": gid, "name": body["name"]}


@route("GET", "/api/permissions/graph")
def graph(fake, query, body):
    return {"revision": fake.revision, "groups": copy.deepcopy(fake.graph)}


@route("PUT", "/api/permissions/graph")
def update_graph(fake, query, body):
    require(body, "groups")
    if body.get("revision") != fake.revision:
        raise HttpError(
            409,
            "Looks like someone else edited the permissions and your data is out of date. "
            "Please fetch new data and try again.",
        )
    for gid, dbs in body["groups"].items():
        if int(gid) not in fake.groups:
            raise HttpError(400, f"no group {gid}")
        for db, access in dbs.items():
            if int(db) not in fake.databases:
                raise HttpError(400, f"no database {db}")
            fake.graph.setdefault(str(gid), {})[str(db)] = copy.deepcopy(access)
    fake.revision += 1
    return {"revision": fake.revision, "groups": copy.deepcopy(fake.graph)}


# -- collections ----------------------------------------------------------------------------------------------


@route("GET", "/api/collection")
def collections(fake, query, body):
    root = {"id": "root", "name": "Our analytics", "location": None}
    return [root, *(copy.deepcopy(c) for c in fake.collections.values())]


@route("POST", "/api/collection")
def create_collection(fake, query, body):
    require(body, "name")
    non_blank_or_null(body, "description")
    parent = body.get("parent_id")
    if parent is not None and parent not in fake.collections:
        raise HttpError(404, "parent collection not found")
    location = "/" if parent is None else fake.collections[parent]["location"] + f"{parent}/"
    cid = fake.next_id()
    fake.collections[cid] = {
        "id": cid,
        "name": body["name"],
        "description": body.get("description"),
        "location": location,
        "archived": False,
    }
    return copy.deepcopy(fake.collections[cid])


@route("PUT", r"/api/collection/(\d+)")
def update_collection(fake, cid, query, body):
    collection = fake.get(fake.collections, cid, "collection")
    collection.update({k: v for k, v in body.items() if k in ("name", "description", "archived")})
    return copy.deepcopy(collection)


@route("GET", r"/api/collection/(\d+)/items")
def collection_items(fake, cid, query, body):
    fake.get(fake.collections, cid, "collection")
    models = query.get("models") or ["card", "dashboard"]
    archived = (query.get("archived") or ["false"])[0] == "true"
    items = []
    for model, store in (("card", fake.cards), ("dashboard", fake.dashboards)):
        if model in models:
            items += [
                {"id": x["id"], "name": x["name"], "model": model}
                for x in store.values()
                if x["collection_id"] == int(cid) and x["archived"] == archived
            ]
    return {"data": items, "total": len(items)}


# -- cards ----------------------------------------------------------------------------------------------------


@route("POST", "/api/card")
def create_card(fake, query, body):
    fake.check_card(body, creating=True)
    card_id = fake.next_id()
    fake.cards[card_id] = {
        "id": card_id,
        "archived": False,
        "type": "question",
        "description": None,
        "collection_id": None,
        "parameters": [],
        **copy.deepcopy(body),
    }
    return fake.card_answer(fake.cards[card_id], legacy=True)


@route("GET", r"/api/card/(\d+)")
def card(fake, card_id, query, body):
    legacy = (query.get("legacy-mbql") or ["false"])[0] == "true"
    return fake.card_answer(fake.get(fake.cards, card_id, "card"), legacy)


@route("PUT", r"/api/card/(\d+)")
def update_card(fake, card_id, query, body):
    fake.check_card(body, creating=False)
    card = fake.get(fake.cards, card_id, "card")
    card.update(copy.deepcopy(body))
    return fake.card_answer(card, legacy=True)


# -- dashboards -----------------------------------------------------------------------------------------------


@route("POST", "/api/dashboard")
def create_dashboard(fake, query, body):
    require(body, "name")
    non_blank_or_null(body, "description")
    dashboard_id = fake.next_id()
    fake.dashboards[dashboard_id] = {
        "id": dashboard_id,
        "name": body["name"],
        "description": body.get("description"),
        "collection_id": body.get("collection_id"),
        "archived": False,
        "parameters": copy.deepcopy(body.get("parameters") or []),
        "dashcards": [],
        "tabs": [],
    }
    return fake.dashboard_answer(fake.dashboards[dashboard_id])


@route("GET", r"/api/dashboard/(\d+)")
def dashboard(fake, dashboard_id, query, body):
    return fake.dashboard_answer(fake.get(fake.dashboards, dashboard_id, "dashboard"))


@route("POST", r"/api/dashboard/(\d+)/cards")
def removed_cards_endpoint(fake, dashboard_id, query, body):
    raise HttpError(404, "API endpoint does not exist.")


@route("PUT", r"/api/dashboard/(\d+)")
def update_dashboard(fake, dashboard_id, query, body):
    dashboard = fake.get(fake.dashboards, dashboard_id, "dashboard")
    non_blank_or_null(body, "description")
    parameters = body.get("parameters", dashboard["parameters"])
    for parameter in parameters:
        if not parameter.get("id") or not parameter.get("type"):
            raise HttpError(400, "parameters: each needs a non-blank id and a type")
    for tab in body.get("tabs") or []:
        require(tab, "id", "name")
    if "dashcards" in body:
        dashboard["dashcards"] = _layout(
            fake, body["dashcards"], {p["id"] for p in parameters}, {d["id"] for d in dashboard["dashcards"]}
        )
    dashboard.update(
        {
            k: copy.deepcopy(v)
            for k, v in body.items()
            if k in ("name", "description", "collection_id", "archived", "parameters", "tabs")
        }
    )
    return fake.dashboard_answer(dashboard)


def _layout(fake, dashcards: list, parameter_ids: set, existing: set) -> list:
    seen, result = set(), []
    for dashcard in dashcards:
        require(dashcard, "id", "size_x", "size_y", "row", "col")
        if dashcard["id"] in seen:
            raise HttpError(400, "dashcards: ids must be unique")
        seen.add(dashcard["id"])
        if dashcard["row"] < 0 or dashcard["col"] < 0 or dashcard["size_x"] < 1 or dashcard["size_y"] < 1:
            raise HttpError(400, "dashcards: row and col must be >= 0, size_x and size_y >= 1")
        if dashcard["id"] >= 0 and dashcard["id"] not in existing:
            raise HttpError(404, f"dashcard {dashcard['id']} is not on this dashboard")
        card = fake.cards.get(dashcard.get("card_id"))
        if dashcard.get("card_id") is not None and card is None:
            raise HttpError(404, f"card {dashcard['card_id']} not found")
        for mapping in dashcard.get("parameter_mappings") or []:
            require(mapping, "parameter_id", "target")
            if mapping["parameter_id"] not in parameter_ids:
                raise HttpError(400, f"parameter_mappings: no dashboard parameter {mapping['parameter_id']}")
            target = mapping["target"]
            tag = target[1][1] if len(target) > 1 and isinstance(target[1], list) else None
            if target[0] in ("variable", "dimension") and tag not in fake.tags_of(card):
                raise HttpError(400, f"parameter_mappings: card {card['id']} has no template tag {tag}")
        new = copy.deepcopy(dashcard)
        if new["id"] < 0:
            new["id"] = fake.next_id()
        result.append(new)
    return result
