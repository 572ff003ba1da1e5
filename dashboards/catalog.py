"""The dashboards analysts and support open in Metabase, declared as data (reviewed like code): each card a native
question on one mart, its dashboard filters wired through template tags (field filters on the mart's own
columns; plain variables for the support searches). `boxoffice metabase sync` publishes them; the dbt exposures
(dbt_project/models/exposures.yml) are generated from them."""

from __future__ import annotations

from dashboards.spec import Card, Connection, Dashboard, Filter

MARTS = Connection(name="Boxoffice marts", role="analytics", schema="marts", group="Analysts")
SUPPORT = Connection(name="Boxoffice support", role="support", schema="support", group="Support")
CONNECTIONS = (MARTS, SUPPORT)

DATE_RANGE = Filter("date_range", "Date range", "date/all-options")
ORGANIZATION = Filter("organization", "Organization", "id")
EVENT_STATUS = Filter("event_status", "Event status", "string/=")
ANALYST_FILTERS = (DATE_RANGE, ORGANIZATION, EVENT_STATUS)

# the KPIs of marts.kpi_periods, in its order (a test holds the two to the same list)
KPIS = (
    ("gmv", "GMV"),
    ("orders_completed", "Orders completed"),
    ("tickets_sold", "Tickets sold"),
    ("average_ticket_price", "Average ticket price"),
    ("average_order_value", "Average order value"),
    ("platform_fees", "Platform fees"),
    ("service_fees", "Service fees"),
    ("mollie_fees", "Mollie fees"),
    ("net_platform_revenue", "Net platform revenue"),
    ("new_organizations", "New organizations"),
    ("new_events", "New events"),
    ("organizations_total", "Organizations"),
    ("active_organizations", "Active organizations"),
    ("active_buyers", "Active buyers"),
)


# every number of marts.kpi_snapshot (one row: the platform as of the build), a number card each
SNAPSHOT = (
    ("organizations_total", "Organizations, all time"),
    ("organizations_active", "Organizations active"),
    ("organizations_suspended", "Organizations suspended"),
    ("organizations_churned", "Organizations churned"),
    ("organizations_new_this_week", "New organizations this week"),
    ("organizations_new_this_month", "New organizations this month"),
    ("organizations_mom_growth_pct", "Organizations, month-on-month growth %"),
    ("events_total", "Events, all time"),
    ("events_live", "Events live"),
    ("events_upcoming_30d", "Events in the next 30 days"),
    ("events_this_month", "Events this month"),
    ("events_per_organization", "Events per organization"),
    ("gmv_total", "GMV, all time"),
    ("gmv_this_month", "GMV this month"),
    ("gmv_last_month", "GMV last month"),
    ("gmv_change_pct", "GMV change %"),
    ("tickets_sold_total", "Tickets sold, all time"),
    ("tickets_sold_this_month", "Tickets sold this month"),
    ("average_ticket_price", "Average ticket price, all time"),
    ("orders_completed_total", "Orders completed, all time"),
    ("average_order_value", "Average order value, all time"),
    ("platform_fees_total", "Platform fees, all time"),
    ("service_fees_total", "Service fees, all time"),
    ("mollie_fees_total", "Mollie fees, all time"),
    ("net_platform_revenue_total", "Net platform revenue, all time"),
)


def snapshot_card(column: str, title: str) -> Card:
    sql = f"select {column}\nfrom marts.kpi_snapshot"
    return Card(title, sql, "scalar", (4, 2), f"{title}, as of the last build.", metrics=(column,))


def _filtered(table: str, date: str | None = None, organization: bool = False, status: bool = False) -> dict:
    fields = {}
    if date:
        fields["date_range"] = f"{table}.{date}"
    if organization:
        fields["organization"] = f"{table}.organization_id"
    if status:
        fields["event_status"] = f"{table}.event_status"
    return fields


def _where(fields: dict) -> str:
    return " and ".join("{{" + tag + "}}" for tag in fields) or "1 = 1"


def kpi_card(kpi: str, title: str) -> Card:
    """This month against last month (marts.kpi_periods): a trend number, the change shown as Metabase shows it."""
    sql = f"""
select (period_start - interval '1 month')::date as period_start, previous_value as value
from marts.kpi_periods where kpi = '{kpi}' and period = 'this_month'
union all
select period_start, current_value
from marts.kpi_periods where kpi = '{kpi}' and period = 'this_month'
order by 1
"""
    return Card(
        title,
        sql.strip(),
        "smartscalar",
        (4, 3),
        f"{title} this month, against last month.",
        dimensions=("period_start",),
        metrics=("value",),
    )


