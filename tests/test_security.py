"""No open door: the embedded server wants its password, the PII salt is in no SQL text, no password is
echoed in an error, and finance's files hold no live formula."""

import os
import stat
import subprocess

import dagster as dg
import psycopg
import pytest

from boxoffice.cli import main
from boxoffice.settings import DBT_PROJECT_DIR, Settings
from boxoffice.warehouse import PostgresServer

from .conftest import PG15_BIN, PII_SALT

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another OS user (runuser)")


def refused(dsn: str) -> str:
    with pytest.raises(psycopg.OperationalError) as err:
        psycopg.connect(dsn, connect_timeout=5).close()
    return str(err.value)


def test_the_embedded_server_wants_its_password_everywhere(server):
    assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
    port = server.port
    assert "password" in refused(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    assert "password authentication failed" in refused(f"postgresql://postgres:guess@127.0.0.1:{port}/postgres")
    assert "password" in refused(f"host={server.pgdata} port={port} user=postgres dbname=postgres")
    # replication (what pg_basebackup would use) has no entry at all
    assert "replication" in refused(server.url() + "?replication=true")
    with psycopg.connect(server.url()) as conn:  # with the password it works, on TCP and on the socket
        assert conn.execute("select 1").fetchone() == (1,)
    with psycopg.connect(f"host={server.pgdata} port={port} user=postgres password={server.password}") as conn:
        assert conn.execute("select current_user").fetchone() == ("postgres",)


@as_root
def test_another_os_user_gets_neither_the_password_nor_a_connection(server):
    def as_nobody(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", "nobody", "--", *command], capture_output=True, text=True, timeout=30)

    assert as_nobody("cat", str(server.password_file)).returncode != 0
    socket = as_nobody("psql", "-w", f"host={server.pgdata} port={server.port} user=postgres", "-c", "select 1")
    assert socket.returncode != 0 and "Permission denied" in socket.stderr
    tcp = as_nobody("psql", "-w", f"host=127.0.0.1 port={server.port} user=postgres", "-c", "select 1")
    assert tcp.returncode != 0 and "password" in tcp.stderr


def test_a_data_directory_that_trusted_everyone_is_secured_on_start(home):
    """Servers initialised before passwords (trust for every local connection) get one when started."""
    if not (PG15_BIN / "initdb").exists():
        pytest.skip("needs PostgreSQL 15's initdb")
    legacy = PostgresServer(home / "legacy", PG15_BIN, "postgres", home / "legacy.json")
    legacy.pgdata.mkdir(parents=True)
    if legacy._run_as():
        legacy._prepare_for_os_user()
    initdb = [str(PG15_BIN / "initdb"), "-D", str(legacy.pgdata), "--auth=trust", "-U", "postgres"]
    subprocess.run(initdb, check=True, capture_output=True, **legacy._run_as())
    try:
        legacy.up()
        assert "password" in refused(f"postgresql://postgres@127.0.0.1:{legacy.port}/postgres")
        with psycopg.connect(legacy.url()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        legacy.down()


def test_the_pii_salt_is_in_no_sql_text_nor_dbt_artifact(settings, runs, warehouse):
    with psycopg.connect(settings.warehouse_dsn) as conn:
        conn.execute("set role analytics")
        catalogues = (
            "select definition from pg_views",
            "select definition from pg_matviews",
            "select prosrc from pg_proc",
            "select pg_get_viewdef(oid) from pg_class where relkind = 'v'",
            "select adbin::text from pg_attrdef",
        )
        for catalogue in catalogues:
            texts = [t for (t,) in conn.execute(catalogue) if t]
            assert not [t for t in texts if PII_SALT in t], catalogue
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select value from raw._build_settings")
    assert warehouse.execute("select value from raw._build_settings where name = 'pii_salt'").fetchone() == (PII_SALT,)
    files = [p for p in (DBT_PROJECT_DIR / "target").rglob("*") if p.is_file()]
    assert len(files) > 10
    assert [p for p in files if PII_SALT.encode() in p.read_bytes()] == []
    # the hashes still come from the salt (test_marts checks them against Python's sha256): by joining it
    compiled = (DBT_PROJECT_DIR / "target").rglob("compiled/boxoffice/models/intermediate/int_orders.sql")
    assert '"raw"."_build_settings"' in max(compiled, key=lambda p: p.stat().st_mtime).read_text()


def test_the_demo_salt_on_a_warehouse_of_ones_own_is_warned_about(settings, runs, monkeypatch, capsys):
    from orchestration import pipeline
    from orchestration.definitions import defs
    from orchestration.warehouse_assets import build_settings

    monkeypatch.setenv("WAREHOUSE_DSN", settings.warehouse_dsn)
    monkeypatch.delenv("PII_SALT")
    own = Settings.load()
    assert own.demo_salt_warning and "PII_SALT" in own.demo_salt_warning
    result = dg.materialize([build_settings], resources=defs.resources)
    (materialization,) = result.asset_materializations_for_node("raw___build_settings")
    assert materialization.metadata["warning"].value == own.demo_salt_warning
    pipeline.print_summary(own, runs[1])
    assert f"WARNING: {own.demo_salt_warning}" in capsys.readouterr().out
    monkeypatch.undo()  # put the session's salt back in its table
    dg.materialize([build_settings], resources=defs.resources)
    assert Settings.load().demo_salt_warning is None


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("WAREHOUSE_DSN", "postgresql://bob:hunter2-secret@db.example:notaport/w"),
        ("SOURCE_DSN", "mysql://bob:hunter2-secret@db.example/w"),
    ],
)
def test_a_malformed_dsn_is_named_without_its_password(var, value, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("BOXOFFICE_HOME", str(tmp_path))
    monkeypatch.setenv(var, value)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert var in err and "hunter2" not in err and "***" in err


def test_an_unreachable_warehouse_is_one_line_without_its_password(monkeypatch, capsys, tmp_path, settings):
    monkeypatch.setenv("BOXOFFICE_HOME", str(tmp_path))
    monkeypatch.setenv("WAREHOUSE_DSN", "postgresql://bob:hunter2-secret@127.0.0.1:1/w")
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hunter2" not in err and "Traceback" not in err
    assert err.startswith(
        "boxoffice: cannot connect to the warehouse (WAREHOUSE_DSN postgresql://bob:***@127.0.0.1:1/w)"
    )
