{#- Integer cents -> numeric(18,2) in major units: exact, never float. -#}
{% macro cents_to_major(column) -%}
    cast({{ column }} / 100.0 as numeric(18, 2))
{%- endmacro %}

{#- A Mollie amount object {"value": "10.00", "currency": "EUR"} -> numeric. -#}
{% macro mollie_amount(json_expr, scale=2) -%}
    cast(({{ json_expr }})->>'value' as numeric(18, {{ scale }}))
{%- endmacro %}

{#- A UTC timestamp -> the local date in the reporting time zone. -#}
{% macro reporting_date(column) -%}
    cast(({{ column }} at time zone '{{ var("reporting_timezone") }}') as date)
{%- endmacro %}

{#- A UTC timestamp -> the wall-clock time in the reporting time zone (timestamp without zone). -#}
{% macro reporting_ts(column) -%}
    cast(({{ column }} at time zone '{{ var("reporting_timezone") }}') as timestamp)
{%- endmacro %}

{#- The one meaning of "refunded" across the marts: a refund counts once issued and until it fails or is
    canceled (queued, pending, processing, refunded), on the platform's side and on Mollie's alike: the money
    is on its way back to the buyer, and Mollie has taken it from the balance. -#}
{% macro is_refunded(status_column) -%}
    ({{ status_column }} not in ('failed', 'canceled'))
{%- endmacro %}

{#- Mollie's balance transaction types -> the kinds of money movement finance exports (fct_money_movements).
    Mollie takes most of its fees off each movement (deductions); the types it books fees as movements of their
    own are mollie_fee. A type Mollie adds later is 'other' until it is mapped here. -#}
{% macro money_movement_type(type_column) -%}
    case
        when {{ type_column }} in ('payment', 'capture', 'split-payment', 'post-payment-split-payment') then 'payment'
        when {{ type_column }} in ('refund', 'returned-refund', 'platform-payment-refunded') then 'refund'
        when {{ type_column }} in ('chargeback', 'chargeback-reversal', 'platform-payment-chargeback')
            then 'chargeback'
        when {{ type_column }} in (
            'outgoing-transfer', 'canceled-outgoing-transfer', 'returned-transfer', 'outgoing-custom-amount-transfer'
        ) then 'payout'
        when {{ type_column }} like '%-fee' or {{ type_column }} like '%-commission'
            or {{ type_column }} = 'invoice-compensation' then 'mollie_fee'
        else 'other'
    end
{%- endmacro %}

{#- The UTC quarter hour a timestamp falls in (its start). -#}
{% macro quarter_hour(column) -%}
    date_bin(interval '15 minutes', {{ column }}, timestamptz '2000-01-01 00:00:00+00')
{%- endmacro %}
