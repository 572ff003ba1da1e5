-- Webhook delivery health by event type: delivered, failed for good (maximum attempts reached),
-- waiting for a retry, the success rate, and how many attempts deliveries needed.
with deliveries as (
    select * from {{ ref('stg_platform__webhook_deliveries') }}
),

final as (
    select
        event_type,
        count(*) as deliveries,
        count(*) filter (where delivery_status = 'delivered') as delivered,
        count(*) filter (where delivery_status = 'failed') as failed,
        count(*) filter (where delivery_status = 'pending' and next_retry_at is not null) as pending_retries,
        count(*) filter (where attempt >= max_attempts and delivery_status <> 'delivered') as max_attempts_reached,
        count(*) filter (where delivery_status = 'delivered' and attempt = 1) as delivered_first_attempt,
        cast(round(1.0 * count(*) filter (where delivery_status = 'delivered') / count(*), 4) as numeric(9, 4))
            as success_rate,
        cast(round(avg(attempt), 2) as numeric(9, 2)) as average_attempts,
        max(attempt) as most_attempts,
        min(next_retry_at) filter (where delivery_status = 'pending') as next_retry_at
    from deliveries
    group by event_type
)

select * from final
