-- Mollie's fee per payment: what its balance transactions deducted (the payment itself, and any refund
-- or chargeback of it). Fees are per transaction in cents, so they can differ by fractions of a cent
-- from the settlement cost lines, which Mollie rounds per line at 4 decimals.
--
-- Incremental by payment: a run sums again the payments whose balance transactions were loaded since.
{{ config(
    materialized='incremental',
    unique_key='mollie_payment_id',
    incremental_strategy='changed_rows',
    on_schema_change='fail',
    indexes=[{'columns': ['mollie_payment_id'], 'unique': True}],
) }}
{% set wm = incremental_watermark(uses_settings=false) %}
with balance_transactions as (
    select * from {{ ref('stg_mollie__balance_transactions') }}
    where mollie_payment_id is not null
    {% if wm %}
    and mollie_payment_id in (
        select mollie_payment_id from {{ ref('stg_mollie__balance_transactions') }} where _loaded_at > {{ wm }}
    )
    {% endif %}
),

final as (
    select
        mollie_payment_id,
        -sum(deductions) as mollie_fee,
        min(created_at) as first_fee_at,
        now() as _loaded_at
    from balance_transactions
    group by mollie_payment_id
)

select * from final
