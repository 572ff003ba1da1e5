-- Mollie's payments as the columns that are summed (amount, currency, status, when paid), out of their JSON
-- payloads once: a million payloads are about a gigabyte, read whole by anything that sums them from staging
-- (the paid-GMV check read them twice a run, 6 s at a million payments).
--
-- Incremental by payment: a run takes the payments loaded since the last build.
{{ config(
    materialized='incremental',
    unique_key='mollie_payment_id',
    incremental_strategy='changed_rows',
    on_schema_change='fail',
    indexes=[{'columns': ['mollie_payment_id'], 'unique': True}],
) }}
{% set wm = incremental_watermark(uses_settings=false) %}
with payments as (
    select * from {{ ref('stg_mollie__payments') }}
    {% if wm %} where _loaded_at > {{ wm }} {% endif %}
),

final as (
    select
        mollie_payment_id,
        payment_status,
        amount,
        currency,
        paid_at,
        now() as _loaded_at
    from payments
)

select * from final
