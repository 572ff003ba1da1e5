-- One row per organization with its activity, for KPIs, churn and the risk profile.
-- Churned: active, created before the churn window, and no order within it (var churn_after_days).
with organizations as (
    select * from {{ ref('stg_platform__organizations') }}
),

orders as (
    select * from {{ ref('int_orders') }}
),

activity as (
    select
        organization_id,
        count(*) as orders,
        max(created_at) as last_order_at
    from orders
    group by organization_id
),

final as (
    select
        o.organization_id,
        o.organization_name,
        o.organization_status,
        o.created_at,
        {{ reporting_date('o.created_at') }} as created_date,
        coalesce(a.orders, 0) as orders,
        a.last_order_at,
        case
            when o.organization_status = 'suspended' then 'suspended'
            when coalesce(a.last_order_at, o.created_at)
                < {{ as_of_ts() }} - interval '{{ var("churn_after_days") }} days' then 'churned'
            else 'active'
        end as lifecycle_status
    from organizations as o
    left join activity as a on a.organization_id = o.organization_id
)

select * from final
