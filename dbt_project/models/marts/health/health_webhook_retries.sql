-- Retry patterns: deliveries by the attempt they are at and their status, with the last errors seen.
with deliveries as (
    select * from {{ ref('stg_platform__webhook_deliveries') }}
),

final as (
    select
        attempt,
        delivery_status,
        count(*) as deliveries,
        count(distinct organization_id) as organizations,
        coalesce(mode() within group (order by last_error), '') as most_common_error
    from deliveries
    group by attempt, delivery_status
)

select * from final
