"""GX Data Docs that read offline: GX's pages load Bootstrap, jQuery and Vega from CDNs and build their
index with JavaScript. Here the remote tags are removed, a small stylesheet is inlined, and a plain
index lists every suite with its latest result, so the folder opens from a USB stick or a file share.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path

REMOTE = re.compile(
    r"<script\b[^>]*>.*?</script>|<link\b[^>]*href=\"https?://[^\"]*\"[^>]*>|<img\b[^>]*src=\"https?://[^\"]*\"[^>]*>",
    re.DOTALL | re.IGNORECASE,
)
REMOTE_CSS = re.compile(r"url\(['\"]?https?://[^)]*\)")
STYLE = """<style>
body { font: 13px/1.45 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; } th, td { border: 1px solid #ddd; padding: 3px 6px; }
.text-danger, .fail { color: #b3261e; } .text-success, .pass { color: #1b7f3b; }
.collapse:not(.show) { display: block; } .d-none { display: none; } nav, .navbar { display: none; }
.fa-check-circle::before { content: "\2714  passed"; font-style: normal; }
.fa-times::before { content: "\2718  failed"; font-style: normal; }
</style>"""
MANIFEST = "suites.json"


def _offline(page: Path) -> None:
    text = REMOTE_CSS.sub("none", REMOTE.sub("", page.read_text()))
    text = text.replace("</head>", STYLE + "</head>", 1) if STYLE not in text else text
    page.write_text(text)


def status_text(expectation: dict) -> str:
    """passed / failed, or "could not run: <the database's message>" for an expectation that errored."""
    if expectation["status"] == "errored":
        return "errored: could not run: " + html.escape(expectation.get("error") or "")
    return expectation["status"]


def publish(docs_dir: Path, suite: str, schema: str, table: str, outcomes) -> None:
    """Make every page offline-readable and rewrite the index with this suite's latest result."""
    site = docs_dir / suite  # GX's own site for this suite (see runner.run_suite)
    for page in site.rglob("*.html"):
        _offline(page)
    manifest_path = docs_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    runs = sorted((site / "validations" / suite).glob("*/*/*.html"), key=lambda p: p.parent.name)
    manifest[suite] = {
        "table": f"{schema}.{table}",
        "validated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "suite_page": f"{suite}/expectations/{suite}.html",
        "result_page": str(runs[-1].relative_to(docs_dir)) if runs else None,
        "expectations": [
            {
                "name": o.name,
                "status": "errored" if o.errored else ("passed" if o.success else "failed"),
                "unexpected": o.unexpected_count,
                "error": o.error_line,
            }
            for o in outcomes
        ],
    }
    manifest_path.write_text(json.dumps(manifest, indent=2))
    rows = []
    for name, s in sorted(manifest.items()):
        for e in s["expectations"]:
            result = f'<a href="{html.escape(s["result_page"])}">result</a>' if s["result_page"] else ""
            rows.append(
                f'<tr><td><a href="{html.escape(s["suite_page"])}">{html.escape(name)}</a></td>'
                f"<td>{html.escape(s['table'])}</td><td>{html.escape(e['name'])}</td>"
                f'<td class="{"pass" if e["status"] == "passed" else "fail"}">{status_text(e)}</td>'
                f"<td>{e['unexpected']}</td><td>{s['validated_at']}</td><td>{result}</td></tr>"
            )
    (docs_dir / "index.html").write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Boxoffice data docs</title>'
        f"{STYLE}</head><body><h1>Great Expectations: Boxoffice suites</h1>"
        "<p>Latest validation of every suite. Each suite's page lists its expectations; each result page the "
        "rows that disagree.</p><table><tr><th>suite</th><th>table</th><th>expectation</th><th>status</th>"
        "<th>rows that disagree</th><th>validated</th><th></th></tr>" + "".join(rows) + "</table></body></html>"
    )