def _chart(name, table, select, group, display, size, dims, metrics, fields, extra="", order="1") -> Card:
    sql = f"select {select}\nfrom {table}\nwhere {_where(fields)}{extra}\ngroup by {group}\norder by {order}"
    return Card(name, sql, display, size, dimensions=dims, metrics=metrics, fields=fields)


def _table(name: str, table: str, columns: str, order: str, fields: dict, size=(24, 8), description=None) -> Card:
    sql = f"select {columns}\nfrom {table}\nwhere {_where(fields)}\norder by {order}\nlimit 2000"
    return Card(name, sql, "table", size, description, fields=fields)


def platform_kpis() -> Dashboard:
    growth = _filtered("marts.growth_monthly", "month_start", True, True)
    daily = _filtered("marts.growth_events_daily", "date_day", True, True)
    cards = [kpi_card(kpi, title) for kpi, title in KPIS]
    cards += [snapshot_card(column, title) for column, title in SNAPSHOT]
    cards += [
        _chart(
            "GMV, last 12 months",
            "marts.growth_monthly",
            "month_start, sum(gmv) as gmv",
            "month_start",
            "line",
            (12, 6),
            ("month_start",),
            ("gmv",),
            growth,
            "\n  and month_start > (select max(month_start) from marts.growth_monthly) - interval '12 months'",
        ),
        _chart(
            "Platform revenue by month",
            "marts.growth_monthly",
            "month_start, sum(platform_revenue) as platform_revenue, sum(net_platform_revenue) as net_platform_revenue",
            "month_start",
            "bar",
            (12, 6),
            ("month_start",),
            ("platform_revenue", "net_platform_revenue"),
            growth,
        ),
        _chart(
            "New organizations per month",
            "marts.growth_organizations_monthly",
            "month_start, sum(new_organizations) as new_organizations",
            "month_start",
            "bar",
            (12, 6),
            ("month_start",),
            ("new_organizations",),
            _filtered("marts.growth_organizations_monthly", "month_start"),
        ),
        _chart(
            "Active events per day",
            "marts.growth_events_daily",
            "date_day, sum(active_events) as active_events",
            "date_day",
            "line",
            (12, 6),
            ("date_day",),
            ("active_events",),
            daily,
        ),
    ]
    return Dashboard(
        "Platform KPIs",
        "Platform KPIs",
        MARTS,
        "The platform's numbers, this month against last.",
        tuple(cards),
        ANALYST_FILTERS,
    )


def financials() -> Dashboard:
    revenue = _filtered("marts.fct_revenue_by_organization", organization=True)
    monthly = _filtered("marts.fct_financial_monthly", "month_start")
    cards = (
        _chart(
            "Revenue by month",
            "marts.fct_financial_monthly",
            "month_start, sum(gross_revenue) as gross_revenue, sum(net_revenue) as net_revenue",
            "month_start",
            "line",
            (24, 6),
            ("month_start",),
            ("gross_revenue", "net_revenue"),
            monthly,
        ),
        _table(
            "Monthly summary",
            "marts.fct_financial_monthly",
            "month_start, currency, paid_orders, gross_revenue, refunded_amount, service_fees, platform_fees, "
            "mollie_costs, net_revenue",
            "month_start desc",
            monthly,
            (24, 6),
        ),
        _table(
            "Revenue by organization",
            "marts.fct_revenue_by_organization",
            "organization_id, organization_name, organization_status, currency, paid_orders, gmv, service_fees, "
            "platform_fees, mollie_fees, net_revenue, refunded_amount, last_payment_at",
            "gmv desc",
            revenue,
        ),
    )
    return Dashboard(
        "Financials", "Financials", MARTS, "Revenue by month and by organization.", cards, (DATE_RANGE, ORGANIZATION)
    )


