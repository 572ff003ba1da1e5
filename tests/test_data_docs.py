"""GX Data Docs in REPORTS_DIR, written by the pipeline's checks, readable without the internet."""

import json
import re


def test_data_docs_list_every_suite_and_load_nothing_remote(settings, runs):
    from expectations import financials

    docs = settings.reports_dir / "data_docs"
    manifest = json.loads((docs / "suites.json").read_text())
    assert set(manifest) == {"settlement_reconciliation", *(s.name for s in financials.SUITES)}
    index = (docs / "index.html").read_text()
    for suite, entry in manifest.items():
        assert (docs / entry["suite_page"]).exists() and (docs / entry["result_page"]).exists(), suite
        assert f'href="{entry["suite_page"]}"' in index and f'href="{entry["result_page"]}"' in index
    statuses = {e["name"]: e["status"] for s in manifest.values() for e in s["expectations"]}
    assert statuses["settlement_matches_platform"] == "failed"  # the warn-level work list has rows
    assert {n: s for n, s in statuses.items() if n != "settlement_matches_platform"} == {
        n: "passed" for n in statuses if n != "settlement_matches_platform"
    }
    remote = re.compile(r"<(script|link|img)\b[^>]*(src|href)=\"https?://", re.IGNORECASE)
    pages = list(docs.rglob("*.html"))
    assert len(pages) >= 2 * len(manifest) + 1
    assert [p.name for p in pages if remote.search(p.read_text())] == []
    result = (docs / manifest["settlement_reconciliation"]["result_page"]).read_text()
    assert "Mollie's own identity" in result and "fa-times" in result  # the failed expectation is marked
