"""A missing or malformed setting is a one-line error naming it, not a traceback."""

import pytest

from boxoffice.cli import main
from boxoffice.settings import Settings, SettingsError


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in (
        "WAREHOUSE_DSN",
        "SOURCE_DSN",
        "MOLLIE_API_URL",
        "MOLLIE_API_TOKEN",
        "REPORTING_TIMEZONE",
        "REPORTS_DIR",
        "SOURCE_SCHEMA",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BOXOFFICE_HOME", str(tmp_path))  # no demo.env there
    return monkeypatch


@pytest.mark.parametrize(
    ("var", "value", "named"),
    [
        ("WAREHOUSE_DSN", "mysql://x@y/z", "WAREHOUSE_DSN"),
        ("SOURCE_DSN", "not a dsn", "SOURCE_DSN"),
        ("MOLLIE_API_TOKEN", "sk_live_123", "MOLLIE_API_TOKEN"),
        ("MOLLIE_API_URL", "api.mollie.com", "MOLLIE_API_URL"),
        ("MOLLIE_API_URL", "https://api.mollie.com/v2", "MOLLIE_API_URL"),
        ("REPORTING_TIMEZONE", "Mars/Olympus", "REPORTING_TIMEZONE"),
        ("SOURCE_SCHEMA", "public; drop table x", "SOURCE_SCHEMA"),
        ("DBT_WORK_MEM_MB", "64MB", "DBT_WORK_MEM_MB"),
    ],
)
def test_malformed_setting_is_one_line_naming_it(clean_env, capsys, var, value, named):
    clean_env.setenv(var, value)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("boxoffice: ") and named in err
    assert "Traceback" not in err


def test_missing_source_is_one_line(clean_env, capsys):
    clean_env.setenv("WAREHOUSE_DSN", "postgresql://u@127.0.0.1:1/w")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err == "boxoffice: SOURCE_DSN is not set: point it at the platform database, or run `boxoffice demo`\n"


def test_missing_token_names_it(clean_env):
    with pytest.raises(SettingsError, match="MOLLIE_API_TOKEN is not set"):
        _ = Settings.load().mollie_api_token


def test_precedence_env_over_demo_env(clean_env, tmp_path):
    (tmp_path / "demo.env").write_text("SOURCE_DSN=postgresql://demo@127.0.0.1:1/platform\nREPORTING_TIMEZONE=UTC\n")
    assert Settings.load().source_dsn == "postgresql://demo@127.0.0.1:1/platform"
    clean_env.setenv("SOURCE_DSN", "postgresql://env@127.0.0.1:1/platform")
    settings = Settings.load()
    assert settings.source_dsn == "postgresql://env@127.0.0.1:1/platform"
    assert settings.reporting_timezone == "UTC"
    assert settings.mollie_api_url == "https://api.mollie.com"


def test_as_of_must_be_an_iso_timestamp(clean_env, capsys):
    clean_env.setenv("BOXOFFICE_AS_OF", "yesterday")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "BOXOFFICE_AS_OF is malformed" in err and "'yesterday'" in err
    clean_env.setenv("BOXOFFICE_AS_OF", "2026-11-01T12:00:00")  # no zone: UTC
    assert Settings.load().as_of.isoformat() == "2026-11-01T12:00:00+00:00"


def unusable(settings, server):
    """(setting, value, what the one line must say) for each way a source or the warehouse cannot be used."""
    return [
        ("SOURCE_DSN", server.url("no_such_database"), 'database "no_such_database" does not exist'),
        ("WAREHOUSE_DSN", server.url("postgres").replace(server.password, "wrong"), "password authentication failed"),
        ("MOLLIE_API_URL", "http://127.0.0.1:1", "cannot reach the Mollie API at http://127.0.0.1:1 (MOLLIE_API_URL)"),
        ("MOLLIE_API_TOKEN", "access_NotTheSandboxToken", "refused MOLLIE_API_TOKEN (401 Unauthorized)"),
    ]


def test_an_unusable_source_or_warehouse_is_one_line_saying_what_to_check(settings, server, monkeypatch, capsys):
    for var, value, says in unusable(settings, server):
        with monkeypatch.context() as env:
            env.setenv(var, value)
            assert main(["run"]) == 1, var
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and says in err and "Traceback" not in err, err
            assert server.password not in err and var in err


def test_dbt_sessions_get_the_work_mem_setting(settings, monkeypatch):
    """dbt-postgres has no session options: libpq's PGOPTIONS carries work_mem to every dbt connection,
    after the options the user set."""
    import psycopg

    from orchestration.resources import dbt_env

    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=600000")
    monkeypatch.setenv("DBT_WORK_MEM_MB", "48")
    env = dbt_env(Settings.load())
    monkeypatch.setenv("PGOPTIONS", env["PGOPTIONS"])
    with psycopg.connect(settings.warehouse_dsn) as conn:  # libpq, as dbt's psycopg2 is
        assert conn.execute("show work_mem").fetchone()[0] == "48MB"
        assert conn.execute("show statement_timeout").fetchone()[0] == "10min"
