-- Failed payments in the last 24 hours, 7 days and 30 days before the as-of instant, by reason, with
-- the failure rate over all payments created in the same window. reason 'all' is the window's total.
with payments as (
    select * from {{ ref('stg_platform__payments') }}
),

windows as (
    select w.window_name, w.window_order, {{ as_of_ts() }} - w.span as window_start, {{ as_of_ts() }} as window_end
    from (values ('24h', 1, interval '24 hours'), ('7d', 2, interval '7 days'), ('30d', 3, interval '30 days'))
        as w (window_name, window_order, span)
),

in_window as (
    select w.window_name, w.window_order, p.payment_status, coalesce(p.failure_reason, 'unknown') as failure_reason
    from windows as w
    inner join payments as p on p.created_at > w.window_start and p.created_at <= w.window_end
),

totals as (
    select window_name, count(*) as payments
    from in_window
    group by window_name
),

failures as (
    select window_name, window_order, coalesce(failure_reason, 'all') as failure_reason, count(*) as failed_payments
    from in_window
    where payment_status = 'failed'
    group by grouping sets ((window_name, window_order, failure_reason), (window_name, window_order))
),

final as (
    select
        w.window_name,
        w.window_order,
        coalesce(f.failure_reason, 'all') as failure_reason,
        coalesce(f.failed_payments, 0) as failed_payments,
        coalesce(t.payments, 0) as payments,
        cast(round(1.0 * coalesce(f.failed_payments, 0) / nullif(t.payments, 0), 4) as numeric(9, 4)) as failure_rate
    from windows as w
    left join failures as f on f.window_name = w.window_name
    left join totals as t on t.window_name = w.window_name
)

select * from final
