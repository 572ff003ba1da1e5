"""A missing or malformed setting is a one-line error naming it, not a traceback."""

import pytest

from boxoffice.cli import main
from boxoffice.settings import Settings, SettingsError


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in ("WAREHOUSE_DSN", "SOURCE_DSN", "MOLLIE_API_URL", "MOLLIE_API_TOKEN", "REPORTING_TIMEZONE",
                "REPORTS_DIR", "SOURCE_SCHEMA"):  # fmt: skip
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
