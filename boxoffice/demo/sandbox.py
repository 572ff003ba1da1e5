"""A local Mollie API v2 sandbox: Bearer auth, cursor pagination with `_links.next`, amounts as strings.

The objects live in a PostgreSQL database (written by `store`), so the server is stateless and can
run as a background process (`boxoffice sandbox up`) or in a thread inside a test. Faults (429 with
Retry-After, 500, slow answers) can be injected for resilience tests.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import psycopg
import requests

from boxoffice.demo.mollie import MollieAccount
from boxoffice.demo.streams import JsonbBinaryDumper

KINDS = {  # URL segment -> (stored kind, embedded list name)
    "payments": ("payment", "payments"),
    "refunds": ("refund", "refunds"),
    "chargebacks": ("chargeback", "chargebacks"),
    "captures": ("capture", "captures"),
    "settlements": ("settlement", "settlements"),
    "balances": ("balance", "balances"),
}
DOCS = "https://docs.mollie.com/reference/v2"


def store(account: MollieAccount, dsn: str) -> dict[str, int]:
    """(Re)create the sandbox's tables and stream every object in; returns counts per kind."""
    with psycopg.connect(dsn) as conn:
        _create_tables(conn)
        _copy_objects(conn, account.objects())
        _index_and_plant(conn, account.planted)
    return account.counts


def _create_tables(conn: psycopg.Connection) -> None:
    conn.execute("drop table if exists objects, planted")
    conn.execute("""
        create table objects (
            kind text not null, id text not null, seq bigint not null, parent_id text,
            settlement_id text, reference text, body jsonb not null)""")
    conn.execute("""
        create table planted (kind text, mollie_payment_id text, mollie_refund_id text,
                              settlement_id text, expected_match_status text)""")


def _copy_objects(conn: psycopg.Connection, objects) -> None:
    conn.adapters.register_dumper(None, JsonbBinaryDumper)
    with conn.cursor().copy(
        "copy objects (kind, id, seq, parent_id, settlement_id, reference, body) from stdin (format binary)"
    ) as copy:
        copy.set_types(["text", "text", "int8", "text", "text", "text", "jsonb"])
        for row in objects:
            copy.write_row(row)


def _index_and_plant(conn: psycopg.Connection, planted: list[dict]) -> None:
    # built after the rows are in: faster than keeping them up to date row by row
    conn.execute("alter table objects add primary key (kind, id)")
    # a top-level list's page reads its 251 rows; without it each page sorted every object of its kind
    conn.execute("create index on objects (kind, seq)")
    conn.execute("create index on objects (kind, parent_id, seq)")
    conn.execute("create index on objects (kind, settlement_id, seq)")
    with conn.cursor() as cur:
        cur.executemany(
            "insert into planted values (%(kind)s, %(mollie_payment_id)s, %(mollie_refund_id)s, "
            "%(settlement_id)s, %(expected_match_status)s)",
            planted,
        )


class BackgroundStore:
    """`store` in forked processes, so the account is written while the platform's last rows are (the
    account is inherited, not copied; a child never touches the parent's connections).

    Two processes, one per half of `MollieAccount.parts()`, each a COPY in list order (their rows interleave
    in the table; the API reads it by index); `result()` waits for both, then builds the indexes."""

    def __init__(self, account: MollieAccount, dsn: str):
        with psycopg.connect(dsn) as conn:
            _create_tables(conn)
        self.dsn, self.counts, self.planted = dsn, account.counts, account.planted
        context = multiprocessing.get_context("fork")
        self.workers = []
        for part in range(len(account.parts())):
            receive, send = context.Pipe(duplex=False)
            name = f"mollie-sandbox-store-{part}"
            process = context.Process(target=self._run, args=(account, part, dsn, send), name=name)
            process.start()
            send.close()
            self.workers.append((process, receive))
        # the parent keeps no reference to the account: its memory is the children's alone

    @staticmethod
    def _run(account: MollieAccount, part: int, dsn: str, send) -> None:
        platform = account.platform
        platform.refunds, platform.events, platform.organizations = [], [], []  # the child writes without them
        try:
            with psycopg.connect(dsn) as conn:
                _copy_objects(conn, account.parts()[part])
            send.send(None)
        except BaseException as exc:  # reported to the parent, which raises it
            send.send(f"{type(exc).__name__}: {exc}")

    def result(self) -> dict[str, int]:
        errors = []
        for process, receive in self.workers:
            try:
                errors.append(receive.recv())
            except EOFError:
                errors.append(f"the process died (exit code {process.exitcode})")
            process.join()
        if error := next((e for e in errors if e), None):
            raise RuntimeError(f"writing the Mollie sandbox failed: {error}")
        with psycopg.connect(self.dsn) as conn:
            _index_and_plant(conn, self.planted)
        return self.counts

    def stop(self) -> None:
        for process, _ in self.workers:
            if process.is_alive():
                process.kill()
            process.join()


