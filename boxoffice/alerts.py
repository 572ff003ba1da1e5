"""Notifications that reach a person: a blocking check that failed or could not run, a run that failed, a
high-risk fraud alert seen for the first time, an alert rule breached (marts.health_alert_rules).

Channels come from settings (AlertSettings): ALERT_WEBHOOK_URL (Slack-compatible JSON) and/or email over SMTP
(ALERT_SMTP_*); every notification is also appended to the alert log (<home>/alerts.log), the only channel when
none is set. What was sent is kept in the warehouse (raw._alerts_sent), so the same fraud alert is never sent
twice and a condition that lasts is sent once per ALERT_COOLDOWN_MINUTES, whichever process notices it.
A notification no configured channel took is not recorded as sent: the next run tries again.
"""

from __future__ import annotations

import json
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import psycopg
import requests
from psycopg import sql

from boxoffice.settings import AlertSettings, Settings

STATE_TABLE = ("raw", "_alerts_sent")
HIGH_RISK = "high"
LISTED = 20  # lines of rows or alerts a notification lists; the rest are counted


@dataclass(frozen=True)
class Notification:
    keys: tuple[str, ...]  # what it is about: a check, a run's job, a rule, fraud alerts
    title: str
    lines: tuple[str, ...] = ()
    once: bool = False  # never sent again (a fraud alert), rather than again after the cooldown
    run_id: str | None = None

    def text(self, config: AlertSettings) -> str:
        link = f"\nDagster run: {config.dagster_url}/runs/{self.run_id}" if self.run_id else ""
        return "\n".join((self.title, *self.lines)) + link


@dataclass
class Delivery:
    sent: list[str] = field(default_factory=list)  # titles
    suppressed: list[str] = field(default_factory=list)  # already sent (once) or within the cooldown
    failed: list[str] = field(default_factory=list)  # "<title>: <channel error>"


def config_of(settings: Settings) -> AlertSettings:
    return settings.alerts or AlertSettings(log_path=settings.home / "alerts.log")


def notify(settings: Settings, notifications: Iterable[Notification], now: datetime | None = None) -> Delivery:
    """Send each notification that is due, through every channel, and record it; one transaction each, holding
    its keys' rows, so two processes noticing the same thing send it once."""
    config, delivery = config_of(settings), Delivery()
    now = now or datetime.now(UTC)
    with psycopg.connect(settings.warehouse_dsn) as conn:
        _ensure_state(conn)
        for n in notifications:
            with conn.transaction():
                if not _due(conn, n, config, now):
                    delivery.suppressed.append(n.title)
                    continue
                errors = send(config, n)
                if errors:
                    delivery.failed += [f"{n.title}: {e}" for e in errors]
                    continue
                _record(conn, n, now)
                delivery.sent.append(n.title)
    return delivery


def send(config: AlertSettings, n: Notification) -> list[str]:
    """Through every configured channel and into the alert log; the channels' errors (also logged)."""
    errors = []
    if config.webhook_url:
        try:
            response = requests.post(config.webhook_url, json={"text": n.text(config)}, timeout=10)
            response.raise_for_status()
        except requests.RequestException as err:
            errors.append(f"webhook: {err}")
    if config.smtp_host:
        try:
            _email(config, n)
        except (OSError, smtplib.SMTPException) as err:
            errors.append(f"email: {err}")
    config.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(config.log_path, "a", encoding="utf-8") as log:
        entry = {"at": datetime.now(UTC).isoformat(), "keys": list(n.keys), "text": n.text(config), "errors": errors}
        log.write(json.dumps(entry) + "\n")
    return errors


def _email(config: AlertSettings, n: Notification) -> None:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = n.title, config.smtp_from, ", ".join(config.smtp_to)
    message.set_content(n.text(config))
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=10) as smtp:
        if config.smtp_starttls:
            smtp.starttls()
        if config.smtp_user:
            smtp.login(config.smtp_user, config.smtp_password or "")
        smtp.send_message(message)


