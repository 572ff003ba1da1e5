-- Alerts from the fraud rules, thresholds in dbt vars (fraud_*). One row per alert: its type, the
-- organization, what was seen, a risk level, and when it was first and last seen. Buyers and IPs
-- appear only as salted hashes.
with orders as (
    select * from {{ ref('int_orders') }}
),

payments as (
    select * from {{ ref('stg_platform__payments') }}
),

customers as (
    select * from {{ ref('stg_platform__customers') }}
),

profiles as (
    select * from {{ ref('fct_organization_risk_profile') }}
),

scan_conflicts as (
    select * from {{ ref('int_scan_conflicts') }}
),

failed_payments as (
    select p.payment_id, p.created_at, o.organization_id, o.buyer_key, o.buyer_ip_hash
    from payments as p
    inner join orders as o on o.order_id = p.order_id
    where p.payment_status = 'failed'
),

-- failed payments within the hour up to each one, per buyer and per IP
failed_windows as (
    select
        subject_kind,
        subject,
        organization_id,
        created_at,
        count(*) over (
            partition by subject_kind, subject order by created_at range between interval '1 hour' preceding and current row
        ) as failures_in_hour
    from failed_payments
    cross join lateral (values ('buyer', buyer_key), ('ip', buyer_ip_hash)) as k (subject_kind, subject)
    where subject is not null
),

failed_payment_alerts as (
    select
        'failed_payments_burst' as alert_type,
        organization_id,
        subject_kind || ':' || subject as subject,
        max(failures_in_hour) || ' failed payments within one hour from one ' || subject_kind as details,
        case when max(failures_in_hour) > 2 * {{ var('fraud_failed_payments_per_hour') }} then 'high' else 'medium' end
            as risk_level,
        min(created_at) as first_seen_at,
        max(created_at) as last_seen_at,
        count(*) as occurrences
    from failed_windows
    where failures_in_hour > {{ var('fraud_failed_payments_per_hour') }}
    group by subject_kind, subject, organization_id
),

scan_alerts as (
    select
        'ticket_scanned_on_several_devices' as alert_type,
        organization_id,
        'ticket:' || ticket_id as subject,
        'ticket ' || ticket_id || ' scanned on ' || devices || ' devices (' || device_ids || ')' as details,
        case when devices >= 3 then 'high' else 'medium' end as risk_level,
        first_scanned_at as first_seen_at,
        last_scanned_at as last_seen_at,
        scans as occurrences
    from scan_conflicts
),

refund_alerts as (
    select
        'high_refund_rate' as alert_type,
        p.organization_id,
        'organization:' || p.organization_id as subject,
        p.refunded_orders || ' of ' || p.paid_orders || ' paid orders refunded (' || round(100 * p.refund_rate, 1)
            || '%), not counting cancelled events' as details,
        case when p.refund_rate > 2 * {{ var('fraud_refund_rate') }} then 'high' else 'medium' end as risk_level,
        r.first_seen_at,
        r.last_seen_at,
        p.refunded_orders as occurrences
    from profiles as p
    inner join (
        select organization_id, min(paid_at) as first_seen_at, max(paid_at) as last_seen_at
        from orders
        where refund_count > 0 and event_status <> 'cancelled'
        group by organization_id
    ) as r on r.organization_id = p.organization_id
    where p.paid_orders >= {{ var('fraud_refund_min_orders') }} and p.refund_rate > {{ var('fraud_refund_rate') }}
),

signup_windows as (
    select
        {{ pii_hash('host(signup_ip)') }} as ip_hash,
        customer_id,
        created_at,
        count(*) over (
            partition by signup_ip order by created_at range between interval '1 hour' preceding and current row
        ) as signups_in_hour
    from customers
    where signup_ip is not null
),

signup_alerts as (
    select
        'rapid_account_creation' as alert_type,
        -- the organization most of these accounts bought from, if they bought at all
        (select o.organization_id from orders as o
            inner join signup_windows as w2 on w2.customer_id = o.customer_id and w2.ip_hash = w.ip_hash
            group by o.organization_id order by count(*) desc, o.organization_id limit 1) as organization_id,
        'ip:' || w.ip_hash as subject,
        max(w.signups_in_hour) || ' customer accounts created from one IP within one hour' as details,
        case when max(w.signups_in_hour) > 2 * {{ var('fraud_signups_per_ip_per_hour') }} then 'high' else 'medium' end
            as risk_level,
        min(w.created_at) as first_seen_at,
        max(w.created_at) as last_seen_at,
        count(*) as occurrences
    from signup_windows as w
    where w.signups_in_hour > {{ var('fraud_signups_per_ip_per_hour') }}
    group by w.ip_hash
),

bulk_alerts as (
    select
        'bulk_order' as alert_type,
        organization_id,
        'order:' || order_number as subject,
        'order ' || order_number || ': ' || ticket_count || ' tickets, ' || currency || ' ' || total_amount as details,
        case
            when ticket_count > 2 * {{ var('fraud_bulk_order_tickets') }}
                or total_amount > 2 * {{ var('fraud_bulk_order_amount') }} then 'medium'
            else 'low'
        end as risk_level,
        created_at as first_seen_at,
        created_at as last_seen_at,
        1 as occurrences
    from orders
    where ticket_count > {{ var('fraud_bulk_order_tickets') }} or total_amount > {{ var('fraud_bulk_order_amount') }}
),

unioned as (
    select * from failed_payment_alerts
    union all
    select * from scan_alerts
    union all
    select * from refund_alerts
    union all
    select * from signup_alerts
    union all
    select * from bulk_alerts
),

final as (
    select
        md5(alert_type || ':' || subject || ':' || coalesce(organization_id::text, '')) as alert_id,
        alert_type,
        organization_id,
        subject,
        details,
        risk_level,
        first_seen_at,
        last_seen_at,
        cast(occurrences as bigint) as occurrences
    from unioned
)

select * from final
