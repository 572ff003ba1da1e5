"""`boxoffice demo`: generate the platform database and the Mollie sandbox inside the embedded server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from boxoffice.console import StepLines
from boxoffice.demo import mollie, platform, sandbox
from boxoffice.warehouse import EmbeddedServer, write_secret

MOLLIE_STEP = "demo: Mollie sandbox"
DEMO_TOKEN = "access_BoxofficeDemoSandboxToken"
PLATFORM_DB = "platform"
SANDBOX_DB = "mollie_sandbox"


@dataclass
class DemoSources:
    source_dsn: str
    sandbox_dsn: str
    token: str
    platform_counts: dict[str, int]
    mollie_counts: dict[str, int]
    planted: int
    planted_fraud: list[tuple[str, str]]


def generate(
    server: EmbeddedServer,
    orders: int,
    seed: int,
    as_of: datetime | None,
    discrepancy_rate: float,
    databases: tuple[str, str] = (PLATFORM_DB, SANDBOX_DB),
    lines: StepLines | None = None,
) -> DemoSources:
    """The platform database and the Mollie sandbox (`databases`, replaced), generated and written."""
    source_dsn = server.ensure_database(databases[0])
    sandbox_dsn = server.ensure_database(databases[1])
    writers: list[sandbox.BackgroundStore] = []

    def mirror(data: platform.PlatformData) -> None:  # also plants platform-side refunds and order changes
        account = mollie.build(data, discrepancy_rate=discrepancy_rate)
        writers.append(sandbox.BackgroundStore(account, sandbox_dsn))
        if lines:
            lines.start(MOLLIE_STEP)  # written alongside the webhooks

    try:
        with platform.PlatformSink(source_dsn, lines=lines) as sink:
            data = platform.generate(sink, orders=orders, seed=seed, as_of=as_of, mirror=mirror)
        mollie_counts = writers[0].result()
        if lines:
            lines.show(MOLLIE_STEP, f"done, {sum(mollie_counts.values()):,} objects", final=True)
    finally:
        for writer in writers:
            writer.stop()
    planted = len(writers[0].planted)
    return DemoSources(source_dsn, sandbox_dsn, DEMO_TOKEN, sink.counts, mollie_counts, planted, data.planted_fraud)


def write_env(server: EmbeddedServer, sources: DemoSources, sandbox_url: str) -> None:
    """Record the demo's sources as the lowest-precedence settings layer (.boxoffice/demo.env, mode 0600:
    its DSNs carry the server's password)."""
    write_secret(
        server.home / "demo.env",
        "# Written by `boxoffice demo`; the environment and .env override these.\n"
        f"SOURCE_DSN={sources.source_dsn}\n"
        f"MOLLIE_API_URL={sandbox_url}\n"
        f"MOLLIE_API_TOKEN={sources.token}\n"
        f"MOLLIE_SANDBOX_DSN={sources.sandbox_dsn}\n",
    )


def ensure_sandbox(server: EmbeddedServer) -> dict | None:
    """Start the sandbox daemon again (e.g. after a reboot) when the demo has been generated."""
    env = server.home / "demo.env"
    if not env.exists():
        return None
    from dotenv import dotenv_values

    values = dotenv_values(env)
    server.up()
    return sandbox.daemon_up(server.home, values["MOLLIE_SANDBOX_DSN"], values["MOLLIE_API_TOKEN"])
