"""One real pipeline for the whole test session.

A fresh embedded PostgreSQL in a temporary BOXOFFICE_HOME holds a generated platform database and a
Mollie sandbox database; the sandbox serves Mollie API v2 over real HTTP from a thread; the real Dagster
job (extract -> dbt build -> GX checks -> reports) runs twice against them.
"""

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

AS_OF = datetime(2026, 11, 1, 12, tzinfo=UTC)
ORDERS = 1500
SEED = 7
PII_SALT = "test-salt-'7f3a9c"  # distinctive, and with a quote: it must never break the SQL


@pytest.fixture(scope="session")
def home():
    path = Path(tempfile.mkdtemp(prefix="bxt-", dir="/tmp"))  # short: it holds the server's Unix socket
    saved = dict(os.environ)
    for var in ("WAREHOUSE_DSN", "SOURCE_DSN", "MOLLIE_API_URL", "MOLLIE_API_TOKEN", "REPORTS_DIR"):
        os.environ.pop(var, None)
    os.environ["BOXOFFICE_HOME"] = str(path)
    os.environ["REPORTS_DIR"] = str(path / "reports")
    os.environ["BOXOFFICE_AS_OF"] = AS_OF.isoformat()  # the marts' "today" is the generated data's
    os.environ["PII_SALT"] = PII_SALT
    yield path
    from boxoffice.warehouse import EmbeddedServer

    EmbeddedServer(path).down()
    os.environ.clear()
    os.environ.update(saved)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def server(home):
    from boxoffice.warehouse import EmbeddedServer

    s = EmbeddedServer(home)
    s.up()
    return s


PG15_BIN = Path("/usr/lib/postgresql/15/bin")  # Debian's postgresql-15 package (make test installs it)


@pytest.fixture(scope="session")
def pg15(home):
    """A PostgreSQL 15 server of the tests' own, beside the embedded 18: the oldest supported version."""
    from boxoffice.warehouse import PostgresServer

    if not (PG15_BIN / "initdb").exists():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL 15 is not installed ({PG15_BIN}); make test installs it with apt")
        pytest.skip(f"no PostgreSQL 15 binaries in {PG15_BIN} (Debian's postgresql-15 package)")
    s = PostgresServer(home / "pg15", PG15_BIN, "postgres", home / "pg15.json")
    s.up()
    yield s
    s.down()


@pytest.fixture(params=["18", "15"])  # function scope: pytest must not reorder modules around it
def any_server(request):
    """Each supported end of the range: the embedded PostgreSQL 18 and Debian's 15."""
    return request.getfixturevalue("server" if request.param == "18" else "pg15")


@pytest.fixture(scope="session")
def demo(server):
    """The generated sources, with the Mollie sandbox serving over HTTP."""
    from boxoffice.demo import build, sandbox

    sources = build.generate(server, ORDERS, SEED, AS_OF, discrepancy_rate=0.0005)
    http = sandbox.SandboxServer(sources.sandbox_dsn, sources.token).start()
    os.environ.update(SOURCE_DSN=sources.source_dsn, MOLLIE_API_URL=http.url, MOLLIE_API_TOKEN=sources.token)
    yield sources, http
    http.stop()


@pytest.fixture(scope="session")
def settings(demo):
    from boxoffice.settings import Settings

    return Settings.load()


@pytest.fixture(scope="session")
def runs(settings):
    """The real Dagster job, run twice on unchanged sources."""
    from boxoffice import dbt_project
    from orchestration import pipeline

    dbt_project.ensure_manifest()
    first = pipeline.run_everything(settings)
    second = pipeline.run_everything(settings)
    return first, second


@pytest.fixture(scope="session")
def warehouse(settings, runs):
    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:  # no lock held between tests
        yield conn


@pytest.fixture(scope="session")
def source(settings):
    with psycopg.connect(settings.source_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def sandbox_db(demo):
    sources, _ = demo
    with psycopg.connect(sources.sandbox_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def descendants():
    """dbt's models below some nodes, read from its child map (independently of orchestration/build_plan.py)."""

    def descendants(manifest: dict, roots: set[str]) -> set[str]:
        """The roots and every model below them, read from dbt's child map."""
        found, todo = set(), list(roots)
        while todo:
            uid = todo.pop()
            for child in manifest["child_map"].get(uid, []):
                if child.startswith("model.") and child not in found:
                    found.add(child)
                    todo.append(child)
        return found | {r for r in roots if r.startswith("model.")}

    return descendants