def _ensure_state(conn: psycopg.Connection) -> None:
    table = sql.Identifier(*STATE_TABLE)
    conn.execute("create schema if not exists raw")
    conn.execute(
        sql.SQL(
            "create table if not exists {} (alert_key text primary key, first_sent_at timestamptz not null, "
            "last_sent_at timestamptz not null, times_sent integer not null, last_title text not null)"
        ).format(table)
    )
    conn.execute(sql.SQL("revoke all on {} from public").format(table))
    conn.commit()


def _due(conn: psycopg.Connection, n: Notification, config: AlertSettings, now: datetime) -> bool:
    """Not sent before (for `once`: none of its keys), or last sent a cooldown ago; its keys' rows stay locked
    until the notification is recorded."""
    table = sql.Identifier(*STATE_TABLE)
    conn.execute(sql.SQL("lock table {} in share row exclusive mode").format(table))
    sent = dict(
        conn.execute(
            sql.SQL("select alert_key, last_sent_at from {} where alert_key = any(%s)").format(table), (list(n.keys),)
        ).fetchall()
    )
    if n.once:
        return not sent
    cooldown = timedelta(minutes=config.cooldown_minutes)
    return any(k not in sent or now - sent[k] >= cooldown for k in n.keys)


def _record(conn: psycopg.Connection, n: Notification, now: datetime) -> None:
    conn.execute(
        sql.SQL(
            "insert into {t} (alert_key, first_sent_at, last_sent_at, times_sent, last_title) "
            "select k, %(now)s, %(now)s, 1, %(title)s from unnest(%(keys)s::text[]) as k "
            "on conflict (alert_key) do update set last_sent_at = excluded.last_sent_at, "
            "times_sent = {t}.times_sent + 1, last_title = excluded.last_title"
        ).format(t=sql.Identifier(*STATE_TABLE)),
        {"now": now, "title": n.title, "keys": list(n.keys)},
    )


def listed(lines: list[str], what: str) -> tuple[str, ...]:
    shown = lines[:LISTED]
    return (*shown, f"... and {len(lines) - LISTED} more {what}") if len(lines) > LISTED else tuple(shown)


def fraud_notifications(settings: Settings, run_id: str | None = None) -> list[Notification]:
    """One notification for the high-risk fraud alerts never sent before, naming each."""
    with psycopg.connect(settings.warehouse_dsn) as conn:
        _ensure_state(conn)
        rows = conn.execute(
            sql.SQL(
                "select a.alert_id, a.alert_type, a.organization_id, a.subject, a.details, a.occurrences "
                "from marts.fct_fraud_alerts as a where a.risk_level = %s and not exists "
                "(select 1 from {} as s where s.alert_key = 'fraud:' || a.alert_id) "
                "order by a.last_seen_at desc, a.alert_id"
            ).format(sql.Identifier(*STATE_TABLE)),
            (HIGH_RISK,),
        ).fetchall()
    if not rows:
        return []
    lines = [f"{t} (organization {o}): {s}, {d} [{n} occurrences]" for _, t, o, s, d, n in rows]
    title = f"{len(rows)} new high-risk fraud alert{'s' if len(rows) > 1 else ''}"
    keys = tuple(f"fraud:{r[0]}" for r in rows)
    return [Notification(keys, title, listed(lines, "alerts"), once=True, run_id=run_id)]


def rule_notifications(settings: Settings, run_id: str | None = None) -> list[Notification]:
    """A notification per breached alert rule, with what it observed against its threshold."""
    with psycopg.connect(settings.warehouse_dsn) as conn:
        rows = conn.execute(
            "select rule_name, subject, observed, baseline, threshold, sample_size from marts.health_alert_rules "
            "where is_breached order by rule_name"
        ).fetchall()
    notifications = []
    for rule, subject, observed, baseline, threshold, sample in rows:
        if baseline is None:
            detail = f"observed {observed:.1%} over {sample:,}, threshold {threshold:.0%}"
        else:
            detail = (
                f"observed {observed:,.2f} against an average of {baseline:,.2f}, allowed deviation {threshold:.0%}"
            )
        notifications.append(
            Notification((f"rule:{rule}",), f"Alert rule breached: {rule}", (subject, detail), run_id=run_id)
        )
    return notifications