def reconciliation() -> Dashboard:
    settlements = _filtered("marts.fct_settlement_reconciliation", "settlement_date")
    payouts = _filtered("marts.fct_payouts", "settled_at")
    ledger = _filtered("marts.fct_balance_transactions", "created_date", organization=True)
    cards = (
        _table(
            "Settlements",
            "marts.fct_settlement_reconciliation",
            "settlement_reference, status, settlement_date, currency, reported_amount, expected_amount, difference, "
            "is_reconciled, discrepancy_count, unexplained_difference",
            "settlement_date desc nulls first",
            settlements,
            (24, 6),
        ),
        _chart(
            "Discrepancies by reason",
            "marts.fct_reconciliation_discrepancies",
            "reason_code, count(*) as discrepancies, sum(abs(difference)) as amount",
            "reason_code",
            "bar",
            (8, 6),
            ("reason_code",),
            ("discrepancies",),
            {},
        ),
        _table(
            "Discrepancies",
            "marts.fct_reconciliation_discrepancies",
            "discrepancy_source, settlement_id, order_number, mollie_payment_id, currency, mollie_amount, "
            "platform_amount, difference, reason_code, reason",
            "abs(difference) desc nulls last",
            {},
            (16, 6),
        ),
        _table(
            "Payouts",
            "marts.fct_payouts",
            "settlement_reference, settlement_status, settled_at, currency, settlement_amount, transferred_at, "
            "transferred_amount, untransferred_amount, is_paid_out",
            "settled_at desc nulls first",
            payouts,
            (24, 6),
        ),
        _chart(
            "Balance movements per day",
            "marts.fct_balance_transactions",
            "created_date, sum(result_amount) as net_movement",
            "created_date",
            "bar",
            (24, 6),
            ("created_date",),
            ("net_movement",),
            ledger,
        ),
        _table(
            "Balance ledger",
            "marts.fct_balance_transactions",
            "created_at, transaction_type, currency, initial_amount, deductions, result_amount, running_balance, "
            "settlement_id, order_number, organization_id, mollie_payment_id",
            "created_at desc",
            ledger,
        ),
    )
    return Dashboard(
        "Reconciliation",
        "Reconciliation",
        MARTS,
        "Mollie's settlements against the platform: differences, their reasons, payouts and the balance.",
        cards,
        (DATE_RANGE, ORGANIZATION),
    )


def fraud() -> Dashboard:
    alerts = _filtered("marts.fct_fraud_alerts", "last_seen_at", organization=True)
    cards = (
        _chart(
            "Open alerts by risk level and type",
            "marts.fct_fraud_alerts",
            "alert_type, risk_level, count(*) as alerts",
            "alert_type, risk_level",
            "bar",
            (12, 6),
            ("alert_type", "risk_level"),
            ("alerts",),
            alerts,
            "",
        ),
        _table(
            "Open alerts",
            "marts.fct_fraud_alerts",
            "risk_level, alert_type, organization_id, subject, details, first_seen_at, last_seen_at, occurrences",
            "last_seen_at desc",
            alerts,
            (12, 6),
        ),
        _table(
            "Organization risk profiles",
            "marts.fct_organization_risk_profile",
            "organization_id, organization_name, organization_status, lifecycle_status, account_age_days, orders, "
            "refund_rate, failed_payment_rate, chargebacks, charged_back_amount, scan_conflicts",
            "refund_rate desc nulls last",
            _filtered("marts.fct_organization_risk_profile", organization=True),
        ),
    )
    return Dashboard(
        "Fraud", "Fraud", MARTS, "Fraud alerts and each organization's risk profile.", cards, (DATE_RANGE, ORGANIZATION)
    )


def system_health() -> Dashboard:
    scans = _filtered("marts.health_scans_daily", "date_day")
    cards = (
        _chart(
            "Failed payments per window and reason",
            "marts.health_payment_failures",
            "window_name, failure_reason, sum(failed_payments) as failed_payments",
            "window_name, failure_reason",
            "bar",
            (12, 6),
            ("window_name", "failure_reason"),
            ("failed_payments",),
            {},
            order="min(window_order), failure_reason",
        ),
        _table(
            "Payment latency",
            "marts.health_payment_latency",
            "window_name, payment_method, paid_payments, median_seconds, p95_seconds, p99_seconds",
            "window_order, payment_method",
            {},
            (12, 6),
        ),
        _table(
            "Webhook success",
            "marts.health_webhooks",
            "event_type, deliveries, delivered, failed, pending_retries, success_rate, average_attempts, most_attempts",
            "deliveries desc",
            {},
            (12, 6),
        ),
        _chart(
            "Webhook deliveries by attempt",
            "marts.health_webhook_retries",
            "attempt, delivery_status, sum(deliveries) as deliveries",
            "attempt, delivery_status",
            "bar",
            (12, 6),
            ("attempt", "delivery_status"),
            ("deliveries",),
            {},
        ),
        _chart(
            "Scan errors per day",
            "marts.health_scans_daily",
            "date_day, scan_result, sum(scans) as scans",
            "date_day, scan_result",
            "bar",
            (12, 6),
            ("date_day", "scan_result"),
            ("scans",),
            scans,
            "\n  and is_failed",
        ),
        _chart(
            "Peak hours",
            "marts.health_volume_by_hour",
            "hour_of_day, sum(orders) as orders, sum(scans) as scans, sum(webhook_deliveries) as webhook_deliveries",
            "hour_of_day",
            "bar",
            (12, 6),
            ("hour_of_day",),
            ("orders", "scans", "webhook_deliveries"),
            {},
        ),
    )
    return Dashboard(
        "System health",
        "System health",
        MARTS,
        "Payments that fail, webhooks that retry, scans that error, latency and peak hours.",
        cards,
        (DATE_RANGE,),
    )


