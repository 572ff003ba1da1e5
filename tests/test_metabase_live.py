"""Against a real Metabase, where one runs (none can here): set METABASE_URL with METABASE_API_KEY, or
METABASE_USER and METABASE_PASSWORD, and METABASE_ANALYTICS_DB_PASSWORD / METABASE_SUPPORT_DB_PASSWORD; that
Metabase must reach the tests' embedded warehouse (host networking, see dashboards/compose.yml). The demo's
dashboards are synced into it and every card's result is read back through /api/card/:id/query."""

import os

import pytest

from dashboards import catalog
from dashboards.publish import credentials, publish

LIVE = os.environ.get("METABASE_URL") and (
    os.environ.get("METABASE_API_KEY") or (os.environ.get("METABASE_USER") and os.environ.get("METABASE_PASSWORD"))
)
pytestmark = pytest.mark.skipif(not LIVE, reason="no Metabase: set METABASE_URL and its credentials to run")


def test_a_real_metabase_syncs_and_answers_every_card(settings, runs):
    summary, mb = publish(settings)
    again, mb2 = publish(settings)
    assert mb2.writes() == 0, again.lines()
    assert credentials(settings).url == mb.url
    collections = {c["name"]: c["id"] for c in mb.get("/api/collection/") if c.get("id") != "root"}
    for dashboard in catalog.dashboards():
        items = mb.get(f"/api/collection/{collections[dashboard.collection]}/items", models="card")
        ids = {item["name"]: item["id"] for item in items["data"]}
        for card in dashboard.cards:
            answer = mb.post(f"/api/card/{ids[card.name]}/query", {"parameters": [], "ignore_cache": True})
            assert answer["status"] == "completed", (card.name, answer.get("error"))
            columns = {c["name"] for c in answer["data"]["cols"]}
            assert set(card.columns) <= columns, card.name
