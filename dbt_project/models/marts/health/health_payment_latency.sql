-- How long buyers wait from payment creation to paid: average, median, p95 and p99 in seconds, per
-- window before the as-of instant and payment method ('all' for every method).
with payments as (
    select * from {{ ref('stg_platform__payments') }}
    where payment_status = 'paid' and paid_at is not null
),

windows as (
    select w.window_name, w.window_order, {{ as_of_ts() }} - w.span as window_start
    from (values ('24h', 1, interval '24 hours'), ('7d', 2, interval '7 days'), ('30d', 3, interval '30 days'),
                 ('all', 4, interval '100 years')) as w (window_name, window_order, span)
),

latencies as (
    select
        w.window_name,
        w.window_order,
        coalesce(p.payment_method, 'unknown') as payment_method,
        extract(epoch from p.paid_at - p.created_at) as seconds
    from windows as w
    inner join payments as p on p.paid_at > w.window_start and p.paid_at <= {{ as_of_ts() }}
),

final as (
    select
        window_name,
        window_order,
        coalesce(payment_method, 'all') as payment_method,
        count(*) as paid_payments,
        cast(round(avg(seconds), 1) as numeric(12, 1)) as average_seconds,
        cast(round(cast(percentile_cont(0.5) within group (order by seconds) as numeric), 1) as numeric(12, 1))
            as median_seconds,
        cast(round(cast(percentile_cont(0.95) within group (order by seconds) as numeric), 1) as numeric(12, 1))
            as p95_seconds,
        cast(round(cast(percentile_cont(0.99) within group (order by seconds) as numeric), 1) as numeric(12, 1))
            as p99_seconds
    from latencies
    group by grouping sets ((window_name, window_order, payment_method), (window_name, window_order))
)

select * from final