@dataclass
class Faults:
    """Every nth request of a connection answers 429 / 500; `delay` seconds are added to each answer."""

    every_429: int = 0
    every_500: int = 0
    delay: float = 0.0
    retry_after: int = 1


class SandboxServer:
    def __init__(self, dsn: str, token: str, host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None):
        self.dsn = dsn
        self.token = token
        self.faults = faults or Faults()
        self.requests = 0
        self.in_flight = self.most_in_flight = 0  # requests being answered now, and the most at once
        self.lock = threading.Lock()
        self.local = threading.local()
        self.httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def connection(self) -> psycopg.Connection:
        conn = getattr(self.local, "conn", None)
        if conn is None or conn.closed:
            conn = self.local.conn = psycopg.connect(self.dsn, autocommit=True)
        return conn

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # headers and body go out in two writes: without this, Nagle + delayed ACK cost 40 ms each
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802
                with server.lock:
                    server.requests += 1
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                # faults count the requests of this connection (a client's session): with a count shared by
                # clients that run at once, one client's retries could all land on faults, an unbounded streak
                self.served = getattr(self, "served", 0) + 1
                try:
                    self.answer(self.served)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def answer(self, n: int) -> None:
                f = server.faults
                if f.delay:
                    time.sleep(f.delay)
                if f.every_429 and n % f.every_429 == 0:
                    return self.error(
                        429, "Too Many Requests", "Rate limit exceeded", {"Retry-After": str(f.retry_after)}
                    )
                if f.every_500 and n % f.every_500 == 0:
                    return self.error(500, "Internal Server Error", "Something went wrong")
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {server.token}":
                    return self.error(401, "Unauthorized Request", "Missing authentication, or failed to authenticate")
                try:
                    status, body = server.route(urlparse(self.path), self.base_url())
                except ValueError as err:
                    return self.error(400, "Bad Request", str(err))
                if status != 200:
                    return self.error(status, "Not Found", body)
                self.send(200, body)

            def base_url(self) -> str:
                return f"http://{self.headers.get('Host') or server.url.split('//')[1]}"

            def error(self, status, title, detail, headers=None):
                body = {
                    "status": status,
                    "title": title,
                    "detail": detail,
                    "_links": {"documentation": {"href": f"{DOCS}/overview/handling-errors", "type": "text/html"}},
                }
                self.send(status, body, headers)

            def send(self, status, body, headers=None):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/hal+json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        return Handler

    # -- routing ----------------------------------------------------------------------------------
    def route(self, url, base: str) -> tuple[int, dict | str]:
        parts = [p for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if len(parts) < 2 or parts[0] != "v2" or parts[1] not in KINDS:
            return 404, f"The resource {url.path} does not exist"
        segment = parts[1]
        kind, embedded = KINDS[segment]
        if len(parts) == 2:
            return 200, self.page(base, url.path, kind, embedded, query)
        ident = parts[2]
        if segment == "settlements":
            ident = self.settlement_id(ident)
        elif segment == "balances" and ident == "primary":
            ident = self.one("select id from objects where kind = 'balance' order by seq limit 1")
        if ident is None:
            return 404, f"No {kind} exists with the given id or reference"
        if len(parts) == 3:
            body = self.one("select body from objects where kind = %s and id = %s", (kind, ident))
            if body is None:
                return 404, f"No {kind} exists with token {parts[2]}."
            return 200, self.with_links(body, base, segment)
        sub = parts[3]
        if segment == "settlements" and sub in KINDS and len(parts) == 4:
            sub_kind, sub_embedded = KINDS[sub]
            return 200, self.page(base, url.path, sub_kind, sub_embedded, query, settlement_id=ident)
        if segment == "balances" and sub == "transactions" and len(parts) == 4:
            return 200, self.page(base, url.path, "balance_transaction", "balance_transactions", query, parent_id=ident)
        return 404, f"The resource {url.path} does not exist"

    def one(self, query: str, params=()):
        row = self.connection().execute(query, params).fetchone()
        return row[0] if row else None

    def settlement_id(self, ident: str) -> str | None:
        if ident in ("open", "next"):
            return self.one(
                "select id from objects where kind = 'settlement' and body->>'status' in "
                "('open', 'pending') order by seq desc limit 1"
            )
        return self.one(
            "select id from objects where kind = 'settlement' and (id = %s or reference = %s)", (ident, ident)
        )

    def page(self, base, path, kind, embedded, query, settlement_id=None, parent_id=None) -> dict:
        limit = int(query.get("limit", 50))
        if not 1 <= limit <= 250:
            raise ValueError("The limit must be between 1 and 250")
        where, params = ["kind = %s"], [kind]
        if settlement_id is not None:
            where.append("settlement_id = %s")
            params.append(settlement_id)
        if parent_id is not None:
            where.append("parent_id = %s")
            params.append(parent_id)
        if "from" in query:
            start = self.one("select seq from objects where kind = %s and id = %s", (kind, query["from"]))
            if start is None:
                raise ValueError(f"Invalid 'from' parameter: {query['from']}")
            where.append("seq <= %s")
            params.append(start)
        rows = (
            self.connection()
            .execute(
                f"select id, body from objects where {' and '.join(where)} order by seq desc limit %s",
                [*params, limit + 1],
            )
            .fetchall()
        )
        items = [self.with_links(body, base, kind + "s") for _, body in rows[:limit]]
        href = f"{base}{path}"
        nxt = (
            {"href": f"{href}?from={rows[limit][0]}&limit={limit}", "type": "application/hal+json"}
            if len(rows) > limit
            else None
        )
        self_q = f"?from={query['from']}&limit={limit}" if "from" in query else f"?limit={limit}"
        return {
            "count": len(items),
            "_embedded": {embedded: items},
            "_links": {
                "self": {"href": href + self_q, "type": "application/hal+json"},
                "previous": None,
                "next": nxt,
                "documentation": {"href": f"{DOCS}/{embedded}", "type": "text/html"},
            },
        }

    @staticmethod
    def with_links(body: dict, base: str, segment: str) -> dict:
        links = {"self": {"href": f"{base}/v2/{segment}/{body['id']}", "type": "application/hal+json"}}
        if body.get("resource") == "settlement":
            for sub in ("payments", "refunds", "chargebacks", "captures"):
                links[sub] = {"href": f"{base}/v2/settlements/{body['id']}/{sub}", "type": "application/hal+json"}
        if body.get("paymentId"):
            links["payment"] = {"href": f"{base}/v2/payments/{body['paymentId']}", "type": "application/hal+json"}
        return {**body, "_links": links}


# -- the background daemon used by `boxoffice demo`, `make ui` and `boxoffice run` -------------------
def _state_file(home):
    return home / "sandbox.json"


def daemon_status(home) -> dict | None:
    """The running daemon's {pid, port, url}, or None."""
    path = _state_file(home)
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    with contextlib.suppress(ChildProcessError):  # this process's own daemon that exited: reaped, not a zombie
        os.waitpid(state["pid"], os.WNOHANG)
    try:
        os.kill(state["pid"], 0)
    except OSError:
        return None
    return state


def daemon_up(home, dsn: str, token: str) -> dict:
    """Start `boxoffice sandbox serve` in the background on the recorded port (or a new one)."""
    state = daemon_status(home)
    if state:
        return state
    path = _state_file(home)
    port = json.loads(path.read_text())["port"] if path.exists() else None
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    log = open(home / "sandbox.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "boxoffice.cli", "sandbox", "serve", "--port", str(port)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "MOLLIE_SANDBOX_DSN": dsn, "MOLLIE_API_TOKEN": token},
    )
    state = {"pid": proc.pid, "port": port, "url": f"http://127.0.0.1:{port}"}
    path.write_text(json.dumps(state))
    for _ in range(100):
        try:
            requests.get(state["url"] + "/v2/balances", timeout=1)
            return state
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"the Mollie sandbox did not start; see {home / 'sandbox.log'}")


def daemon_down(home, wait_seconds: float = 10) -> bool:
    """Stop the daemon and wait until it is gone: a daemon_up right after must not find the dying one running
    (and return it), nor its port still taken."""
    state = daemon_status(home)
    if not state:
        return False
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while daemon_status(home) is not None:
        if time.monotonic() > deadline:
            os.kill(state["pid"], signal.SIGKILL)
            deadline = time.monotonic() + wait_seconds
        time.sleep(0.05)
    return True
