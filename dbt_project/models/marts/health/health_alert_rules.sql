-- The alert rules beyond the checks, evaluated at the as-of instant: one row per rule with what it observed,
-- its baseline, its threshold (dbt vars) and whether it is breached. The alerts asset (orchestration) sends a
-- notification for a breached rule, at most once per cooldown while the condition lasts.
--
-- payment_failure_rate: failed payments among those created in the last hour.
-- webhook_failure_rate: failed deliveries among those created in the last hour.
-- revenue_anomaly: yesterday's paid GMV (local day, reporting currency) against the average of the same weekday
--   in the four weeks before it; breached when it is further from that average than the allowed share.
with payments as (
    select * from {{ ref('stg_platform__payments') }}
    where created_at > {{ as_of_ts() }} - interval '1 hour' and created_at <= {{ as_of_ts() }}
),

deliveries as (
    select * from {{ ref('stg_platform__webhook_deliveries') }}
    where created_at > {{ as_of_ts() }} - interval '1 hour' and created_at <= {{ as_of_ts() }}
),

daily_gmv as (
    select date_day, sum(gmv) as gmv
    from {{ ref('kpi_daily') }}
    where currency = '{{ var("reporting_currency") }}'
      and date_day between {{ as_of_date() }} - 29 and {{ as_of_date() }} - 1
    group by date_day
),

-- yesterday (offset 0) and the same weekday 1 to 4 weeks before it; a day without sales counts as 0
weekdays as (
    select w.weeks_back, {{ as_of_date() }} - 1 - 7 * w.weeks_back as date_day, coalesce(d.gmv, 0) as gmv
    from generate_series(0, 4) as w (weeks_back)
    left join daily_gmv as d on d.date_day = {{ as_of_date() }} - 1 - 7 * w.weeks_back
),

rules as (
    select
        'payment_failure_rate' as rule_name,
        'payments created in the last hour' as subject,
        cast(count(*) filter (where payment_status = 'failed') as numeric(18, 4)) / nullif(count(*), 0) as observed,
        cast(null as numeric) as baseline,
        cast({{ var('alert_payment_failure_rate') }} as numeric) as threshold,
        count(*) as sample_size,
        cast({{ var('alert_min_sample') }} as bigint) as min_sample
    from payments
    union all
    select
        'webhook_failure_rate',
        'webhook deliveries created in the last hour',
        cast(count(*) filter (where delivery_status = 'failed') as numeric(18, 4)) / nullif(count(*), 0),
        null,
        {{ var('alert_webhook_failure_rate') }},
        count(*),
        {{ var('alert_min_sample') }}
    from deliveries
    union all
    select
        'revenue_anomaly',
        'paid GMV of ' || to_char(max(date_day) filter (where weeks_back = 0), 'YYYY-MM-DD (Dy)')
            || ' against the same weekday of the 4 weeks before',
        max(gmv) filter (where weeks_back = 0),
        avg(gmv) filter (where weeks_back > 0),
        {{ var('alert_revenue_deviation') }},
        count(*) filter (where weeks_back > 0 and gmv > 0),
        1
    from weekdays
),

final as (
    select
        rule_name,
        subject,
        cast(round(observed, 4) as numeric(18, 4)) as observed,
        cast(round(baseline, 2) as numeric(18, 2)) as baseline,
        cast(threshold as numeric(9, 4)) as threshold,
        sample_size,
        coalesce(
            sample_size >= min_sample and case
                when baseline is null then observed > threshold
                else baseline > 0 and abs(observed - baseline) / baseline > threshold
            end,
            false
        ) as is_breached,
        {{ as_of_ts() }} as evaluated_at
    from rules
)

select * from final
