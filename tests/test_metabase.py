"""Dashboards as code, proven without a Metabase server (none can run here): the sync goes through the real
metabase-api client over HTTP to a fake Metabase that enforces Metabase's contract (tests/fake_metabase.py), and
every card's SQL runs on the session's warehouse as the role its connection uses."""

import dataclasses
import json

import psycopg
import pytest
from fake_metabase import FakeMetabase
from metabase_api import Metabase_API

from boxoffice.cli import main
from dashboards import catalog, sql
from dashboards.client import Credentials, Metabase, MetabaseError
from dashboards.exposures import EXPOSURES_FILE, exposures_yaml
from dashboards.spec import Card, DeclarationError, check

ADMIN = ("admin@example.com", "S3cure-pass-123")
ROLE_PASSWORDS = {"METABASE_ANALYTICS_DB_PASSWORD": "analytics-pw-1", "METABASE_SUPPORT_DB_PASSWORD": "support-pw-1"}
VALUES = {  # a value for each filter, as an analyst would set it
    "date_range": "2026-03-01~2026-08-31",
    "organization": [1, 2, 3],
    "event_status": ["live", "ended"],
    "order_number": "ORD-000001",
    "email": "nobody@example.com",
    "qr_code": "QR-NONE",
    "mollie_id": "tr_none",
}


@pytest.fixture(scope="module")
def catalogue(warehouse):
    tables: dict[str, dict[str, list[str]]] = {}
    rows = warehouse.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema in ('marts', 'support') order by table_schema, table_name, ordinal_position"
    ).fetchall()
    for schema, table, column in rows:
        tables.setdefault(schema, {}).setdefault(table, []).append(column)
    return tables


@pytest.fixture
def metabase_env(monkeypatch):
    def point_at(fake: FakeMetabase, **extra):
        monkeypatch.setenv("METABASE_URL", fake.url)
        monkeypatch.delenv("METABASE_API_KEY", raising=False)
        for var, value in {"METABASE_USER": ADMIN[0], "METABASE_PASSWORD": ADMIN[1], **ROLE_PASSWORDS}.items():
            monkeypatch.setenv(var, value)
        for var, value in extra.items():
            monkeypatch.setenv(var, value) if value is not None else monkeypatch.delenv(var, raising=False)

    return point_at