def buyers() -> Dashboard:
    activity = _filtered("marts.fct_buyer_activity", "period_start")
    cards = (
        _chart(
            "New, active and returning buyers by month",
            "marts.fct_buyer_activity",
            "period_start, sum(new_buyers) as new_buyers, sum(active_buyers) as active_buyers, "
            "sum(returning_buyers) as returning_buyers",
            "period_start",
            "line",
            (24, 6),
            ("period_start",),
            ("new_buyers", "active_buyers", "returning_buyers"),
            activity,
            "\n  and grain = 'month'",
        ),
        _table(
            "Repeat-purchase cohorts",
            "marts.fct_buyer_cohorts",
            "cohort_month, cohort_buyers, repeat_rate_d1, repeat_rate_d7, repeat_rate_d30",
            "cohort_month desc",
            _filtered("marts.fct_buyer_cohorts", "cohort_month"),
            (24, 6),
        ),
    )
    return Dashboard("Buyers", "Buyers", MARTS, "Who buys, who comes back.", cards, (DATE_RANGE,))


ORDER_SEARCH = """
select order_number, buyer_email, organization_name, event_name, order_status, payment_status, payment_method,
       currency, total_amount, refunded_amount, created_at, paid_at, tickets
from support.support_order_search
where 1 = 1
[[and order_number = {{order_number}}]]
[[and lower(buyer_email) = lower({{email}})]]
-- @> and && alike: PostgreSQL estimates either alone at 0.5% of the rows, and would rather walk the newest
-- orders than the arrays' GIN index; together they are estimated as rare as they are
[[and qr_codes @> string_to_array({{qr_code}}, ',') and qr_codes && string_to_array({{qr_code}}, ',')]]
[[and mollie_payment_ids @> string_to_array({{mollie_id}}, ',')
  and mollie_payment_ids && string_to_array({{mollie_id}}, ',')]]
order by created_at desc
limit 200
"""

TICKET_LOOKUP = """
select qr_code, ticket_type, ticket_status, order_number, buyer_email, event_name, event_starts_at, scans,
       failed_scans, first_scanned_at, last_scanned_at, last_scan_result, scan_history
from support.support_ticket_lookup
where 1 = 1
[[and qr_code = {{qr_code}}]]
[[and order_number = {{order_number}}]]
order by last_scanned_at desc nulls last
limit 200
"""


def support() -> Dashboard:
    search = {"order_number": "text", "email": "text", "qr_code": "text", "mollie_id": "text"}
    cards = (
        Card(
            "Order search",
            ORDER_SEARCH.strip(),
            "table",
            (24, 8),
            "An order by its number, the buyer's email, a ticket's QR code or a Mollie payment id.",
            variables=search,
        ),
        Card(
            "Ticket lookup",
            TICKET_LOOKUP.strip(),
            "table",
            (24, 8),
            "A ticket by its QR code or order number, with every scan.",
            variables={"qr_code": "text", "order_number": "text"},
        ),
    )
    filters = (
        Filter("order_number", "Order number", "string/="),
        Filter("email", "Buyer email", "string/="),
        Filter("qr_code", "QR code", "string/="),
        Filter("mollie_id", "Mollie payment id", "string/="),
    )
    return Dashboard("Support", "Support", SUPPORT, "Find an order or a ticket.", cards, filters)


def dashboards() -> list[Dashboard]:
    return [platform_kpis(), financials(), reconciliation(), fraud(), system_health(), buyers(), support()]