def sync(capsys) -> str:
    code = main(["metabase", "sync"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_a_fresh_metabase_gets_everything_and_a_second_sync_writes_nothing(
    catalogue, metabase_env, capsys, settings, warehouse
):
    declared = catalog.dashboards()
    with FakeMetabase(catalogue, admin=ADMIN) as fake:
        metabase_env(fake)
        first = sync(capsys)
        assert fake.users == {ADMIN[0]: ADMIN[1]}  # the first admin, set up with the setup token
        databases = {d["name"]: d for d in fake.databases.values()}
        assert sorted(databases) == ["Boxoffice marts", "Boxoffice support"]
        marts, support = databases["Boxoffice marts"], databases["Boxoffice support"]
        assert (marts["details"]["user"], marts["details"]["schema-filters-patterns"]) == ("analytics", "marts")
        assert (support["details"]["user"], support["details"]["schema-filters-patterns"]) == ("support", "support")
        assert {d["details"]["schema-filters-type"] for d in databases.values()} == {"inclusion"}
        assert {c["name"] for c in fake.collections.values()} == {"Boxoffice"} | {d.collection for d in declared}
        dashboards = {d["name"]: d for d in fake.dashboards.values()}
        assert sorted(dashboards) == sorted(d.name for d in declared)
        for dashboard in declared:
            placed = dashboards[dashboard.name]["dashcards"]
            assert len(placed) == len(dashboard.cards) and all(d["id"] > 0 for d in placed)
            wired = {m["target"][1][1] for d in placed for m in d["parameter_mappings"]}
            assert wired == {f.slug for f in dashboard.filters}  # every filter reaches at least one card
        assert len(fake.cards) == sum(len(d.cards) for d in declared)
        # the data model from the dbt docs: descriptions, and semantic types
        columns = {(t["schema"], t["name"], f["name"]): f for t in fake.tables.values() for f in t["fields"]}
        gmv, email = columns[("marts", "kpi_daily", "gmv")], columns[("support", "support_order_search", "buyer_email")]
        from boxoffice import dbt_project

        documented = dbt_project.manifest()["nodes"]["model.boxoffice.kpi_daily"]["columns"]["gmv"]["description"]
        assert gmv["description"] == documented and gmv["semantic_type"] == "type/Currency"
        assert email["semantic_type"] == "type/Email" and email["description"]
        kpi_table = next(t for t in fake.tables.values() if t["name"] == "kpi_daily")
        assert kpi_table["description"] and "raw" not in {t["schema"] for t in fake.tables.values()}
        assert ("POST", "/api/dashboard/1/cards") not in fake.writes()
        writes = len(fake.writes())
        assert f"{writes} of them writes" in first

        second = sync(capsys)
        assert fake.writes()[writes:] == []  # nothing to write: no POST, no PUT
        assert "0 of them writes" in second and "connections  2 unchanged" in second

        groups = {name: str(gid) for gid, name in fake.groups.items()}
        access = {
            (group, db["name"]): (
                fake.graph[groups[group]][str(db["id"])]["view-data"],
                fake.graph[groups[group]][str(db["id"])]["create-queries"],
            )
            for group in ("Analysts", "Support", "All Users")
            for db in databases.values()
        }
    assert access == {
        ("Analysts", "Boxoffice marts"): ("unrestricted", "query-builder-and-native"),
        ("Analysts", "Boxoffice support"): ("blocked", "no"),
        ("Support", "Boxoffice marts"): ("blocked", "no"),
        ("Support", "Boxoffice support"): ("unrestricted", "query-builder-and-native"),
        ("All Users", "Boxoffice marts"): ("blocked", "no"),
        ("All Users", "Boxoffice support"): ("blocked", "no"),
    }
    # the reader roles log in with the passwords Metabase was given, and read only their own schema
    dsn = psycopg.conninfo.conninfo_to_dict(settings.warehouse_dsn)
    login = {**dsn, "user": "analytics", "password": ROLE_PASSWORDS["METABASE_ANALYTICS_DB_PASSWORD"]}
    with psycopg.connect(**login) as conn:
        assert conn.execute("select count(*) from marts.kpi_daily").fetchone()[0] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select count(*) from support.support_order_search")


def by_name(fake: FakeMetabase, store: str, name: str) -> dict:
    (item,) = [x for x in getattr(fake, store).values() if x["name"] == name]
    return item


def test_a_changed_card_is_updated_in_place_and_a_removed_one_archived(catalogue, metabase_env, capsys, monkeypatch):
    with FakeMetabase(catalogue, admin=ADMIN, set_up=True) as fake:
        metabase_env(fake)
        hand_made = fake.next_id()  # a collection and card an analyst made by hand: never touched
        fake.collections[hand_made] = {"id": hand_made, "name": "Mine", "location": "/", "archived": False}
        fake.cards[fake.next_id()] = {
            "id": hand_made + 1,
            "name": "Payouts",
            "collection_id": hand_made,
            "archived": False,
            "dataset_query": {},
            "display": "table",
        }
        sync(capsys)
        summary_id = by_name(fake, "cards", "Monthly summary")["id"]
        payouts = [c for c in fake.cards.values() if c["name"] == "Payouts" and c["collection_id"] != hand_made]
        reconciliation = by_name(fake, "dashboards", "Reconciliation")
        before = len(fake.writes())

        declared = catalog.dashboards()

        def changed() -> list:
            result = []
            for dashboard in declared:
                cards = []
                for card in dashboard.cards:
                    if card.name == "Payouts":
                        continue
                    if card.name == "Monthly summary":
                        card = dataclasses.replace(card, sql=card.sql.replace("month_start desc", "month_start"))
                    cards.append(card)
                result.append(dataclasses.replace(dashboard, cards=tuple(cards)))
            return result

        monkeypatch.setattr(catalog, "dashboards", changed)
        sync(capsys)
        writes = fake.writes()[before:]
        assert sorted(writes) == sorted(
            [
                ("PUT", f"/api/card/{summary_id}"),  # in place: same id
                ("PUT", f"/api/card/{payouts[0]['id']}"),  # archived
                ("PUT", f"/api/dashboard/{reconciliation['id']}"),  # the layout without it
            ]
        )
        assert "order by month_start\n" in fake.cards[summary_id]["dataset_query"]["native"]["query"]
        assert fake.cards[payouts[0]["id"]]["archived"] is True and payouts[0]["id"] in fake.cards  # not deleted
        assert payouts[0]["id"] not in {d["card_id"] for d in fake.dashboards[reconciliation["id"]]["dashcards"]}
        assert fake.cards[hand_made + 1]["archived"] is False and fake.collections[hand_made]["name"] == "Mine"


def test_a_metabase_answering_mbql_5_is_read_as_well(catalogue, metabase_env, capsys):
    with FakeMetabase(catalogue, admin=ADMIN, set_up=True, mbql5=True) as fake:
        metabase_env(fake)
        sync(capsys)
        card = fake.card_answer(next(iter(fake.cards.values())), legacy=False)
        assert card["dataset_query"]["lib/type"] == "mbql/query"
        before = len(fake.writes())
        sync(capsys)
        assert fake.writes()[before:] == []


def test_wrong_or_missing_credentials_are_one_line(catalogue, metabase_env, capsys):
    with FakeMetabase(catalogue, admin=ADMIN, set_up=True, api_key="mb_right_key") as fake:
        cases = [
            ({"METABASE_API_KEY": "mb_wrong_key"}, 1, "METABASE_API_KEY is not accepted by"),
            ({"METABASE_PASSWORD": "not-it"}, 1, "METABASE_USER / METABASE_PASSWORD are not accepted by"),
            ({"METABASE_URL": None}, 2, "METABASE_URL is not set"),
            ({"METABASE_URL": "ftp://metabase"}, 2, "METABASE_URL is malformed"),
        ]
        for extra, code, message in cases:
            metabase_env(fake, **extra)
            assert main(["metabase", "sync"]) == code, extra
            err = capsys.readouterr().err
            assert message in err and len(err.strip().splitlines()) == 1, err
        assert fake.writes() == []
        metabase_env(fake, METABASE_API_KEY="mb_right_key")
        assert main(["metabase", "sync"]) == 0


def test_metabase_api_fails_silently_where_the_client_names_the_error(catalogue):
    """Why the calls go through dashboards/client.py: metabase-api's own helpers hide Metabase's answer."""
    with FakeMetabase(catalogue, admin=ADMIN, set_up=True) as fake:
        api = Metabase_API(fake.url, email=ADMIN[0], password=ADMIN[1])
        assert api.add_card_to_dashboard(1, 1) is None  # POST /api/dashboard/:id/cards: 404, silently
        assert api.post("/api/card/", json={"name": "no query"}) is False  # the 400's message is lost
        mb = Metabase(Credentials(fake.url, user=ADMIN[0], password=ADMIN[1]))
        with pytest.raises(MetabaseError, match="404 API endpoint does not exist"):
            mb.post("/api/dashboard/1/cards", {"cardId": 1})
        with pytest.raises(MetabaseError, match="dataset_query, display, visualization_settings: value must be"):
            mb.post("/api/card/", {"name": "no query"})


def rows_of(conn, dashboard, card: Card, values: dict) -> tuple[list[str], list[tuple]]:
    text, params = sql.render(card.sql, card.variables, dashboard.field_filters(card), values)
    cursor = conn.execute(text, params)
    return [c.name for c in cursor.description], cursor.fetchall()


def test_every_card_runs_as_its_role_with_its_filters_empty_and_set(warehouse):
    empty = 0
    for dashboard in catalog.dashboards():
        warehouse.execute(f"set role {dashboard.connection.role}")
        try:
            for card in dashboard.cards:
                tags = set(card.fields) | set(card.variables)
                columns, unfiltered = rows_of(warehouse, dashboard, card, {})
                assert set(card.columns) <= set(columns), (dashboard.name, card.name, columns)
                empty += not unfiltered
                chosen = {tag: VALUES[tag] for tag in tags}
                columns, filtered = rows_of(warehouse, dashboard, card, chosen)
                assert set(card.columns) <= set(columns)
                if "organization_id" in columns and "organization" in chosen:
                    assert {r[columns.index("organization_id")] for r in filtered} <= set(VALUES["organization"])
                if card.fields and card.fields.get("date_range", "").endswith(".month_start"):
                    months = {r[columns.index("month_start")] for r in filtered} if "month_start" in columns else set()
                    assert all(str(m) >= "2026-03-01" and str(m) <= "2026-08-31" for m in months), card.name
                if tags:
                    assert len(filtered) <= len(unfiltered) or card.display == "smartscalar", card.name
        finally:
            warehouse.execute("reset role")
    assert empty <= 2  # the demo has data for (almost) every card


def test_the_kpi_cards_are_the_kpis_of_the_mart(warehouse):
    kpis = [r[0] for r in warehouse.execute("select kpi from marts.kpi_periods group by kpi order by min(kpi_order)")]
    assert kpis == [kpi for kpi, _ in catalog.KPIS]
    numbers = warehouse.execute(
        "select column_name from information_schema.columns where table_schema = 'marts' "
        "and table_name = 'kpi_snapshot' and data_type in ('bigint', 'integer', 'numeric') order by ordinal_position"
    ).fetchall()
    assert [n for (n,) in numbers] == [column for column, _ in catalog.SNAPSHOT]  # every number has its card


@pytest.mark.parametrize(
    ("role", "allowed", "denied"),
    [
        (
            "analytics",
            "marts.kpi_daily",
            [
                "raw.platform_orders",
                "staging.stg_platform__orders",
                "intermediate.int_orders",
                "support.support_order_search",
            ],
        ),
        (
            "support",
            "support.support_order_search",
            ["marts.kpi_daily", "intermediate.int_orders", "staging.stg_platform__orders", "raw.platform_orders"],
        ),
    ],
)
def test_each_role_reads_its_schema_and_nothing_below(warehouse, role, allowed, denied):
    warehouse.execute(f"set role {role}")
    try:
        assert warehouse.execute(f"select count(*) from {allowed}").fetchone()[0] > 0
        for relation in denied:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                warehouse.execute(f"select 1 from {relation} limit 1")
    finally:
        warehouse.execute("reset role")


def test_the_declarations_keep_their_rules():
    dashboards = catalog.dashboards()
    check(dashboards)
    assert {d.name for d in dashboards} == {
        "Platform KPIs",
        "Financials",
        "Reconciliation",
        "Fraud",
        "System health",
        "Buyers",
        "Support",
    }
    broken = dataclasses.replace(dashboards[1], cards=(Card("x", "select 1 where {{nope}}", fields={"nope": "a"}),))
    with pytest.raises(DeclarationError, match="field filter nope is no filter of the dashboard"):
        check([broken])
    untagged = dataclasses.replace(dashboards[1], cards=(Card("x", "select {{date_range}}"),))
    with pytest.raises(DeclarationError, match="tags"):
        check([untagged])


def test_the_dbt_exposures_are_generated_from_the_declarations():
    from boxoffice import dbt_project

    assert EXPOSURES_FILE.read_text() == exposures_yaml(catalog.dashboards())
    exposures = dbt_project.manifest()["exposures"]
    reconciliation = exposures["exposure.boxoffice.reconciliation_dashboard"]
    assert "model.boxoffice.fct_settlement_reconciliation" in reconciliation["depends_on"]["nodes"]
    assert len(exposures) == len(catalog.dashboards())


def test_the_sql_renders_as_metabase_would():
    text, params = sql.render(
        "select * from t where {{d}} [[and a = {{a}}]] [[and b = {{b}}]] and c like '%x'",
        {"a": "text", "b": "number"},
        {"d": sql.FieldFilter("marts.t.day", "date/all-options")},
        {"a": "it", "d": "2026-03-01~2026-03-31"},
    )
    assert text == (
        'select * from t where ("marts"."t"."day" >= %(d__from)s and "marts"."t"."day" < %(d__to)s) '
        "and a = %(a)s  and c like '%%x'"
    )
    assert json.loads(json.dumps(params, default=str)) == {"d__from": "2026-03-01", "d__to": "2026-04-01", "a": "it"}
    from datetime import date

    today = date(2026, 12, 5)
    assert sql.date_bounds("past30days", today) == (date(2026, 11, 5), today)
    assert sql.date_bounds("past3months", today) == (date(2026, 9, 1), date(2026, 12, 1))
    assert sql.date_bounds("2026-03", today) == (date(2026, 3, 1), date(2026, 4, 1))
    with pytest.raises(sql.FilterValueError):
        sql.date_bounds("yesterday-ish", today)


def test_the_dashboards_asset_skips_without_metabase_and_syncs_with_one(catalogue, monkeypatch):
    """The asset dashboards/metabase, configured through the settings resource's own fields."""
    import dagster as dg

    from orchestration.dashboard_assets import SKIPPED, SYNC_KEY, metabase_dashboards
    from orchestration.resources import BoxofficeSettings

    def events(result) -> dict:
        return {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}

    monkeypatch.delenv("METABASE_URL", raising=False)
    unset = events(dg.materialize([metabase_dashboards], resources={"settings": BoxofficeSettings()}))
    assert len(unset) == 1 + len(catalog.dashboards())  # the sync, and each dashboard downstream of its marts
    assert {m["skipped"].value for m in unset.values()} == {SKIPPED}
    reconciliation = metabase_dashboards.asset_deps[dg.AssetKey(["dashboards", "reconciliation"])]
    assert dg.AssetKey(["marts", "fct_settlement_reconciliation"]) in reconciliation
    with FakeMetabase(catalogue, admin=ADMIN, set_up=True) as fake:
        configured = BoxofficeSettings(metabase_url=fake.url, metabase_user=ADMIN[0], metabase_password=ADMIN[1])
        result = dg.materialize([metabase_dashboards], resources={"settings": configured})
        metadata = {k: v.value for k, v in events(result)[SYNC_KEY].items()}
        assert metadata["dashboards created"] == 7 and metadata["writes"] == len(fake.writes())
        assert {d["name"] for d in fake.dashboards.values()} == {d.name for d in catalog.dashboards()}


def pdf_text(page, tmp_path) -> str:
    import shutil
    import subprocess

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make browser` (part of `make test`) installs it"
    pdf = tmp_path / f"{page.stem}.pdf"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def test_the_preview_pages_show_what_analysts_will_see(settings, warehouse, capsys, tmp_path):
    """boxoffice metabase preview, rendered in headless Chromium: numbers read off the page equal the marts'."""
    assert main(["metabase", "preview"]) == 0
    folder = settings.reports_dir / "dashboards"
    assert "7 dashboards previewed" in capsys.readouterr().out
    kpis = pdf_text(folder / "platform_kpis.html", tmp_path)
    gmv, previous = warehouse.execute(
        "select current_value, previous_value from marts.kpi_periods where kpi = 'gmv' and period = 'this_month'"
    ).fetchone()
    assert f"{gmv:,.2f}" in kpis and f"{previous:,.2f}" in kpis
    (revenue,) = warehouse.execute(
        "select previous_value from marts.kpi_periods where kpi = 'net_platform_revenue' and period = 'this_month'"
    ).fetchone()
    assert f"{revenue:,.2f}" in kpis
    reconciliation = pdf_text(folder / "reconciliation.html", tmp_path)
    reference, reported = warehouse.execute(
        "select settlement_reference, reported_amount from marts.fct_settlement_reconciliation "
        "order by settlement_date desc nulls first limit 1"
    ).fetchone()
    assert reference in reconciliation and f"{reported:,.2f}" in reconciliation
    assert "<script" not in (folder / "reconciliation.html").read_text()  # nothing remote: it opens anywhere
    support = (folder / "support.html").read_text()
    assert "As the role <b>support</b>" in support
